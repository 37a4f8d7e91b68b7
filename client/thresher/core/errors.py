"""Exception classes shared by every part of Thresher.

Each failure a user can cause has its own class so callers can catch exactly what they mean to.
Errors that arrive as gRPC or Flight statuses are mapped onto these by ``thresher.core.status``.
"""


class ThresherError(Exception):
    """Base class of every error Thresher raises on purpose."""


class NotFoundError(ThresherError, LookupError):
    """A datasource, dataset, field, datapoint or blob that does not exist (gRPC NOT_FOUND)."""


class AlreadyExistsError(ThresherError):
    """A name that is already taken in its namespace (gRPC ALREADY_EXISTS)."""


class InvalidArgumentError(ThresherError, ValueError):
    """A request the service rejected as malformed (gRPC INVALID_ARGUMENT)."""


class UnknownPathsError(InvalidArgumentError):
    """A write named paths that are not datapoints of the datasource, and did not ask to create them
    (pass ``create_missing=True``). The message names up to 10 of them and how many there are."""


class FieldTypeMismatchError(InvalidArgumentError, TypeError):
    """A value's type does not match the type its field was created with."""


class QueryError(ThresherError, ValueError):
    """A query built wrongly: a missing parenthesis, `and`/`or`/`in` on columns, a chained comparison."""


class QueryExpressionError(QueryError):
    """A query expression (the text grammar of ``thresher.expressions``) that does not parse.

    ``position`` is the 0-based offset in ``text`` where parsing stopped; ``expected`` says what would
    have been valid there.
    """

    def __init__(self, message: str, text: str = "", position: int = 0, expected: str = "") -> None:
        super().__init__(message)
        self.text = text
        self.position = position
        self.expected = expected


class UnknownFieldError(QueryError, NotFoundError):
    """A query or write names a field the datasource does not have."""


class ServiceUnavailableError(ThresherError, ConnectionError):
    """A Thresher service could not be reached at its address."""


class ServiceTimeoutError(ThresherError, TimeoutError):
    """A call to a Thresher service did not finish within its deadline (gRPC DEADLINE_EXCEEDED)."""


class ResourceExhaustedError(ThresherError):
    """A request or answer over a size limit, or a service out of capacity (gRPC RESOURCE_EXHAUSTED)."""


class PermissionDeniedError(ThresherError, PermissionError):
    """A token that is missing, wrong, or not allowed to do this (UNAUTHENTICATED / PERMISSION_DENIED).

    ``code`` is the status code name the service answered with, so callers (the gallery's 401 and 403)
    can tell a missing or wrong token from one that may not do this.
    """

    def __init__(self, message: str = "", code: str = "PERMISSION_DENIED") -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ScanFailedError(ThresherError):
    """The scan of a datasource ended in failure; the message carries the scanner's reason."""


class ServiceError(ThresherError):
    """A service failed in a way no more specific class describes (gRPC INTERNAL, UNKNOWN, ...)."""


class MissingExtraError(ThresherError, ImportError):
    """A feature needs a package that an optional extra installs; the message names the extra."""


class StoreLayoutError(ThresherError):
    """A metadata store whose layout this version of Thresher cannot open: one written by a newer
    Thresher. The message names the store, both layout versions and what to do."""


class StoreUnavailableError(ThresherError, ConnectionError):
    """The metadata service cannot reach its store (the PostgreSQL database): the message names the
    database (its URL without the password) and the driver's reason."""


class ScanInProgressWarning(UserWarning):
    """A query ran while the datasource was still being scanned: the result holds what is indexed so far."""
