"""Arrow IPC framing for gRPC streams: one schema message, then one message per record batch.

Record batches travel as IPC-encapsulated messages, so a receiver rebuilds them without copying the
buffers and a relay (the flight service) forwards them without converting anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

from thresher.transport import TARGET_BATCH_BYTES


def serialize_schema(schema: pa.Schema) -> bytes:
    return schema.serialize().to_pybytes()


def read_schema(message: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(message))


def read_batch(message: bytes, schema: pa.Schema) -> pa.RecordBatch:
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
