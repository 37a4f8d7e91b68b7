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
    reader = (("authorization", "Bearer reader-token"),)
    schema, total, low, high = results.describe(query, reader)
    assert ("n" in schema.names, total, low, high) == (True, 5000, 1, 5000)
    assert results.describe(query, reader, estimate=True)[0] == schema  # an estimate's count is the engine's guess
    with pytest.raises(fl.FlightError, match="PERMISSION_DENIED"):
        results.execute(query, (("authorization", "Bearer other-token"),))
    with pytest.raises(fl.FlightError, match="PERMISSION_DENIED"):
        results.describe(query, (("authorization", "Bearer other-token"),))
    with pytest.raises(fl.FlightError, match="UNAUTHENTICATED"):
        results.execute(query, ())
    with pytest.raises(fl.FlightError, match="UNAUTHENTICATED"):
        results.describe(query, (), estimate=True)
    with pytest.raises(fl.FlightError, match="UNAUTHENTICATED"):
        results.execute(query, (("authorization", "Bearer forged-token"),))


class _Handing(fl.FlightServerBase):
    """Serves one prepared stream to whoever asks."""

    def __init__(self, stream: fl.FlightDataStream) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self._stream = stream

    def do_get(self, context, ticket):
        return self._stream


@pytest.fixture
def port(metadata_server):
    """A data port over the suite's store, and a datasource of it (empty) to upload into."""
    _, store = metadata_server
    namespace = f"relay/u{os.getpid()}"
    source, _ = store.get_or_create_datasource(namespace, "uploads", "file:///nowhere", "")
    server, port = create_data_port("127.0.0.1:0", store)
    yield store, source.id, f"127.0.0.1:{port}"
    server.shutdown()


def _stored_paths(store, datasource_id) -> list[str]:
    _, batches = store.query(common_pb2.Query(datasource_id=datasource_id))
    return sorted(path for batch in batches for path in batch.column("path").to_pylist())


def _put_raw(address, header, table, end):
    """A DoPut straight to the data port: ``table``'s batches of 2 rows, then ``end`` (None: no end message)."""
    from thresher.services.metadata.data_port import UPSERT_COMMAND_PREFIX

    descriptor = fl.FlightDescriptor.for_command(UPSERT_COMMAND_PREFIX + header.SerializeToString())
    with fl.connect(f"grpc://{address}") as client:
        writer, reader = client.do_put(descriptor, table.schema)
        try:
            for batch in table.to_batches(max_chunksize=2):
                writer.write_batch(batch)
            if end is not None:
                writer.write_metadata(pa.py_buffer(end.SerializeToString()))
            writer.done_writing()
            return mpb.UpsertTableResponse.FromString(reader.read().to_pybytes())
        finally:
            writer.close()


def test_an_upload_through_the_data_port_commits_at_its_end_message(port):
    store, datasource_id, address = port
    table = pa.table({"path": ["u1", "u2", "u3"], "n": [1, 2, 3]})
    header = mpb.UpsertTableHeader(datasource_id=datasource_id, create_missing=True)
    response = _put_raw(address, header, table, mpb.UpsertTableEnd(record_batches=2, rows=3))
    assert (response.datapoints_written, response.datapoints_created) == (3, 3)
    assert _stored_paths(store, datasource_id) == ["u1", "u2", "u3"]


@pytest.mark.parametrize(
    "end, message",
    [
        (None, "stopped before its end message"),
        (mpb.UpsertTableEnd(record_batches=2, rows=4), "announces 2 batches of 4 rows, but 2 batches of 3 rows"),
    ],
)
def test_a_data_port_upload_without_its_end_writes_nothing(port, end, message):
    store, datasource_id, address = port
    before = _stored_paths(store, datasource_id)
    header = mpb.UpsertTableHeader(datasource_id=datasource_id, create_missing=True)
    with pytest.raises(fl.FlightError, match=f"INVALID_ARGUMENT: .*{message}"):
        _put_raw(address, header, pa.table({"path": ["v1", "v2", "v3"], "n": [1, 2, 3]}), end)
    assert _stored_paths(store, datasource_id) == before


def test_a_failing_stream_relayed_to_the_data_port_writes_nothing(port):
    store, datasource_id, address = port
    before = _stored_paths(store, datasource_id)
    table = pa.table({"path": ["w1", "w2"], "n": [1, 2]})

    def batches():
        yield table.to_batches()[0]
        raise OSError("client went away")

    client = DataPortClient(address)
    header = mpb.UpsertTableHeader(datasource_id=datasource_id, create_missing=True)
    with pytest.raises(OSError, match="client went away"):
        client.upsert(header, table.schema, batches())
    client.close()
    assert _stored_paths(store, datasource_id) == before


def test_the_data_port_refuses_other_puts_and_staged_blocks(port):
    _, datasource_id, address = port
    table = pa.table({"path": ["x"], "n": [1]})
    with fl.connect(f"grpc://{address}") as client:
        writer, _ = client.do_put(fl.FlightDescriptor.for_command(b"something else"), table.schema)
        with pytest.raises(fl.FlightError, match="INVALID_ARGUMENT: a data-port upload is a DoPut of an upsert"):
            writer.write_table(table)
            writer.done_writing()
            writer.close()
    staged = mpb.UpsertTableHeader(datasource_id=datasource_id, staging_session="s1")
    with pytest.raises(fl.FlightError, match="INVALID_ARGUMENT: staged upload blocks go through UpsertTable"):
        _put_raw(address, staged, table, mpb.UpsertTableEnd(record_batches=1, rows=1))


def test_in_process_uploads_apply_the_upload_access_rule_and_record_the_caller(port):
    """``thresher up``'s flight service writes uploads into the store in its own process: the forwarded
    token must allow writing the namespace, and the write is recorded as its subject."""
    from thresher.services.auth.tokens import TokenTable
    from thresher.services.metadata.data_port import InProcessDataPort

    store, datasource_id, _ = port
    namespace = store.get_datasource(datasource_id).namespace
    tokens = TokenTable.parse(f"writer-token=writer:{namespace}:write, reader-token=reader:{namespace}:read")
    uploads = InProcessDataPort(store, tokens)
    table = pa.table({"path": ["i1", "i2"], "n": [1, 2]})
    header = mpb.UpsertTableHeader(datasource_id=datasource_id, create_missing=True)
    with pytest.raises(fl.FlightError, match="PERMISSION_DENIED"):
        uploads.upsert(header, table.schema, table.to_batches(), (("authorization", "Bearer reader-token"),))
    with pytest.raises(fl.FlightError, match="UNAUTHENTICATED"):
        uploads.upsert(header, table.schema, table.to_batches(), ())
    assert "i1" not in _stored_paths(store, datasource_id)
    response = uploads.upsert(header, table.schema, table.to_batches(), (("authorization", "Bearer writer-token"),))
    assert (response.datapoints_written, response.datapoints_created) == (2, 2)
    assert store.history(datasource_id, "i1")["actor"].to_pylist() == ["writer"]
