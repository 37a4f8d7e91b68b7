"""The flight service against the real metadata service, with pyarrow's Flight client."""

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl
import pytest

from thresher.core.arrow_io import read_batch, read_schema
from thresher.core.types import TYPE_METADATA_KEY
from thresher.v1 import common_pb2, flight_pb2
from thresher.v1 import metadata_service_pb2 as mpb

from .conftest import command, query_ticket


def _table(rows: int, start: int = 0) -> pa.Table:
    ids = np.arange(start, start + rows)
    return pa.table(
        {"path": [f"img/{i:07d}.png" for i in ids], "label": pa.array(ids % 7, pa.int64()), "score": ids / 3.0}
    )


def _error_text(caught) -> str:
    return str(caught.value)


def test_do_get_relays_the_query_result_with_field_types(flight, data):
    source = data.datasource(table=_table(50_000))
    query = common_pb2.Query(datasource_id=source)
    table = flight.do_get(query_ticket(query)).read_all()
    expected = data.read(query)
    assert table.equals(expected) and table.schema.equals(expected.schema, check_metadata=True)
    assert table.num_rows == 50_000
    assert table.schema.field("label").metadata[TYPE_METADATA_KEY] == b"int"


def test_do_get_of_an_empty_datasource_has_the_schema_and_no_rows(flight, data):
    table = flight.do_get(query_ticket(common_pb2.Query(datasource_id=data.datasource()))).read_all()
    assert table.num_rows == 0 and table.column_names == ["path", "datapoint_id"]


def test_do_get_of_a_filtered_selection(flight, data):
    source = data.datasource(table=_table(100))
    query = common_pb2.Query(datasource_id=source, select=[common_pb2.SelectItem(field="score")], limit=5)
    query.filter.comparison.CopyFrom(
        common_pb2.Comparison(field="label", op=common_pb2.COMPARISON_OPERATOR_EQ, value=common_pb2.Value(int_value=3))
    )
    table = flight.do_get(query_ticket(query)).read_all()
    assert table.column_names == ["path", "datapoint_id", "score"]
    assert table.num_rows == 5 and table["path"][0].as_py() == "img/0000003.png"


def test_get_flight_info_describes_the_query_and_points_here(flight, flight_server, data):
    source = data.datasource(table=_table(1234))
    query = common_pb2.Query(datasource_id=source)
    info = flight.get_flight_info(command(query=query))
    assert info.total_records == 1234
    assert info.schema.equals(data.read(query).schema, check_metadata=True)
    [endpoint] = info.endpoints
    assert [location.uri.decode() for location in endpoint.locations] == [f"grpc+tcp://127.0.0.1:{flight_server.port}"]
    assert flight.do_get(endpoint.ticket).read_all().num_rows == 1234
    assert flight.get_schema(command(query=query)).schema.equals(info.schema, check_metadata=True)


def test_flights_by_path_for_datasources_and_datasets(flight, data, metadata_stub):
    source = data.datasource("pics", table=_table(20))
    saved = common_pb2.Query(datasource_id=source, limit=3)
    metadata_stub.SaveDataset(mpb.SaveDatasetRequest(namespace=data.namespace, name="first3", query=saved))
    info = flight.get_flight_info(fl.FlightDescriptor.for_path(data.namespace, "datasources", "pics"))
    assert info.total_records == 20
    info = flight.get_flight_info(fl.FlightDescriptor.for_path(data.namespace, "datasets", "first3"))
    assert info.total_records == 3
    assert flight.do_get(info.endpoints[0].ticket).read_all().num_rows == 3
    with pytest.raises(fl.FlightServerError) as caught:
        flight.get_flight_info(fl.FlightDescriptor.for_path(data.namespace, "datasources", "absent"))
    assert _error_text(caught).startswith("NOT_FOUND: ")
    with pytest.raises(fl.FlightServerError) as caught:
        flight.get_flight_info(fl.FlightDescriptor.for_path("just-one-part"))
    assert _error_text(caught).startswith("INVALID_ARGUMENT: unknown flight path ['just-one-part']")


