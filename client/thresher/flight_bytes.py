"""Reading file and blob bytes from the flight service (the stream ``services/flight/file_streams.py`` sends).

A stream is record batches of one ``data: binary`` column whose rows, in order, are the bytes; its
schema metadata says how many bytes to expect, which is checked so a cut stream never passes as a
whole file. Chunks are memoryviews of the received batches (bytes-like, not copied).
"""

from __future__ import annotations

from collections.abc import Iterator

from thresher.connection import Connection
from thresher.core import status
from thresher.core.errors import NotFoundError
from thresher.core.storage.storage_errors import BlobNotFoundError, StorageError, StorageNotFoundError
from thresher.v1 import flight_pb2

LENGTH_KEY = b"thresher.length"


def file_chunks(
    connection: Connection, datasource_id: int, path: str, offset: int = 0, length: int = 0
) -> Iterator[bytes | memoryview]:
    """Bytes ``[offset, offset + length)`` (length 0: to the end) of a datasource's file, in chunks."""
    ticket = flight_pb2.FlightTicket(
        file=flight_pb2.FileTicket(datasource_id=datasource_id, path=path, offset=offset, length=length)
    )
    return _chunks(connection, ticket, f"file {path!r} of datasource {datasource_id}", StorageNotFoundError)


def blob_chunks(connection: Connection, digest: str, datasource_id: int) -> Iterator[bytes | memoryview]:
    """The bytes of blob ``digest``, which datasource ``datasource_id`` holds (the flight service serves a
    blob only to readers of a datasource holding it), in chunks; BlobNotFoundError if the store has none."""
    ticket = flight_pb2.FlightTicket(blob=flight_pb2.BlobTicket(sha256=digest, datasource_id=datasource_id))
    return _chunks(connection, ticket, f"blob {digest}", BlobNotFoundError)


def _chunks(
    connection: Connection, ticket: flight_pb2.FlightTicket, what: str, missing: type[StorageNotFoundError]
) -> Iterator[bytes | memoryview]:
    try:
        reader = connection.open_ticket(ticket)
    except NotFoundError as error:
        raise missing(str(error)) from None
    expected = (reader.schema.metadata or {}).get(LENGTH_KEY)
    received = 0
    try:
        while True:
            try:
                batch = reader.read_chunk().data
            except StopIteration:
                break
            except Exception as error:  # pyarrow's Flight hierarchy; map what it is
                if not status.is_transport_error(error):
                    raise
                raise status.from_flight_error(error, connection.flight_address) from None
            for value in batch.column(0):
                chunk = memoryview(value.as_buffer())  # a view of the received batch: no copy
                received += len(chunk)
                yield chunk
    finally:
        reader.cancel()
    if expected is not None and received != int(expected):
        raise StorageError(f"the flight service sent {received} of {int(expected)} bytes of {what}")
