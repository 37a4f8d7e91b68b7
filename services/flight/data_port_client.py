"""The flight service's reader of the metadata service's data port (see ``services/metadata/data_port.py``).

Uploads go the other way: ``upsert`` relays a DoPut's batches to the data port's own DoPut as they
arrive, again without Python touching their bytes, and ends with the end message that commits them.

A query result read here is a Flight stream the flight service hands on whole (``RecordBatchStream``):
its batches, decoded by Arrow C++ without copying their buffers, go to this service's Flight writer
without passing through Python. With ``read_ahead`` > 0 a thread reads that many batches ahead of
the writer instead, so receiving the next batch overlaps sending the last where cores are free.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

import pyarrow as pa
import pyarrow.flight as fl

from thresher.services.auth.forwarded_headers import Metadata
from thresher.services.flight.flight_errors import relayed_flight_error
from thresher.services.flight.readahead import read_ahead
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as mpb

# The data port's mark of a SQL ticket (``services/metadata/data_port.py``); the flight service may run
# without the metadata service's modules, so it is spelled here too.
SQL_TICKET_PREFIX = b"thresher-sql\x00"
# ... and the start of an upload's DoPut command (then a serialized UpsertTableHeader).
UPSERT_COMMAND_PREFIX = b"thresher-upsert\x00"
# Batches (of about TARGET_BATCH_BYTES each) a thread reads ahead of the Flight writer; 0: no thread.
# Measured on a loaded 2-core machine, a reading thread did not beat Arrow C++'s own handoff (0.50x vs
# 0.61x of a bare server, within the noise), so it is off unless asked for; benchmarks/flight_relay.py
# measures both in one run.
READ_AHEAD = 0


class ResultSource(Protocol):
    """Where the flight service reads query and SQL results as Flight streams to hand on whole, and
    writes uploads: a metadata data port over the network (``DataPortClient``), or the metadata
    service's own reader when both services share a process (``thresher up``)."""

    address: str  # named in the flight service's errors

    def execute(self, query: common_pb2.Query, metadata: Metadata = ()) -> fl.FlightDataStream:
        """``query``'s result for the caller ``metadata`` names; a bad query fails here."""
        ...

    def execute_sql(self, request: mpb.ExecuteSqlRequest, metadata: Metadata = ()) -> fl.FlightDataStream:
        """A SQL statement's result, as ``execute``."""
        ...

    def describe(
        self, query: common_pb2.Query, metadata: Metadata = (), estimate: bool = False
    ) -> tuple[pa.Schema, int, int, int] | None:
        """``query``'s schema, row count and datapoint id bounds, as the metadata service's DescribeQuery
        answers (``estimate`` as there); None where the source cannot tell, and the metadata service must."""
        ...

    def upsert(
        self,
        header: mpb.UpsertTableHeader,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        metadata: Metadata = (),
    ) -> mpb.UpsertTableResponse:
        """Writes an upload's batches as they arrive, committed only once ``batches`` ended normally."""
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

    def describe(
        self, query: common_pb2.Query, metadata: Metadata = (), estimate: bool = False
    ) -> tuple[pa.Schema, int, int, int] | None:
        """None: a data port serves results only; the metadata service's gRPC API describes them."""
        return None

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

    def upsert(
        self,
        header: mpb.UpsertTableHeader,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        metadata: Metadata = (),
    ) -> mpb.UpsertTableResponse:
        """Writes ``batches`` through the data port as they arrive, in one atomic upload.

        The end message goes only after ``batches`` ended normally: if it raises (the client aborted),
        the put is closed without it, so the data port writes nothing, and the error is raised here.
        ``batches`` is read on the calling thread only (a DoPut's reader dies with its handler).
        """
        options = fl.FlightCallOptions(headers=[(name.encode(), value.encode()) for name, value in metadata])
        descriptor = fl.FlightDescriptor.for_command(UPSERT_COMMAND_PREFIX + header.SerializeToString())
        try:
            writer, reader = self._client.do_put(descriptor, schema, options=options)
        except (fl.FlightError, pa.ArrowException) as error:
            raise relayed_flight_error(error, self.address) from None
        sent = rows = 0
        answer = refused = None
        try:
            for batch in batches:  # a failure of the client's stream propagates, and the put ends without its end
                try:
                    writer.write_batch(batch)
                except (fl.FlightError, pa.ArrowException) as error:
                    refused = error  # the data port refused the upload while it streamed: closing gives its status
                    break
                sent += 1
                rows += batch.num_rows
        except BaseException:
            _close_quietly(writer)  # without the end message the data port commits nothing
            raise
        try:
            if refused is None:
                end = mpb.UpsertTableEnd(record_batches=sent, rows=rows)
                writer.write_metadata(pa.py_buffer(end.SerializeToString()))
                writer.done_writing()
                answer = reader.read()
            writer.close()
        except (fl.FlightError, pa.ArrowException) as error:
            _close_quietly(writer)
            raise relayed_flight_error(error, self.address) from None
        if refused is not None:
            raise relayed_flight_error(refused, self.address)
        if answer is None:
            raise relayed_flight_error(
                fl.FlightInternalError("the data port ended an upload without its answer"), self.address
            )
        response: mpb.UpsertTableResponse = mpb.UpsertTableResponse.FromString(answer.to_pybytes())
        return response

    def execute_sql(self, request: mpb.ExecuteSqlRequest, metadata: Metadata = ()) -> fl.FlightDataStream:
        """A SQL statement's result as a stream to hand on, as ``execute``."""
        return self._stream(fl.Ticket(SQL_TICKET_PREFIX + request.SerializeToString()), metadata)

    def close(self) -> None:
        self._client.close()


def _close_quietly(writer: fl.FlightStreamWriter) -> None:
    """Ends a put that failed on this side; the failure raised is this side's, not the port's answer."""
    try:
        writer.close()
    except (fl.FlightError, pa.ArrowException):
        pass