def test_list_flights_lists_datasources_and_datasets_of_a_namespace(flight, data, metadata_stub):
    first = data.datasource("first", table=_table(10))
    data.datasource("second")
    metadata_stub.SaveDataset(
        mpb.SaveDatasetRequest(
            namespace=data.namespace, name="few", query=common_pb2.Query(datasource_id=first, limit=2)
        )
    )
    infos = {
        tuple(part.decode() for part in info.descriptor.path): info
        for info in flight.list_flights(data.namespace.encode())
    }
    ns = data.namespace
    assert set(infos) == {(ns, "datasources", "first"), (ns, "datasources", "second"), (ns, "datasets", "few")}
    assert infos[(ns, "datasources", "first")].total_records == 10
    assert infos[(ns, "datasources", "second")].total_records == 0
    few = infos[(ns, "datasets", "few")]
    assert few.total_records == 2 and flight.do_get(few.endpoints[0].ticket).read_all().num_rows == 2
    everything = {tuple(part.decode() for part in info.descriptor.path) for info in flight.list_flights()}
    assert set(infos) <= everything


def test_do_put_upserts_and_reports_the_counts(flight, data):
    source = data.datasource()
    table = _table(30_000).rename_columns(["file", "label", "score"])  # the first column holds the paths
    writer, reader = flight.do_put(
        command(upsert=flight_pb2.UpsertCommand(datasource_id=source, create_missing=True)), table.schema
    )
    for batch in table.to_batches(max_chunksize=7_000):
        writer.write_batch(batch)
    writer.done_writing()
    response = mpb.UpsertTableResponse.FromString(reader.read().to_pybytes())
    writer.close()
    assert (response.datapoints_written, response.datapoints_created) == (30_000, 30_000)
    stored = data.read(common_pb2.Query(datasource_id=source))
    assert stored["path"].to_pylist() == table["file"].to_pylist()
    assert stored["score"].to_pylist() == table["score"].to_pylist()


def test_do_put_forwards_batches_as_they_arrive_and_an_abort_message_writes_nothing(flight, data):
    from thresher.core.transport import ABORT_UPLOAD

    source = data.datasource()
    table = pa.table({"path": [f"p{i}" for i in range(6)], "x": list(range(6))})
    writer, reader = flight.do_put(command(upsert=flight_pb2.UpsertCommand(datasource_id=source)), table.schema)
    for batch in table.to_batches(max_chunksize=2):
        writer.write_batch(batch)
    writer.write_metadata(pa.py_buffer(ABORT_UPLOAD))
    writer.done_writing()
    with pytest.raises(fl.FlightCancelledError, match="aborted the upload"):
        reader.read()
        writer.close()
    assert data.read(common_pb2.Query(datasource_id=source)).num_rows == 0


def test_do_put_writes_on_behalf_of_the_caller(flight, data):
    source = data.datasource()
    table = pa.table({"path": ["a"], "x": [1]})
    options = fl.FlightCallOptions(headers=[(b"thresher-user", b"alice")])
    _put(flight, command(upsert=flight_pb2.UpsertCommand(datasource_id=source, create_missing=True)), table, options)
    responses = iter(data.stub.GetHistory(mpb.GetHistoryRequest(datasource_id=source, path="a")))
    schema = read_schema(next(responses).schema)
    history = pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)
    assert history["actor"].to_pylist() == ["alice"]


def _put(flight, descriptor, table, options=None):
    writer, reader = flight.do_put(descriptor, table.schema, options=options)
    writer.write_table(table)
    writer.done_writing()
    try:
        return reader.read()
    finally:
        writer.close()


def test_a_rejected_put_writes_nothing(flight, data):
    source = data.datasource(table=pa.table({"path": ["a"], "label": ["cat"]}))
    bad = pa.table({"path": ["a", "b"], "label": pa.array([1, 2], pa.int64()), "other": [1.0, 2.0]})
    with pytest.raises(fl.FlightServerError) as caught:
        _put(flight, command(upsert=flight_pb2.UpsertCommand(datasource_id=source, create_missing=True)), bad)
    assert _error_text(caught).startswith("INVALID_ARGUMENT: ") and "label" in _error_text(caught)
    stored = data.read(common_pb2.Query(datasource_id=source))
    assert stored["path"].to_pylist() == ["a"] and "other" not in stored.column_names


