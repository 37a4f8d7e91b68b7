"""Small query answers in one message: the whole result as one Arrow IPC stream, or nothing if too large.

A lookup by path or a limited query costs one unary call this way, where the Flight path costs two
round trips and a relay through the flight service. The result is read only up to one row past the
caller's bound, so a query that turns out large stops early and the caller reads it through Flight.
"""

from __future__ import annotations

import pyarrow as pa

from thresher.core.transport import MAX_MESSAGE_BYTES
from thresher.services.metadata.store import Store
from thresher.v1 import common_pb2

DEFAULT_MAX_ROWS = 10_000
# What one answer may hold, below gRPC's message limit by a margin for the envelope.
MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - 1024 * 1024
# Given explicitly: pyarrow's default reads two environment variables on every writer it opens.
_WRITE_OPTIONS = pa.ipc.IpcWriteOptions()
# Answers bounded to more rows than this are measured before they are encoded.
_MEASURED_ROWS = 1000


def read_small(
    store: Store, query: common_pb2.Query, max_rows: int, max_bytes: int = MAX_PAYLOAD_BYTES
) -> bytes | None:
    """``query``'s result as an Arrow IPC stream, or None when it has more than ``max_rows`` rows or bytes."""
    read = store.query_bounded(query, max_rows)
    if read is None:
        return None
    schema, kept = read
    # Summing sizes costs a lookup more than the rest of its encoding; the payload's size, checked
    # below, bounds a small answer, so only a large one is measured before it is encoded.
    if max_rows > _MEASURED_ROWS and sum(batch.nbytes for batch in kept) > max_bytes:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=_WRITE_OPTIONS) as writer:
        for batch in kept:
            writer.write_batch(batch)
    payload = sink.getvalue()
    return None if payload.size > max_bytes else payload.to_pybytes()
