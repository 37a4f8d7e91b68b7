"""A flight service over the suite's metadata service, a Flight client, and helpers to make data."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as fl
import pytest

from thresher.core.arrow_io import read_batch, read_schema, upsert_table_requests
from thresher.v1 import common_pb2, flight_pb2
from thresher.v1 import metadata_service_pb2 as mpb


@pytest.fixture(scope="session")
def flight_home(tmp_path_factory) -> str:
    """The flight service's home: its blob store is ``<home>/blobs``."""
    return str(tmp_path_factory.mktemp("flight-home"))


@pytest.fixture(scope="session", params=["grpc", "data-port", "in-process"])
def flight_server(request, metadata_server, flight_home):
    """The flight service, reading query results over the metadata service's gRPC stream, over its data
    port (Flight to Flight) as deployments do, or from its store in the same process as ``thresher up`` does."""
    from thresher.services.auth.tokens import TokenTable
    from thresher.services.flight.server import create_server
    from thresher.services.metadata.data_port import InProcessDataPort, create_data_port

    address, store = metadata_server
    data_port = create_data_port("127.0.0.1:0", store)[0] if request.param == "data-port" else None
    data_address = f"127.0.0.1:{data_port.port}" if data_port else ""
    in_process = InProcessDataPort(store, TokenTable()) if request.param == "in-process" else None
    server, port = create_server(
        "127.0.0.1:0", address, home=flight_home, metadata_data_address=data_address, data_port=in_process
    )
    yield server
    server.shutdown()
    if data_port is not None:
        data_port.shutdown()


@pytest.fixture
def flight(flight_server):
    with fl.connect(f"grpc://127.0.0.1:{flight_server.port}") as client:
        yield client


def query_ticket(query: common_pb2.Query) -> fl.Ticket:
    return fl.Ticket(flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=query)).SerializeToString())


def command(**kind) -> fl.FlightDescriptor:
    return fl.FlightDescriptor.for_command(flight_pb2.FlightCommand(**kind).SerializeToString())


class Data:
    """Makes datasources and reads them back through the metadata service alone."""

    def __init__(self, stub, namespace: str) -> None:
        self.stub = stub
        self.namespace = namespace

    def datasource(self, name: str = "ds", table: pa.Table | None = None) -> int:
        source = self.stub.CreateDatasource(
            mpb.CreateDatasourceRequest(namespace=self.namespace, name=name, source_uri="file:///nowhere")
        ).datasource
        if table is not None:
            self.stub.UpsertTable(
                upsert_table_requests(source.id, "path", table.schema, table.to_batches(), create_missing=True)
            )
        return source.id

    def read(self, query: common_pb2.Query) -> pa.Table:
        responses = iter(self.stub.ExecuteQuery(mpb.ExecuteQueryRequest(query=query)))
        schema = read_schema(next(responses).schema)
        return pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)


@pytest.fixture
def data(metadata_stub, namespace) -> Data:
    return Data(metadata_stub, namespace)
