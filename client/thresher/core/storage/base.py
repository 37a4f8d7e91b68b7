"""The storage interface every backend implements, and what they share.

A :class:`Storage` is a tree of objects under one root (a folder, a bucket prefix, a path in a git
revision). Paths are POSIX, relative to that root, with no leading ``/``. Listing is paginated and
streamed (one backend request per page, nothing buffered beyond it); reads take byte ranges
``[start, end)`` where ``end=None`` means the end of the object, and a range past the end reads short,
as slicing does. Every failure is a :mod:`thresher.core.storage.storage_errors` class naming the object.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import io
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from thresher.core.storage.storage_errors import (
    InvalidStorageUriError,
    ReadOnlyStorageError,
    StorageError,
    StorageNotFoundError,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

# One request's worth of bytes when streaming: large enough to amortise a request, small enough to
# keep memory flat while copying a big object.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
DEFAULT_PAGE_SIZE = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One object in a listing."""

    path: str
    """POSIX path relative to the storage root."""
    size: int
    mtime_ns: int
    """Last modification, nanoseconds since the epoch (UTC); for git, the revision's commit time."""
    etag: str | None = None
    """A tag that changes when the content does (S3 ETag, GCS MD5, git blob id); None for local files."""

    @property
    def mtime(self) -> float:
        """Last modification in seconds since the epoch."""
        return self.mtime_ns / 1e9


