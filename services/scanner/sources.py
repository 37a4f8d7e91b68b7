"""What a scan reads from storage: a listing of entries and the bytes of one file, keyed by URI scheme.

Local folders are the only source so far; S3, GCS and git sources register their own ``Source`` for
their scheme with ``register_source`` and the rest of the scanner stays as it is.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit


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
    """An object store's content tags, where the store has them."""

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows: slice) -> "Page":
        return Page(self.paths[rows], self.sizes[rows], self.mtimes_ns[rows],
                    None if self.etags is None else self.etags[rows])

    def take(self, rows: Sequence[int]) -> "Page":
        """The page of the given rows, in that order."""
        return Page([self.paths[i] for i in rows], [self.sizes[i] for i in rows], [self.mtimes_ns[i] for i in rows],
                    None if self.etags is None else [self.etags[i] for i in rows])

    def extend(self, other: "Page") -> None:
        if self.etags is not None or other.etags is not None:
            self.etags = (self.etags or [None] * len(self)) + (other.etags or [None] * len(other))
        self.paths += other.paths
        self.sizes += other.sizes
        self.mtimes_ns += other.mtimes_ns


class SourceError(Exception):
    """A source that cannot be listed: missing, not a folder, unreadable, or of an unsupported kind."""


class ScanCancelled(Exception):
    """The scan was asked to stop (service shutdown)."""


class Source(Protocol):
    """A tree of files under one root."""

    def pages(self, cancel: threading.Event | None = None) -> Iterator[Page]:
        """Every file under the root, a page at a time, in no particular order.

        Raises SourceError when the root or a folder in it cannot be read, ScanCancelled once ``cancel``
        is set.
        """
        ...

    def open(self, path: str) -> BinaryIO:
        """Opens the file at ``path`` (relative to the root) for reading."""
        ...


SourceFactory = Callable[[str, str], Source]


def _local_source(uri: str, revision: str) -> Source:
    # Imported here because local.py imports this module.
    from thresher.services.scanner.local import LocalSource
    return LocalSource(local_path(uri))


_FACTORIES: dict[str, SourceFactory] = {"": _local_source, "file": _local_source}


def register_source(scheme: str, factory: SourceFactory) -> None:
    """Makes ``open_source`` build sources for ``scheme://`` URIs with ``factory(uri, revision)``."""
    _FACTORIES[scheme] = factory


def open_source(uri: str, revision: str = "") -> Source:
    """The source behind a datasource URI: ``file:///abs/dir`` or a plain absolute path for now."""
    scheme = urlsplit(uri).scheme.lower()
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted(f"{s}://" for s in _FACTORIES if s))
        raise SourceError(f"{scheme}:// sources are not supported yet (supported: {known} and local paths)")
    return factory(uri, revision)


def local_path(uri: str) -> str:
    """The absolute local path a ``file://`` URI or a plain path names."""
    parts = urlsplit(uri)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"{uri}: file:// URIs must name a local path (file:///abs/dir), not host {parts.netloc!r}")
        path = unquote(parts.path)
    else:
        path = uri
    if not path.startswith("/"):
        # A relative path would be resolved against the scanner's working folder, which callers cannot know.
        raise SourceError(f"{uri!r} is not an absolute path")
    return path
