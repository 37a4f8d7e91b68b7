"""In-process fakes of the three services, for client tests that need no real store.

They record what the client sent and answer from canned state; ``fail(method, code, message)`` makes
the next call of ``method`` fail with that status, as the real service would.
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pyarrow as pa
import pyarrow.flight as flight

from thresher.connection import Connection
from thresher.core.types import FieldType
from thresher.v1 import common_pb2, flight_pb2, metadata_service_pb2_grpc, scanner_service_pb2, scanner_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as ms


def datasource_proto(fields: dict[str, FieldType], id: int = 7) -> common_pb2.Datasource:
    return common_pb2.Datasource(
        id=id,
        namespace="alice/repo",
        name="images",
        source_uri="file:///data/images",
        scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_READY),
        fields=[common_pb2.Field(name=name, type=kind.proto) for name, kind in fields.items()],
    )


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self._failures: dict[str, list[tuple[grpc.StatusCode, str]]] = {}
        self._lock = threading.Lock()

    def fail(self, method: str, code: grpc.StatusCode, message: str, times: int = 1) -> None:
        self._failures.setdefault(method, []).extend([(code, message)] * times)

    def record(self, method: str, request: object, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls.append((method, request))
            pending = self._failures.get(method)
            failure = pending.pop(0) if pending else None
        if failure:
            context.abort(*failure)

    def requests(self, method: str) -> list:
        return [request for name, request in self.calls if name == method]


class FakeMetadata(metadata_service_pb2_grpc.MetadataServiceServicer, _Recorder):
    def __init__(self, datasource: common_pb2.Datasource) -> None:
        _Recorder.__init__(self)
        self.datasource = datasource
        self.total_rows = 0
        self.page_size_seen: list[int] = []

    def GetDatasource(self, request, context):
        self.record("GetDatasource", request, context)
        return ms.GetDatasourceResponse(datasource=self.datasource)

    def CreateDatasource(self, request, context):
        self.record("CreateDatasource", request, context)
        return ms.CreateDatasourceResponse(datasource=self.datasource)

    def GetOrCreateDatasource(self, request, context):
        self.record("GetOrCreateDatasource", request, context)
        return ms.GetOrCreateDatasourceResponse(datasource=self.datasource, created=False)

    def ListDatasources(self, request, context):
        # Three pages of one datasource each, to exercise pagination.
        self.record("ListDatasources", request, context)
        page = int(request.page_token or 0)
        item = common_pb2.Datasource(id=page + 1, namespace=request.namespace, name=f"ds{page}")
        return ms.ListDatasourcesResponse(datasources=[item], next_page_token=str(page + 1) if page < 2 else "")

    def DescribeQuery(self, request, context):
        self.record("DescribeQuery", request, context)
        return ms.DescribeQueryResponse(total_rows=self.total_rows)

    def UpsertMetadata(self, request, context):
        self.record("UpsertMetadata", request, context)
        return ms.UpsertMetadataResponse(datapoints_written=len(request.datapoints))

    def DeleteMetadata(self, request, context):
        self.record("DeleteMetadata", request, context)
        return ms.DeleteMetadataResponse(values_deleted=len(request.paths))

    def DeleteDatapoints(self, request, context):
        self.record("DeleteDatapoints", request, context)
        return ms.DeleteDatapointsResponse(datapoints_deleted=len(request.paths))


class FakeScanner(scanner_service_pb2_grpc.ScannerServiceServicer, _Recorder):
    def __init__(self) -> None:
        super().__init__()
        # GetScanStatus answers these in turn, repeating the last.
        self.statuses = [common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_READY)]

    def GetScanStatus(self, request, context):
        self.record("GetScanStatus", request, context)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return scanner_service_pb2.GetScanStatusResponse(scan=status)

    def StartScan(self, request, context):
        self.record("StartScan", request, context)
        return scanner_service_pb2.StartScanResponse(
            scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_SCANNING), started=True
        )


class FakeFlight(flight.FlightServerBase):
    """Answers every query with ``result``; records uploads; raises ``error`` once if set."""

    def __init__(self) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self.result = pa.table({"path": pa.array([], pa.string()), "datapoint_id": pa.array([], pa.int64())})
        self.tickets: list[flight_pb2.FlightTicket] = []
        self.uploads: list[tuple[flight_pb2.FlightCommand, pa.Table]] = []
        self.put_result: bytes | None = None
        self.error: Exception | None = None

    def _raise_pending(self) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error

    def get_flight_info(self, context, descriptor):
        """One endpoint, the whole query, as the flight service answers for a small result."""
        command = flight_pb2.FlightCommand.FromString(descriptor.command)
        query = command.estimated_query.query if command.HasField("estimated_query") else command.query
        ticket = flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=query)).SerializeToString()
        return flight.FlightInfo(self.result.schema, descriptor, [flight.FlightEndpoint(ticket, [])], -1, -1)

    def do_get(self, context, ticket):
        self.tickets.append(flight_pb2.FlightTicket.FromString(ticket.ticket))
        self._raise_pending()
        return flight.RecordBatchStream(self.result)

    def do_put(self, context, descriptor, reader, writer):
        table = reader.read_all()
        self._raise_pending()
        self.uploads.append((flight_pb2.FlightCommand.FromString(descriptor.command), table))
        if self.put_result is not None:
            writer.write(pa.py_buffer(self.put_result))


class FakeServices:
    """The fakes on ephemeral loopback ports, and a connection to them."""

    def __init__(self, fields: dict[str, FieldType]) -> None:
        self.metadata = FakeMetadata(datasource_proto(fields))
        self.scanner = FakeScanner()
        self.flight = FakeFlight()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(self.metadata, self.server)
        scanner_service_pb2_grpc.add_ScannerServiceServicer_to_server(self.scanner, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        address = f"127.0.0.1:{port}"
        self.connection = Connection(address, f"127.0.0.1:{self.flight.port}", address, retry_timeout=0.5)

    def datasource(self):
        from thresher.datasource import Datasource

        proto = common_pb2.Datasource()
        proto.CopyFrom(self.metadata.datasource)  # the client must not share the server's object
        return Datasource(self.connection, proto)

    def close(self) -> None:
        self.connection.close()
        self.server.stop(None)
        self.flight.shutdown()