class Storage(abc.ABC):
    """A tree of objects under one root; see the module docstring for the conventions."""

    #: The URI of the root (``file:///abs/dir``, ``s3://bucket/prefix``, ``gs://...``, ``git+...``).
    uri: str
    read_only: bool = False

    # -- listing ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def pages(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[list[Entry]]:
        """Every object whose path starts with ``prefix`` (a plain string prefix, not only a folder),
        a page (about ``page_size`` entries, one backend request) at a time, in no promised order.

        StorageNotFoundError when the root itself (bucket, folder, repository path) does not exist.
        """

    def list(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Entry]:
        """Every object whose path starts with ``prefix``, streamed page by page."""
        for page in self.pages(prefix, page_size):
            yield from page

    @abc.abstractmethod
    def stat(self, path: str) -> Entry:
        """The object at ``path``; StorageNotFoundError if there is none."""

    def exists(self, path: str) -> bool:
        """Whether an object exists at ``path``."""
        try:
            self.stat(path)
        except StorageNotFoundError:
            return False
        return True

    # -- reading ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def read(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of the object at ``path`` (short if it ends sooner)."""

    def stream(
        self, path: str, start: int = 0, end: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the object in chunks of at most ``chunk_size``, one ranged read each.

        Backends with a native streaming read override this to use one request.
        """
        check_range(start, end)
        position = start
        while end is None or position < end:
            stop = position + chunk_size if end is None else min(end, position + chunk_size)
            chunk = self.read(path, position, stop)
            if chunk:
                yield chunk
            if len(chunk) < stop - position:
                return
            position = stop

    def open_range(
        self, path: str, start: int = 0, end: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> tuple[Entry, Iterator[bytes]]:
        """The object's entry and its bytes ``[start, end)`` as a stream. A missing object fails here,
        before any byte is streamed; backends that learn the size from the read itself override this
        to spend one request instead of two."""
        entry = self.stat(path)
        return entry, self.stream(path, start, end, chunk_size)

    def open(self, path: str, buffer_size: int = 1024 * 1024) -> BinaryIO:
        """A read-only, seekable binary file over the object, reading ranges on demand."""
        raw = RangedReader(self, path, self.stat(path).size)
        return io.BufferedReader(raw, buffer_size=buffer_size)

    # -- writing ----------------------------------------------------------------------------------

    def write(self, path: str, data: bytes) -> None:
        """Stores ``data`` as the object at ``path``, whole: a reader sees the old object or the new one."""
        raise ReadOnlyStorageError(f"{self.uri} is read-only: cannot write {path!r}")

    def write_file(self, path: str, local_path: str | os.PathLike[str]) -> None:
        """Uploads the local file ``local_path`` as the object at ``path`` (multipart where the backend has it)."""
        with open(local_path, "rb") as handle:
            self.write(path, handle.read())

    def delete(self, path: str) -> None:
        """Removes the object at ``path``; nothing happens if there is none."""
        raise ReadOnlyStorageError(f"{self.uri} is read-only: cannot delete {path!r}")

    # -- naming -----------------------------------------------------------------------------------

    def object_uri(self, path: str) -> str:
        """The URI of the object at ``path``, as error messages name it."""
        return self.uri.rstrip("/") + "/" + path if path else self.uri

    def url(self, path: str, expires: int = 3600) -> str | None:
        """A URL a generic tool (curl, a browser) can fetch the object from, valid ``expires`` seconds;
        None when the backend has none (the flight service serves those bytes)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional: a backend that holds nothing keeps the no-op
        """Releases connections and helper processes; the storage is not used afterwards."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri}>"


class SharedClients:
    """The SDK clients every storage of one backend shares: one per key (an endpoint), made on first use
    by ``factory(key)``, unless a ``default`` client was set (which serves when no endpoint is asked)."""

    def __init__(self, factory: Callable[[Any], Any]) -> None:
        self._factory = factory
        self._clients: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self.default: Any = None

    def get(self, key: Any, explicit: bool = False) -> Any:
        """The client for ``key``; the default client instead when one is set and ``explicit`` is false."""
        if self.default is not None and not explicit:
            return self.default
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._factory(key)
            return self._clients[key]


class RangedReader(io.RawIOBase):
    """A seekable raw file whose reads are ranged reads of one object (wrap it in a BufferedReader).

    ``size`` may be None when unknown (seeking from the end is then unsupported); ``limit`` stops
    reads at that offset, e.g. to read no more than an image's header.
    """

    def __init__(self, storage: Storage, path: str, size: int | None = None, limit: int | None = None) -> None:
        super().__init__()
        self._storage = storage
        self._path = path
        self._size = size
        self._end = min(x for x in (size, limit) if x is not None) if size is not None or limit is not None else None
        self._position = 0
        self.name = storage.object_uri(path)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._position}
        if whence == io.SEEK_END:
            if self._size is None:
                raise io.UnsupportedOperation(
                    f"{self.name}: the object's size is not known, so it cannot seek from the end"
                )
            bases[io.SEEK_END] = self._size
        base = bases[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset} in {self.name}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer)  # io hands in a bytearray or a memoryview of one
        end = self._position + len(view) if self._end is None else min(self._end, self._position + len(view))
        if self._position >= end:
            return 0
        data = self._storage.read(self._path, self._position, end)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


def check_range(start: int, end: int | None) -> None:
    """Rejects negative or reversed ranges (a caller's bug, better named than silently empty)."""
    if start < 0 or (end is not None and end < start):
        raise InvalidStorageUriError(f"invalid byte range [{start}, {end}): start must be >= 0 and end >= start")


def clean_relative(path: str) -> str:
    """``path`` as a relative POSIX path under a root; InvalidStorageUriError if it is absolute or uses ``..``.

    Backends whose paths map onto a file system (local folders, git trees) call this, so a path can
    never name something outside the root.
    """
    if path.startswith("/") or "\0" in path:
        raise InvalidStorageUriError(f"{path!r} is not a relative path inside the storage root")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidStorageUriError(f"{path!r} leaves the storage root ('..' is not allowed)")
    return "/".join(parts)


def join_key(prefix: str, path: str) -> str:
    """An object key: the root prefix (``""`` or ending in ``/``) followed by ``path``."""
    return prefix + path.lstrip("/")


@contextlib.contextmanager
def mapped_errors(mapper: Callable[[Exception], StorageError | None]) -> Iterator[None]:
    """Re-raises an SDK failure inside the block as the storage error ``mapper`` gives (None: as it was)."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        mapped = mapper(error)
        if mapped is None:
            raise
        raise mapped from error
