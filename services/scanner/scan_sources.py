"""What a scan reads from storage: a listing of entries and the bytes of one file, keyed by URI scheme.

Local folders (``/abs/dir``, ``file:///abs/dir``) are listed by ``local_listing.LocalSource``, the scanner's own
tuned walk. S3 (``s3://``), GCS (``gs://``) and git (``git+...`` URIs, and a path in the namespace's
repository when the datasource has a revision) go through ``thresher.core.storage`` (``storage_source``).
Another kind registers its ``Source`` for its scheme with ``register_source``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from thresher.core.storage import in_repository


@dataclasses.dataclass(slots=True)
class Page:
    """A run of listed files, column by column: a scan lists hundreds of thousands of files, and one
    object per file would cost more than listing it."""

    paths: list[str] = dataclasses.field(default_factory=list)
    """POSIX paths relative to the source root."""
    sizes: list[int] = dataclasses.field(default_factory=list)
    mtimes_ns: list[int] = dataclasses.field(default_factory=list)
    """Modification times, nanoseconds since the epoch (UTC)."""
    etags: list[str | None] | None = None
    """An object store's content tags (S3 ETag, GCS MD5, git blob id), where the store has them."""
    content_types: list[str | None] | None = None
    """The content types the store records for the objects, where its listing gives them."""

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows: slice) -> Page:
        return Page(
            self.paths[rows],
            self.sizes[rows],
            self.mtimes_ns[rows],
            *(None if column is None else column[rows] for column in self._optional()),
        )

    def take(self, rows: Sequence[int]) -> Page:
        """The page of the given rows, in that order."""
        return Page(
            [self.paths[i] for i in rows],
            [self.sizes[i] for i in rows],
            [self.mtimes_ns[i] for i in rows],
            *(None if column is None else [column[i] for i in rows] for column in self._optional()),
        )

    def extend(self, other: Page) -> None:
        if self.etags is not None or other.etags is not None:
            self.etags = (self.etags or [None] * len(self)) + (other.etags or [None] * len(other))
        if self.content_types is not None or other.content_types is not None:
            self.content_types = (self.content_types or [None] * len(self)) + (
                other.content_types or [None] * len(other)
            )
        self.paths += other.paths
        self.sizes += other.sizes
        self.mtimes_ns += other.mtimes_ns

    def _optional(self) -> tuple[list[str | None] | None, ...]:
        return self.etags, self.content_types


class SourceError(Exception):
    """A source that cannot be listed: missing, not a folder, unreadable, or of an unsupported kind."""


class ScanCancelled(Exception):
    """The scan was asked to stop (service shutdown)."""


class Source(Protocol):
    """A tree of files under one root."""

    tagged: bool
    """Whether pages carry ``etags``, which then decide what changed (rather than size and mtime)."""
    remote: bool
    """Whether reading a file is a network request (image headers are then read by more threads)."""

    def pages(self, cancel: threading.Event | None = None) -> Iterator[Page]:
        """Every file under the root, a page at a time, in no particular order.

        Raises SourceError when the root or a folder in it cannot be read, ScanCancelled once ``cancel``
        is set.
        """
        ...

    def open(self, path: str) -> BinaryIO:
        """Opens the file at ``path`` (relative to the root) for reading (image headers)."""
        ...

    def close(self) -> None:
        """Releases what the source holds (connections, helper processes)."""
        ...


# factory(uri, revision, repository_uri): the datasource's source URI and revision, and the git
# repository its namespace is bound to ("" if none).
SourceFactory = Callable[[str, str, str], Source]
GIT = "git"
"""The registry key of git sources: ``git+<transport>://`` URIs and paths in a namespace's repository."""


def _local_source(uri: str, revision: str, repository_uri: str) -> Source:
    # Imported here because local_listing.py imports this module.
    from thresher.services.scanner.local_listing import LocalSource

    return LocalSource(local_path(uri))


def _storage_source(uri: str, revision: str, repository_uri: str) -> Source:
    from thresher.services.scanner.storage_source import open_storage_source

    return open_storage_source(uri, revision, repository_uri)


_FACTORIES: dict[str, SourceFactory] = {
    "": _local_source,
    "file": _local_source,
    "s3": _storage_source,
    "gs": _storage_source,
    GIT: _storage_source,
}


def register_source(scheme: str, factory: SourceFactory) -> None:
    """Makes ``open_source`` build sources for ``scheme://`` URIs with ``factory(uri, revision, repository_uri)``."""
    _FACTORIES[scheme] = factory


def source_scheme(uri: str, revision: str = "") -> str:
    """The registry key of a datasource's source: its URI scheme, or ``git`` for any git source."""
    if in_repository(uri, revision):
        return GIT
    scheme = urlsplit(uri).scheme.lower()
    return GIT if scheme.startswith("git+") else scheme


def open_source(uri: str, revision: str = "", repository_uri: str = "") -> Source:
    """The source behind a datasource: a local folder, an S3 or GCS prefix, or a path in a git revision.

    Raises SourceError when the kind is unsupported or the source cannot be opened (missing bucket
    or repository, unknown revision, ...), naming it.
    """
    scheme = source_scheme(uri, revision)
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted(f"{s}://" for s in _FACTORIES if s and s != GIT))
        raise SourceError(
            f"{scheme}:// sources are not supported (supported: {known}, git+..., "
            "a path in the namespace's repository with a revision, and local paths)"
        )
    return factory(uri, revision, repository_uri)


def local_path(uri: str) -> str:
    """The absolute local path a ``file://`` URI or a plain path names."""
    parts = urlsplit(uri)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(
                f"{uri}: file:// URIs must name a local path (file:///abs/dir), not host {parts.netloc!r}"
            )
        path = unquote(parts.path)
    else:
        path = uri
    if not path.startswith("/"):
        # A relative path would be resolved against the scanner's working folder, which callers cannot know.
        raise SourceError(f"{uri!r} is not an absolute path")
    return path
