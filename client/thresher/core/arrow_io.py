"""Arrow IPC framing for gRPC streams: one schema message, then one message per record batch.

Record batches travel as IPC-encapsulated messages, so a receiver rebuilds them without copying the
buffers and a relay (the flight service) forwards them without converting anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

import pyarrow as pa

from thresher.core.transport import TARGET_BATCH_BYTES
from thresher.v1 import metadata_service_pb2


def serialize_schema(schema: pa.Schema) -> bytes:
    return cast(bytes, schema.serialize().to_pybytes())  # pyarrow has no type information


def read_schema(message: bytes | memoryview) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(message))


def read_batch(message: bytes | memoryview, schema: pa.Schema) -> pa.RecordBatch:
    return pa.ipc.read_record_batch(pa.py_buffer(message), schema)


def split_batch(batch: pa.RecordBatch, max_bytes: int = TARGET_BATCH_BYTES) -> Iterator[pa.RecordBatch]:
    """Slices a batch into pieces of about ``max_bytes`` so each fits in one gRPC message."""
    size = batch.nbytes
    if size <= max_bytes or batch.num_rows <= 1:
        yield batch
        return
    rows_per_piece = max(1, int(batch.num_rows * max_bytes / size))
    for start in range(0, batch.num_rows, rows_per_piece):
        yield batch.slice(start, rows_per_piece)


def serialize_batches(batches: Iterable[pa.RecordBatch], max_bytes: int = TARGET_BATCH_BYTES) -> Iterator[bytes]:
    for batch in batches:
        for piece in split_batch(batch, max_bytes):
            # Slices share buffers with their parent; serialize() writes only the sliced range.
            yield piece.serialize().to_pybytes()


def upsert_table_requests(
    datasource_id: int,
    path_column: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    create_missing: bool = False,
    staging_session: str = "",
    block_index: int = 0,
) -> Iterator[metadata_service_pb2.UpsertTableRequest]:
    """The UpsertTable stream for ``batches``: header, schema, batches, then the end that commits it
    (or, with ``staging_session``, stages it as block ``block_index`` of that session)."""
    request = metadata_service_pb2.UpsertTableRequest
    yield request(
        header=metadata_service_pb2.UpsertTableHeader(
            datasource_id=datasource_id,
            path_column=path_column,
            create_missing=create_missing,
            staging_session=staging_session,
            block_index=block_index,
        )
    )
    yield request(schema=serialize_schema(schema))
    sent = rows = 0
    for batch in batches:
        for piece in split_batch(batch):
            yield request(record_batch=piece.serialize().to_pybytes())
            sent += 1
            rows += piece.num_rows
    yield request(end=metadata_service_pb2.UpsertTableEnd(record_batches=sent, rows=rows))


def serialize_table(table: pa.Table) -> bytes:
    """A small table as one Arrow IPC stream (schema and batches) in bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return cast(bytes, sink.getvalue().to_pybytes())


def read_table(payload: bytes) -> pa.Table:
    """The table an Arrow IPC stream in ``payload`` holds."""
    return pa.ipc.open_stream(payload).read_all()
