"""The blob store: bytes stored once, content-addressed by sha256, on any storage.

Blob ``<hex>`` lives at ``<hex[:2]>/<hex>`` under the store's root: ``$THRESHER_BLOB_STORE`` (a folder,
``s3://bucket/prefix`` or ``gs://bucket/prefix``) when set, else ``$THRESHER_HOME/blobs``. Writes are
whole-object (a temporary name and a rename for folders), so readers never see part of a blob, and
racing writers of the same bytes both succeed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from thresher.core.settings import Settings, env_name
from thresher.core.storage import open_storage
from thresher.core.storage.base import DEFAULT_CHUNK_SIZE, Storage
from thresher.core.storage.local import LocalStorage
from thresher.core.storage.storage_errors import BlobNotFoundError, InvalidStorageUriError, StorageNotFoundError

BLOB_STORE_ENV = env_name("blob_store")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Remote stores answer one request at a time per object; writing a batch's blobs side by side hides that.
_PARALLEL_PUTS = 16


def blob_store_location(home: str | None = None) -> str:
    """Where blobs live: ``$THRESHER_BLOB_STORE``, else ``<home>/blobs`` (home defaults to ``$THRESHER_HOME``)."""
    return Settings.read("blob_store") or os.path.join(home or Settings.read("home"), "blobs")


def open_blob_store(location: str | None = None, home: str | None = None) -> BlobStore:
    """The blob store at ``location`` (default: :func:`blob_store_location`)."""
    return BlobStore(open_storage(location or blob_store_location(home)))


def check_digest(digest: str) -> str:
    """``digest`` if it is a sha256 in lowercase hex; InvalidStorageUriError naming it otherwise."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidStorageUriError(f"{digest!r} is not a blob hash (64 lowercase hex digits of a sha256)")
    return digest


class BlobStore:
    """Blobs on ``storage`` (or a folder path), keyed by their sha256."""

    def __init__(self, storage: Storage | str) -> None:
        self.storage = storage if isinstance(storage, Storage) else LocalStorage(storage)

    @property
    def uri(self) -> str:
        return self.storage.uri

    @staticmethod
    def key(digest: str) -> str:
        return f"{digest[:2]}/{digest}"

    def path(self, digest: str) -> str:
        """The local file of a blob (folder stores only)."""
        if not isinstance(self.storage, LocalStorage):
            raise InvalidStorageUriError(f"blob store {self.uri} is not a local folder")
        return self.storage.local_path(self.key(check_digest(digest)))

    def put(self, data: bytes) -> str:
        """Stores ``data`` unless it is there already; returns its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        key = self.key(digest)
        if not self.storage.exists(key):
            self.storage.write(key, data)
        return digest

    def put_many(self, values: Iterable[bytes | None]) -> list[str | None]:
        """Stores each distinct value once (side by side on remote stores); None stays None."""
        values = list(values)
        distinct = {bytes(v) for v in values if v is not None}
        if len(distinct) > 1 and not isinstance(self.storage, LocalStorage):
            with ThreadPoolExecutor(min(_PARALLEL_PUTS, len(distinct))) as pool:
                list(pool.map(self.put, distinct))
        else:
            for value in distinct:
                self.put(value)
        return [None if v is None else hashlib.sha256(v).hexdigest() for v in values]

    def exists(self, digest: str) -> bool:
        return self.storage.exists(self.key(check_digest(digest)))

    def size(self, digest: str) -> int:
        """The blob's length in bytes; BlobNotFoundError if there is none."""
        with self._missing(digest):
            return self.storage.stat(self.key(check_digest(digest))).size

    def get(self, digest: str) -> bytes:
        """The blob's bytes; BlobNotFoundError naming the hash if there is none."""
        with self._missing(digest):
            return self.storage.read(self.key(check_digest(digest)))

    def stream(
        self, digest: str, start: int = 0, end: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """The blob's bytes ``[start, end)`` in chunks."""
        with self._missing(digest):
            yield from self.storage.stream(self.key(check_digest(digest)), start, end, chunk_size)

    @contextlib.contextmanager
    def _missing(self, digest: str) -> Iterator[None]:
        """Turns a missing object into BlobNotFoundError naming the hash and the store."""
        try:
            yield
        except BlobNotFoundError:
            raise
        except StorageNotFoundError as error:
            raise BlobNotFoundError(f"no blob {digest} in blob store {self.uri} ({error})") from error
