"""The flight service's reader of the data port hands results on whole, with or without a read-ahead thread."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.flight as fl
import pytest

from thresher.services.flight.data_port_client import DataPortClient
from thresher.services.metadata.data_port import create_data_port
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as mpb


class _Relay(fl.FlightServerBase):
    """A Flight server answering each ticket (a serialized Query, or SQL text after b'sql:') through ``client``."""

    def __init__(self, client: DataPortClient) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self._client = client

    def do_get(self, context, ticket):
        if ticket.ticket.startswith(b"sql:"):
            return self._client.execute_sql(mpb.ExecuteSqlRequest(sql=ticket.ticket[4:].decode()))
        return self._client.execute(common_pb2.Query.FromString(ticket.ticket))


@pytest.fixture(scope="module")
def relayed(metadata_server):
    _, store = metadata_server
    namespace = f"relay/t{os.getpid()}"
    source = store.create_datasource(namespace, "items", "file:///nowhere", "")
    rows = 5000
    store.upsert(
        source.id,
        pa.table({"path": [f"p{i:05d}" for i in range(rows)], "n": list(range(rows))}),
        "path",
        "tester",
        create_missing=True,
    )
    port_server, port = create_data_port("127.0.0.1:0", store)
    servers = {}
    for read_ahead in (0, 2):
        relay = _Relay(DataPortClient(f"127.0.0.1:{port}", read_ahead=read_ahead))
        servers[read_ahead] = relay
    yield source.id, namespace, servers
    for relay in servers.values():
        relay.shutdown()
    port_server.shutdown()


@pytest.mark.parametrize("read_ahead", [0, 2])
def test_a_query_and_a_sql_statement_arrive_whole(relayed, read_ahead):
    datasource_id, namespace, servers = relayed
    with fl.connect(f"grpc://127.0.0.1:{servers[read_ahead].port}") as client:
        query = common_pb2.Query(datasource_id=datasource_id)
        table = client.do_get(fl.Ticket(query.SerializeToString())).read_all()
        assert table.num_rows == 5000 and table.column("n").to_pylist() == list(range(5000))
        sql = f'SELECT sum(n) AS s, count(*) AS k FROM "{namespace}".items WHERE n >= 1000'
        answer = client.do_get(fl.Ticket(b"sql:" + sql.encode())).read_all()
        assert answer.to_pylist() == [{"s": sum(range(1000, 5000)), "k": 4000}]


@pytest.mark.parametrize("read_ahead", [0, 2])
def test_a_refused_statement_carries_its_reason(relayed, read_ahead):
    _, _, servers = relayed
    with fl.connect(f"grpc://127.0.0.1:{servers[read_ahead].port}") as client:
        with pytest.raises(fl.FlightError, match="does not exist"):
            client.do_get(fl.Ticket(b'sql:SELECT * FROM "nobody/here".items')).read_all()


def test_in_process_results_apply_the_data_ports_access_rules(relayed, metadata_server):
    """``thresher up``'s flight service reads results from the store in its own process; a caller is still
    authenticated from the forwarded token and judged by namespace, as over the data port."""
    from thresher.services.auth.tokens import TokenTable
    from thresher.services.metadata.data_port import InProcessDataPort

    datasource_id, namespace, _ = relayed
    _, store = metadata_server
    tokens = TokenTable.parse(f"reader-token=reader:{namespace}:read, other-token=other:elsewhere/*:read")
    results = InProcessDataPort(store, tokens)
    query = common_pb2.Query(datasource_id=datasource_id)

    def read(stream: fl.FlightDataStream) -> pa.Table:
        # A stream the flight service would hand on; served here by a Flight server of the test's own.
        relay = _Handing(stream)
        try:
            with fl.connect(f"grpc://127.0.0.1:{relay.port}") as client:
                return client.do_get(fl.Ticket(b"-")).read_all()
        finally:
            relay.shutdown()

    table = read(results.execute(query, (("authorization", "Bearer reader-token"),)))
    assert table.column("n").to_pylist() == list(range(5000))
    sql = mpb.ExecuteSqlRequest(sql=f'SELECT count(*) AS k FROM "{namespace}".items')
    assert read(results.execute_sql(sql, (("authorization", "Bearer reader-token"),))).to_pylist() == [{"k": 5000}]
    with pytest.raises(fl.FlightError, match="PERMISSION_DENIED"):
        results.execute(query, (("authorization", "Bearer other-token"),))
    with pytest.raises(fl.FlightError, match="UNAUTHENTICATED"):
        results.execute(query, ())
    with pytest.raises(fl.FlightError, match="UNAUTHENTICATED"):
        results.execute(query, (("authorization", "Bearer forged-token"),))


class _Handing(fl.FlightServerBase):
    """Serves one prepared stream to whoever asks."""

    def __init__(self, stream: fl.FlightDataStream) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self._stream = stream

    def do_get(self, context, ticket):
        return self._stream
