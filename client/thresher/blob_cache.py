"""Fetching blob field values by hash, through a disk cache that several processes can share.

A cached blob is the file ``<download root>/blobs-cache/<hash[:2]>/<hash>``, written under a temporary
name and renamed into place once its sha256 is checked: a file that exists is complete and correct,
and processes racing to cache the same blob both succeed. Bytes come from the flight service, or
straight from the blob store's bucket when ``$THRESHER_BLOB_STORE`` names one and that bucket
downloader is enabled.
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable, Iterable, Iterator

from thresher import downloads
from thresher.connection import Connection
from thresher.core.settings import Settings
from thresher.core.storage.blobs import BlobStore, check_digest
from thresher.core.storage.storage_errors import StorageError
from thresher.flight_bytes import blob_chunks
from thresher.local_files import download_root, write_atomically
from thresher.parallel import run_all

DEFAULT_THREADS = 16


def cache_root() -> pathlib.Path:
    return download_root() / "blobs-cache"


def cached_path(digest: str) -> pathlib.Path:
    """Where blob ``digest`` is cached (whether or not it is yet)."""
    return cache_root() / digest[:2] / check_digest(digest)


def blob_reader(connection: Connection, datasource_id: int) -> Callable[[str], Iterator[bytes | memoryview]]:
    """How to read a blob's bytes by hash: from the blob store's bucket when enabled, else via flight,
    as a reader of datasource ``datasource_id`` (which holds the blob)."""
    location = Settings.read("blob_store")
    scheme = location.partition("://")[0] if "://" in location else ""
    client = downloads.bucket_client(scheme)
    if client is not None:
        from thresher.core.storage import open_storage

        return BlobStore(open_storage(location, client=client)).stream
    return lambda digest: blob_chunks(connection, digest, datasource_id)


def fetch(connection: Connection, digest: str, cache_on_disk: bool = True, *, datasource_id: int) -> bytes:
    """The bytes of blob ``digest`` held by datasource ``datasource_id``, from the cache when there;
    BlobNotFoundError naming it if none exists."""
    if not cache_on_disk:
        return b"".join(_verified(blob_reader(connection, datasource_id)(check_digest(digest)), digest))
    return cache(connection, digest, datasource_id=datasource_id).read_bytes()


def cache(connection: Connection, digest: str, *, datasource_id: int) -> pathlib.Path:
    """The cached file of blob ``digest`` (held by datasource ``datasource_id``), fetched first if it is
    not cached yet."""
    path = cached_path(digest)
    if not path.exists():
        write_atomically(path, _verified(blob_reader(connection, datasource_id)(digest), digest))
    return path


def cache_many(
    connection: Connection,
    digests: Iterable[str],
    threads: int = DEFAULT_THREADS,
    progress: bool = True,
    *,
    datasource_id: int,
) -> dict[str, pathlib.Path]:
    """Caches every distinct blob in ``digests`` (in parallel, with a progress bar); hash -> cached file."""
    from tqdm.auto import tqdm  # only here: keeps `import thresher` light

    wanted = sorted({check_digest(d) for d in digests})
    paths = {digest: cached_path(digest) for digest in wanted}
    missing = [digest for digest, path in paths.items() if not path.exists()]
    with tqdm(total=len(missing), desc="fetching blobs", unit=" blobs", disable=not progress, leave=False) as bar:
        failures = run_all(
            lambda digest: cache(connection, digest, datasource_id=datasource_id),
            missing,
            threads,
            lambda: bar.update(1),
        )
    if failures:
        raise failures[0]
    return paths


def _verified(chunks: Iterable[bytes | memoryview], digest: str) -> Iterator[bytes | memoryview]:
    """Passes ``chunks`` on, raising at the end if they do not hash to ``digest`` (so nothing is cached)."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    if hasher.hexdigest() != digest:
        raise StorageError(
            f"blob {digest} arrived with sha256 {hasher.hexdigest()}: corrupted in transit or in the blob store"
        )
