"""File and blob bytes for Flight DoGet: ``FileTicket`` and ``BlobTicket`` handlers.

The stream is Arrow record batches of one non-nullable ``data: binary`` column, one row per chunk of
at most ``CHUNK_SIZE`` bytes; the bytes are the rows concatenated in order. The schema metadata
carries ``thresher.size`` (the whole object's length), ``thresher.length`` (the bytes this stream
carries) and ``thresher.etag`` when the storage has one, so a client can show progress and check it
got everything. The object is looked up before the stream starts, so a missing one fails DoGet itself
with NOT_FOUND naming it.

Wiring, in ``ThresherFlightServer.do_get``::

    if kind == "file":
        return fl.GeneratorStream(*files.stream_file(parsed.file, self._storages.bind(forwarded(context))))
    if kind == "blob":
        return fl.GeneratorStream(*files.stream_blob(parsed.blob, self._blobs))

with ``self._storages = files.DatasourceStorages(channel)`` and ``self._blobs = open_blob_store()``
made in ``__init__`` (and ``self._storages.close()`` in ``shutdown``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

import grpc
import pyarrow as pa

from thresher.core.status import STORAGE_MARK
from thresher.core.storage import for_datasource, in_repository
from thresher.core.storage.base import Storage
from thresher.core.storage.blobs import BlobStore, check_digest
from thresher.core.storage.storage_errors import (
    InvalidStorageUriError,
    StorageAccessDeniedError,
    StorageConfigError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
)
from thresher.services.auth.forwarded_headers import Metadata
from thresher.services.flight.flight_errors import status_error
from thresher.v1 import flight_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb

CHUNK_SIZE = 4 * 1024 * 1024
SIZE_KEY, LENGTH_KEY, ETAG_KEY = b"thresher.size", b"thresher.length", b"thresher.etag"
DATA_COLUMN = "data"
CALL_TIMEOUT = 30.0
# A git storage pins its revision's commit when opened; reopening after this long sees a moved branch.
GIT_STORAGE_TTL = 5.0
CACHED_STORAGES = 64

_STATUS = (
    (StorageNotFoundError, grpc.StatusCode.NOT_FOUND),
    (StorageAccessDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (StorageUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (InvalidStorageUriError, grpc.StatusCode.INVALID_ARGUMENT),
    (StorageConfigError, grpc.StatusCode.FAILED_PRECONDITION),
)


def file_schema(size: int, length: int, etag: str | None) -> pa.Schema:
    metadata = {SIZE_KEY: str(size).encode(), LENGTH_KEY: str(length).encode()}
    if etag:
        metadata[ETAG_KEY] = etag.encode()
    return pa.schema([pa.field(DATA_COLUMN, pa.binary(), nullable=False)], metadata=metadata)


def stream_file(
    ticket: flight_pb2.FileTicket, storage_for_datasource: Callable[[int], Storage], chunk_size: int = CHUNK_SIZE
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and batches of bytes ``[offset, offset + length)`` (length 0: to the end) of the
    datasource's file ``ticket.path``. Storage failures become Flight errors naming the object."""
    if ticket.offset < 0 or ticket.length < 0:
        raise status_error(
            grpc.StatusCode.INVALID_ARGUMENT, f"file ticket for {ticket.path!r}: offset and length must be >= 0"
        )
    if not ticket.path:
        raise status_error(grpc.StatusCode.INVALID_ARGUMENT, "file ticket names no path")
    with storage_errors():
        storage = storage_for_datasource(ticket.datasource_id)
        entry, chunks = storage.open_range(
            ticket.path, ticket.offset, ticket.offset + ticket.length if ticket.length else None, chunk_size
        )
    start = min(ticket.offset, entry.size)
    end = entry.size if ticket.length == 0 else min(entry.size, start + ticket.length)
    schema = file_schema(entry.size, end - start, entry.etag)
    return schema, _batches(schema, chunks)


def stream_blob(
    ticket: flight_pb2.BlobTicket, blobs: BlobStore, chunk_size: int = CHUNK_SIZE
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and batches of the blob ``ticket.sha256`` (NOT_FOUND naming the hash if it is absent)."""
    with storage_errors():
        size = blobs.size(check_digest(ticket.sha256))
    schema = file_schema(size, size, ticket.sha256)
    return schema, _batches(schema, blobs.stream(ticket.sha256, chunk_size=chunk_size))


def _batches(schema: pa.Schema, chunks: Iterator[bytes]) -> Iterator[pa.RecordBatch]:
    with storage_errors():
        for chunk in chunks:
            yield pa.record_batch([pa.array([chunk], pa.binary())], schema=schema)


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Re-raises storage failures as Flight errors with the matching status and the storage's message."""
    try:
        yield
    except StorageError as error:
        code = next((code for kind, code in _STATUS if isinstance(error, kind)), grpc.StatusCode.INTERNAL)
        # Marked so the client blames the storage endpoint, not the flight service, for an UNAVAILABLE.
        mark = STORAGE_MARK if code == grpc.StatusCode.UNAVAILABLE else ""
        raise status_error(code, f"{mark}{error}") from None


class DatasourceStorages:
    """Opens (and keeps a few of) the storages of datasources, looked up in the metadata service.

    Each lookup asks the metadata service for the datasource with the caller's credentials, so access
    checks apply on every ticket; only the opened storage is reused.
    """

    def __init__(self, channel: grpc.Channel) -> None:
        # The generated gRPC module has no type information: responses are annotated where they are read.
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        self._open: OrderedDict[tuple[str, str, str], tuple[Storage, float]] = OrderedDict()

    def bind(self, metadata: Metadata = ()) -> Callable[[int], Storage]:
        """``storage_for_datasource`` for ``stream_file``, calling on behalf of the client in ``metadata``."""
        return lambda datasource_id: self.get(datasource_id, metadata)

    def get(self, datasource_id: int, metadata: Metadata = ()) -> Storage:
        """The storage of datasource ``datasource_id``; gRPC errors propagate (flight_errors maps them)."""
        datasource = self._stub.GetDatasource(
            mpb.GetDatasourceRequest(id=datasource_id), timeout=CALL_TIMEOUT, metadata=metadata
        ).datasource
        repository = ""
        if in_repository(datasource.source_uri, datasource.revision):
            repository = self._stub.GetNamespace(
                mpb.GetNamespaceRequest(name=datasource.namespace), timeout=CALL_TIMEOUT, metadata=metadata
            ).namespace.repository_uri
        key = (datasource.source_uri, datasource.revision, repository)
        now = time.monotonic()
        with self._lock:
            cached = self._open.get(key)
            if cached is not None and (not key[1] or now - cached[1] < GIT_STORAGE_TTL):
                self._open.move_to_end(key)
                return cached[0]
        storage = for_datasource(*key, refresh=True)  # a mirrored repository fetches its moved branches
        with self._lock:
            self._open[key] = (storage, now)
            evicted = [self._open.popitem(last=False)[1][0] for _ in range(len(self._open) - CACHED_STORAGES)]
            if cached is not None:
                evicted.append(cached[0])
        for old in evicted:
            old.close()
        return storage

    def close(self) -> None:
        with self._lock:
            storages, self._open = [s for s, _ in self._open.values()], OrderedDict()
        for storage in storages:
            storage.close()
