"""Domain errors of the metadata service; the servicer maps each onto one gRPC status code."""


class MetadataError(Exception):
    """Base of the errors a caller can cause."""


class NotFound(MetadataError):
    """A datasource, dataset, namespace, field or datapoint that does not exist."""


class AlreadyExists(MetadataError):
    """A name already taken in its namespace."""


class InvalidArgument(MetadataError):
    """A malformed request: bad names, malformed queries, bad paths."""


class FailedPrecondition(MetadataError):
    """A request the current state does not allow, e.g. committing a staged upload with blocks missing."""


class TypeMismatch(InvalidArgument):
    """A value whose type differs from its field's type."""


class UnknownPaths(InvalidArgument):
    """A write naming paths the datasource does not have, without asking to create them."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count
