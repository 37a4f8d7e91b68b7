"""Storage failures, one class per cause, each message naming the bucket, object, repository or revision.

They subclass Thresher's general errors and the matching built-in ones, so ``except NotFoundError``,
``except FileNotFoundError`` and ``except StorageNotFoundError`` all catch a missing object.
"""

from __future__ import annotations

from thresher.core.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError, ThresherError


class StorageError(ThresherError):
    """Base class of every storage failure."""


class StorageNotFoundError(StorageError, NotFoundError, FileNotFoundError):
    """A bucket, object, folder, file, repository or path that does not exist."""


class UnknownRevisionError(StorageNotFoundError):
    """A git revision (branch, tag or commit) the repository does not have."""


class BlobNotFoundError(StorageNotFoundError):
    """A blob hash that is not in the blob store."""


class StorageAccessDeniedError(StorageError, PermissionDeniedError):
    """Credentials that are missing, wrong, expired, or not allowed to read or write this object."""


class StorageUnavailableError(StorageError, ConnectionError):
    """An endpoint that cannot be reached (refused, timed out, DNS failure)."""


class InvalidStorageUriError(StorageError, InvalidArgumentError):
    """A storage URI or object path that cannot be used: unknown scheme, no bucket, a path leaving its root."""


class StorageConfigError(StorageError, InvalidArgumentError):
    """A storage setting in the environment that cannot be used (a timeout that is not a number)."""


class ReadOnlyStorageError(StorageError, InvalidArgumentError):
    """A write to storage that only reads (a git revision)."""


class UnsafePathError(StorageError, InvalidArgumentError):
    """A datapoint path that would write outside its target folder (``..``, an absolute path, a symlink out)."""
