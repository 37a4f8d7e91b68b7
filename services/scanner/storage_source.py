"""S3 and GCS prefixes and paths in git revisions as scan sources, through ``thresher.core.storage``.

The listing is the storage's paginated one (a request per page of ``PAGE_SIZE`` objects; for git, the
tree at the revision). Each page carries the objects' tags (S3 ETag, GCS MD5, git blob id), which
decide what changed. Image headers are read with ranged reads of ``HEADER_CHUNK`` bytes, never past
``HEADER_LIMIT`` of an object, so a scan never downloads whole images.

Storage failures become SourceError carrying the storage's message, which names the bucket, object,
endpoint, repository or revision: the datasource fails with that reason.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO

from thresher.core.storage import Entry, Storage, StorageError, StorageUnavailableError, for_datasource
from thresher.core.storage.base import RangedReader
from thresher.core.storage.gcs import GCSStorage
from thresher.core.storage.s3 import S3Storage
from thresher.services.scanner.scan_sources import Page, ScanCancelled, SourceError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer  # the buffer type io.RawIOBase.readinto takes; exists only for checkers

PAGE_SIZE = 1000
# One ranged read: enough for the header of nearly every PNG, GIF, WebP or JPEG without EXIF bloat.
HEADER_CHUNK = 64 * 1024
# JPEG headers can sit behind large EXIF/ICC segments; past this much an image's size stays unknown.
HEADER_LIMIT = 1024 * 1024


@contextlib.contextmanager
def source_errors() -> Iterator[None]:
    """Re-raises storage failures as SourceError with the storage's message."""
    try:
        yield
    except StorageError as error:
        raise SourceError(str(error)) from error


def open_storage_source(uri: str, revision: str = "", repository_uri: str = "") -> StorageSource:
    """The source of a datasource (see ``thresher.core.storage.for_datasource``). A git revision is resolved
    anew, after fetching a remote repository, so a rescan of a moving branch sees where it is now."""
    with source_errors():
        storage = for_datasource(uri, revision, repository_uri, refresh=True)
    return StorageSource(storage)


class StorageSource:
    """The objects of one storage, as a scan lists and reads them, ``page_size`` (default ``PAGE_SIZE``)
    objects per listing request."""

    tagged = True
    remote = True

    def __init__(self, storage: Storage, page_size: int | None = None) -> None:
        self.storage = storage
        self._page_size = page_size or PAGE_SIZE

    def pages(self, cancel: threading.Event | None = None) -> Iterator[Page]:
        listed = 0
        with source_errors():
            for entries in self.storage.pages(page_size=self._page_size):
                if cancel is not None and cancel.is_set():
                    raise ScanCancelled()
                listed += len(entries)
                yield entry_page(entries)
        if not listed and _is_prefix(self.storage):
            # On an object store a prefix is only a string: a mistyped one lists nothing, exactly as an
            # empty one does. Failing keeps the datapoints and says so, where READY would empty it.
            raise SourceError(
                f"no objects under {self.storage.uri}: check the prefix (a scan that lists nothing "
                "under a bucket prefix fails rather than emptying the datasource)"
            )

    def open(self, path: str) -> BinaryIO:
        """The head of the object, read in ranges on demand (at most ``HEADER_LIMIT`` bytes)."""
        return io.BufferedReader(_HeadReader(self.storage, path), buffer_size=HEADER_CHUNK)

    def close(self) -> None:
        self.storage.close()


def entry_page(entries: Sequence[Entry]) -> Page:
    """A page of listed storage entries, column by column."""
    # Entries of backends that record a content type carry it (a listing gives it for free on GCS).
    types = [getattr(entry, "content_type", None) for entry in entries]
    return Page(
        [entry.path for entry in entries],
        [entry.size for entry in entries],
        [entry.mtime_ns for entry in entries],
        [entry.etag for entry in entries],
        types if any(types) else None,
    )


def _is_prefix(storage: Storage) -> bool:
    return isinstance(storage, S3Storage | GCSStorage) and bool(storage.prefix)


class _HeadReader(RangedReader):
    """The object as a seekable raw file of its first ``HEADER_LIMIT`` bytes at most, read in ranges.

    Its end is taken to be ``HEADER_LIMIT`` (the listing's size is not at hand), which only a reader
    that seeks from the end would notice; image header readers do not.
    """

    def __init__(self, storage: Storage, path: str) -> None:
        super().__init__(storage, path, HEADER_LIMIT)

    def readinto(self, buffer: WriteableBuffer) -> int:
        try:
            return super().readinto(buffer)
        except StorageUnavailableError as error:
            # The endpoint failed (down, timed out, 5xx), not this object: fail the scan. Passed over, the
            # image would be indexed without its size for good, since a rescan leaves its etag alone.
            # SourceError is no OSError, so image readers let it through.
            raise SourceError(str(error)) from error
        except StorageError as error:
            # OSError is what image readers expect of a file, and what AutomaticFields passes over.
            raise OSError(str(error)) from error
