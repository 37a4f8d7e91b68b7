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
