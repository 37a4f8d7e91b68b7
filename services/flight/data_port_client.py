"""The flight service's reader of the metadata service's data port (see ``services/metadata/data_port.py``).

A query result read here is a Flight stream the flight service hands on whole (``RecordBatchStream``):
its batches, decoded by Arrow C++ without copying their buffers, go to this service's Flight writer
without passing through Python. With ``read_ahead`` > 0 a thread reads that many batches ahead of
the writer instead, so receiving the next batch overlaps sending the last where cores are free.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa
import pyarrow.flight as fl

from thresher.services.flight.flight_errors import relayed_flight_error
from thresher.services.flight.headers import Metadata
from thresher.services.flight.readahead import read_ahead
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as mpb

# The data port's mark of a SQL ticket (``services/metadata/data_port.py``); the flight service may run
# without the metadata service's modules, so it is spelled here too.
SQL_TICKET_PREFIX = b"thresher-sql\x00"
# Batches (of about TARGET_BATCH_BYTES each) a thread reads ahead of the Flight writer; 0: no thread.
# Measured on a loaded 2-core machine, a reading thread did not beat Arrow C++'s own handoff (0.50x vs
# 0.61x of a bare server, within the noise), so it is off unless asked for; benchmarks/flight_relay.py
# measures both in one run.
READ_AHEAD = 0


class ResultSource(Protocol):
    """Where the flight service reads query and SQL results as Flight streams to hand on whole: a
    metadata data port over the network (``DataPortClient``), or the metadata service's own reader
    when both services share a process (``thresher up``)."""

    address: str  # named in the flight service's errors

    def execute(self, query: common_pb2.Query, metadata: Metadata = ()) -> fl.FlightDataStream:
        """``query``'s result for the caller ``metadata`` names; a bad query fails here."""
        ...

    def execute_sql(self, request: mpb.ExecuteSqlRequest, metadata: Metadata = ()) -> fl.FlightDataStream:
        """A SQL statement's result, as ``execute``."""
        ...

    def close(self) -> None:
        """Releases what the source holds."""
        ...


class DataPortClient:
    """Query results from the data port at ``address`` (``host:port``), read for the caller in ``metadata``."""

    def __init__(
        self,
        address: str,
        scheme: str = "grpc",
        root_certificates: bytes | None = None,
        server_name: str | None = None,
        read_ahead: int = READ_AHEAD,
    ) -> None:
        self.address = address
        self.read_ahead = read_ahead  # 0: hand the stream on whole, in C++ (the benchmark compares both)
        # ``server_name``: the host name the port's certificate must carry when ``address`` does not say it.
        self._client = fl.FlightClient(
            f"{scheme}://{address}", tls_root_certs=root_certificates, override_hostname=server_name
        )

    def execute(self, query: common_pb2.Query, metadata: Metadata = ()) -> fl.FlightDataStream:
        """The result as a stream to hand on, its first message read first, so a bad query fails here."""
        return self._stream(fl.Ticket(mpb.ExecuteQueryRequest(query=query).SerializeToString()), metadata)

    def _stream(self, ticket: fl.Ticket, metadata: Metadata) -> fl.FlightDataStream:
        options = fl.FlightCallOptions(headers=[(name.encode(), value.encode()) for name, value in metadata])
        try:
            reader = self._client.do_get(ticket, options=options)
            reader.schema  # noqa: B018 - waits for the stream's first message: a failure to start surfaces here
        except (fl.FlightError, pa.ArrowException) as error:
            raise relayed_flight_error(error, self.address) from None
        if self.read_ahead <= 0:
            return fl.RecordBatchStream(reader.to_reader())
        return fl.GeneratorStream(reader.schema, self._relayed(reader))

    def _relayed(self, reader: fl.FlightStreamReader) -> Iterator[pa.RecordBatch]:
        """The reader's batches, read ahead on a thread (which waits in C++, without the GIL); a failure
        upstream ends the stream with the data port's status, and a client gone early cancels upstream."""

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    return
                if chunk.data is not None:
                    yield chunk.data

        try:
            yield from read_ahead(batches(), self.read_ahead, on_close=reader.cancel)
        except (fl.FlightError, pa.ArrowException) as error:
            raise relayed_flight_error(error, self.address) from None

    def execute_sql(self, request: mpb.ExecuteSqlRequest, metadata: Metadata = ()) -> fl.FlightDataStream:
        """A SQL statement's result as a stream to hand on, as ``execute``."""
        return self._stream(fl.Ticket(SQL_TICKET_PREFIX + request.SerializeToString()), metadata)

    def close(self) -> None:
        self._client.close()