def test_a_put_refused_while_it_streams_leaves_the_server_serving(flight, data):
    # The metadata service refuses at the header while batches still arrive: the relay must stop reading
    # the DoPut's stream before its handler returns (reading it afterwards crashed the process).
    descriptor = command(upsert=flight_pb2.UpsertCommand(datasource_id=10**9, create_missing=True))
    batch = _table(2_000).to_batches()[0]
    for _ in range(20):
        writer, reader = flight.do_put(descriptor, batch.schema)
        with pytest.raises(fl.FlightError, match="NOT_FOUND: datasource"):
            try:
                for _ in range(200):
                    writer.write_batch(batch)
                writer.done_writing()
                reader.read()
            finally:
                writer.close()  # the refusal may surface only here, when the client collects the status
    source = data.datasource(table=pa.table({"path": ["a"], "x": [1]}))
    assert data.read(common_pb2.Query(datasource_id=source))["path"].to_pylist() == ["a"]


@pytest.mark.parametrize(
    "descriptor, message",
    [
        (fl.FlightDescriptor.for_path("a", "b"), "INVALID_ARGUMENT: DoPut needs a command descriptor"),
        (
            command(query=common_pb2.Query(datasource_id=1)),
            "INVALID_ARGUMENT: DoPut takes an `upsert` FlightCommand, not `query`",
        ),
        (
            command(upsert=flight_pb2.UpsertCommand(datasource_id=1, path_column="nope", create_missing=True)),
            "INVALID_ARGUMENT: path column 'nope'",
        ),
        (command(upsert=flight_pb2.UpsertCommand(datasource_id=10**9, create_missing=True)), "NOT_FOUND: "),
        (fl.FlightDescriptor.for_command(b"\xff\xff"), "INVALID_ARGUMENT: the descriptor command is not a serialized"),
    ],
)
def test_bad_puts_are_refused_with_the_reason(flight, descriptor, message):
    with pytest.raises(fl.FlightServerError) as caught:
        _put(flight, descriptor, pa.table({"path": ["a"], "x": [1]}))
    assert _error_text(caught).startswith(message)


def test_a_failing_upload_stream_cancels_the_write(metadata_server, data):
    from thresher.core.transport import open_channel
    from thresher.services.flight.backend import MetadataBackend

    source = data.datasource()
    table = _table(10)

    def batches():
        yield table.to_batches()[0]
        raise OSError("client went away")

    with open_channel(metadata_server[0]) as channel:
        with pytest.raises(OSError, match="client went away"):
            MetadataBackend(channel).upsert(source, "path", table.schema, batches())
    assert data.read(common_pb2.Query(datasource_id=source)).num_rows == 0


@pytest.mark.parametrize(
    "ticket, message",
    [
        (b"", "INVALID_ARGUMENT: the ticket is empty"),
        (b"\xff\xfe garbage", "INVALID_ARGUMENT: the ticket is not a serialized thresher.v1.FlightTicket"),
        (
            b"\x2a\x00",  # parses, but holds only an unknown field
            "INVALID_ARGUMENT: the ticket sets none of thresher.v1.FlightTicket's kinds",
        ),
        (
            flight_pb2.FlightTicket(file=flight_pb2.FileTicket(datasource_id=10**9, path="a")).SerializeToString(),
            f"NOT_FOUND: datasource {10**9} not found",
        ),
        (
            flight_pb2.FlightTicket(file=flight_pb2.FileTicket(datasource_id=1)).SerializeToString(),
            "INVALID_ARGUMENT: file ticket names no path",
        ),
        (
            flight_pb2.FlightTicket(blob=flight_pb2.BlobTicket(sha256="00")).SerializeToString(),
            "INVALID_ARGUMENT: '00' is not a blob hash",
        ),
        (
            flight_pb2.FlightTicket(bag_shard=flight_pb2.BagShardTicket(dataset="d")).SerializeToString(),
            "INVALID_ARGUMENT: bag dataset 'd': expected 'owner/namespace/name'",
        ),
    ],
)
def test_unusable_tickets_are_refused_with_the_reason(flight, ticket, message):
    with pytest.raises(fl.FlightServerError) as caught:
        flight.do_get(fl.Ticket(ticket)).read_all()
    assert _error_text(caught).startswith(message)


def test_metadata_errors_keep_their_status(flight, data):
    with pytest.raises(fl.FlightServerError) as caught:
        flight.do_get(query_ticket(common_pb2.Query(datasource_id=10**9))).read_all()
    assert _error_text(caught).startswith(f"NOT_FOUND: datasource {10**9} not found")
    source = data.datasource(table=_table(3))
    query = common_pb2.Query(datasource_id=source)  # comparing an int field with a string: rejected
    query.filter.comparison.CopyFrom(
        common_pb2.Comparison(
            field="label", op=common_pb2.COMPARISON_OPERATOR_EQ, value=common_pb2.Value(string_value="three")
        )
    )
    with pytest.raises(fl.FlightServerError) as caught:
        flight.get_flight_info(command(query=query))
    assert _error_text(caught).startswith("INVALID_ARGUMENT: ")


def test_an_unreachable_metadata_service_is_unavailable():
    import socket

    from thresher.services.flight.server import create_server

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    server, port = create_server("127.0.0.1:0", dead)
    try:
        with fl.connect(f"grpc://127.0.0.1:{port}") as client:
            with pytest.raises(fl.FlightUnavailableError) as caught:
                client.do_get(query_ticket(common_pb2.Query(datasource_id=1))).read_all()
            assert _error_text(caught).startswith("UNAVAILABLE: ")
    finally:
        server.shutdown()


def test_a_client_that_stops_reading_early_leaves_the_server_working(flight, data):
    source = data.datasource(table=_table(200_000))
    reader = flight.do_get(query_ticket(common_pb2.Query(datasource_id=source)))
    reader.read_chunk()
    reader.cancel()
    assert flight.do_get(query_ticket(common_pb2.Query(datasource_id=source))).read_all().num_rows == 200_000


_DYING_UPLOADER = """
import sys
import pyarrow as pa
import pyarrow.flight as fl
from thresher.v1 import flight_pb2

command = flight_pb2.FlightCommand(upsert=flight_pb2.UpsertCommand(datasource_id=int(sys.argv[2]), create_missing=True))
schema = pa.schema([("path", pa.string()), ("x", pa.int64())])
writer, _ = fl.connect(sys.argv[1]).do_put(fl.FlightDescriptor.for_command(command.SerializeToString()), schema)
start = 0
while True:  # until killed: the stream never ends
    writer.write_batch(pa.record_batch([pa.array([f"p{i}" for i in range(start, start + 1000)]),
                                        pa.array(range(start, start + 1000), pa.int64())], schema=schema))
    start += 1000
"""


def test_a_do_put_whose_client_is_killed_midstream_writes_nothing(flight_server, data, monkeypatch):
    # A client that dies ends the server's reader just as one that finished its stream does: only the
    # call's cancellation tells them apart. The spies only watch the real handler.
    import signal
    import subprocess
    import sys
    import threading

    from thresher.services.flight import servicer

    received, handled = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []
    real_batches, real_do_put = servicer.uploaded_batches, servicer.ThresherFlightServer.do_put

    def watched_batches(reader, context):
        for batch in real_batches(reader, context):
            yield batch
            received.set()

    def watched_do_put(self, context, descriptor, reader, writer):
        try:
            real_do_put(self, context, descriptor, reader, writer)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)
            raise
        finally:
            handled.set()

    monkeypatch.setattr(servicer, "uploaded_batches", watched_batches)
    monkeypatch.setattr(servicer.ThresherFlightServer, "do_put", watched_do_put)
    source = data.datasource()
    uploader = subprocess.Popen(
        [sys.executable, "-c", _DYING_UPLOADER, f"grpc://127.0.0.1:{flight_server.port}", str(source)]
    )
    try:
        assert received.wait(60), "the flight service never received a batch"
    finally:
        uploader.send_signal(signal.SIGKILL)
        uploader.wait(30)
    assert handled.wait(60), "the upload's handler never returned"
    assert isinstance(outcome[0], fl.FlightCancelledError) and "nothing was written" in str(outcome[0])
    stored = data.read(common_pb2.Query(datasource_id=source))
    assert stored.num_rows == 0 and stored.column_names == ["path", "datapoint_id"]
