"""Small answers read in one call to the metadata service give the same tables as Flight, on both engines.

Every query runs twice, through a connection that reads small results directly and through one that
sends everything through Flight (``direct_read_rows=0``), against the same real services.
"""

import datetime as dt
import subprocess
import sys
import threading
import warnings

import grpc
import pandas as pd
import pyarrow as pa
import pytest

from thresher.connection import Connection
from thresher.core import transport
from thresher.core.errors import NotFoundError, QueryError, ScanInProgressWarning
from thresher.core.transport import open_channel
from thresher.datasource import Datasource
from thresher.services.flight.server import create_server as create_flight_server
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as ms
from thresher.v1.metadata_service_pb2_grpc import MetadataServiceStub

UTC = dt.UTC
PATHS = [f"img/{i:03d}.png" for i in range(40)]


@pytest.fixture(scope="module")
def services(metadata_server):
    """Both engines' metadata service, a flight service over it, and one datasource with two writes."""
    address, _ = metadata_server
    flight, flight_port = create_flight_server("127.0.0.1:0", address)
    direct = Connection(address, f"127.0.0.1:{flight_port}", address)
    via_flight = Connection(address, f"127.0.0.1:{flight_port}", address, direct_read_rows=0)
    record = direct.call_metadata(
        "CreateDatasource",
        ms.CreateDatasourceRequest(
            namespace="direct/reads", name=f"reads-{id(metadata_server)}", source_uri="file:///nowhere"
        ),
    )
    _mark_ready(direct, record.datasource.id)
    ds = Datasource(direct, record.datasource)
    with ds.metadata_context(create_missing=True) as ctx:
        for i, path in enumerate(PATHS):
            ctx.update_metadata(path, {"n": i, "label": "cat" if i % 3 else "dog", "score": i / 4})
    first_written = dt.datetime.now(UTC)
    with ds.metadata_context() as ctx:
        for path in PATHS[:10]:
            ctx.update_metadata(path, {"label": "bird", "extra": True})
    ds.delete_datapoints(PATHS[-2:])
    yield ds, Datasource(via_flight, record.datasource), first_written
    flight.shutdown()


def both(services):
    direct, via_flight, _ = services
    return direct, via_flight


def same(left: pa.Table, right: pa.Table) -> None:
    assert left.schema == right.schema
    assert left.schema.metadata == right.schema.metadata
    assert left.equals(right)


@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_head_is_the_same_both_ways(services, n):
    direct, via_flight = both(services)
    same(direct.order_by("n").head(n).arrow, via_flight.order_by("n").head(n).arrow)


def test_filtered_limited_query_is_the_same_both_ways(services):
    direct, via_flight = both(services)
    view = lambda ds: ds[ds["label"] == "cat"].select("n", "label").order_by(ds["n"].desc()).limit(5)  # noqa: E731
    same(view(direct).all().arrow, view(via_flight).all().arrow)


def test_as_of_is_the_same_both_ways(services):
    direct, via_flight, first_written = services
    same(
        direct.as_of(first_written).order_by("n").head(50).arrow,
        via_flight.as_of(first_written).order_by("n").head(50).arrow,
    )
    then = direct.as_of(first_written).get_datapoint(PATHS[0])
    assert then["label"] == "dog" and then.get("extra") is None
    assert direct.get_datapoint(PATHS[0])["label"] == "bird"
    # Deleted since: there then, gone now.
    assert direct.as_of(first_written).get_datapoint(PATHS[-1])["n"] == len(PATHS) - 1
    with pytest.raises(NotFoundError):
        direct.get_datapoint(PATHS[-1])


def test_get_datapoint_is_the_same_both_ways(services):
    direct, via_flight = both(services)
    for path in (PATHS[0], PATHS[11], PATHS[-3]):
        one, other = direct.get_datapoint(path), via_flight.get_datapoint(path)
        assert one == other


def test_get_datapoint_sends_what_the_general_filter_sends(services, monkeypatch):
    # get_datapoint builds its lookup message itself: the same one `ds["path"] == p` with limit 1
    # gives, now and as of an instant; a path that cannot be text is refused before any call.
    from thresher.core.errors import InvalidArgumentError
    from thresher.query import QuerySpec

    direct, _, first_written = services
    for view in (direct, direct.as_of(first_written)):
        sent = []
        original = view.connection.read_result
        monkeypatch.setattr(view.connection, "read_result", lambda q, n: sent.append((q, n)) or original(q, n))
        view.get_datapoint(PATHS[4])
        monkeypatch.undo()
        spec = QuerySpec(filter=view.column("path") == PATHS[4], limit=1, as_of=view.query.as_of)
        assert sent == [(spec.to_proto(view.id), 1)]
    with pytest.raises(InvalidArgumentError, match="not valid UTF-8"):
        direct.get_datapoint("bad\udcff.png")
    with pytest.raises(QueryError, match="a datapoint path is a str"):
        direct.get_datapoint(b"img/000.png")


def test_get_datapoints_keeps_the_requested_order(services):
    direct, via_flight = both(services)
    wanted = [PATHS[5], PATHS[1], PATHS[30], PATHS[1]]
    result = direct.get_datapoints(wanted)
    assert result.paths == [PATHS[5], PATHS[1], PATHS[30]]
    same(result.arrow, via_flight.get_datapoints(wanted).arrow)
    assert len(direct.get_datapoints([])) == 0


def test_get_datapoints_names_what_is_missing(services):
    direct, _ = both(services)
    with pytest.raises(NotFoundError, match=r"'nope/1.png'.*2 of the 3 paths are missing"):
        direct.get_datapoints([PATHS[0], "nope/1.png", "nope/2.png"])
    with pytest.raises(QueryError, match="get_datapoint for one"):
        direct.get_datapoints(PATHS[0])


def test_count_and_fields_agree(services):
    direct, via_flight = both(services)
    assert direct.count() == via_flight.count() == len(direct.all()) == len(PATHS) - 2
    assert direct[direct["n"] < 5].count() == 5
    assert direct.fields == via_flight.fields


def test_a_result_past_the_bound_falls_back_to_flight(services):
    direct, _ = both(services)
    connection = direct.connection
    query = direct.order_by("n").query_proto()
    assert connection.read_small(query, 3) is None  # more rows than asked for: nothing sent
    small = connection.read_small(direct.order_by("n").limit(3).query_proto(), 3)
    assert small.column("path").to_pylist() == PATHS[:3]
    # A limit over the bound reads through Flight, still complete.
    bounded = Connection(connection.metadata_address, connection.flight_address, direct_read_rows=2)
    assert Datasource(bounded, direct._shared.proto).order_by("n").head(10).paths == PATHS[:10]


def test_read_query_refuses_bad_bounds_and_unknown_datasources(metadata_server):
    channel = open_channel(metadata_server[0])
    from thresher.v1 import metadata_service_pb2_grpc

    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ReadQuery(ms.ReadQueryRequest(query=common_pb2.Query(datasource_id=1), max_rows=-1))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_rows" in refused.value.details()
    with pytest.raises(grpc.RpcError) as missing:
        stub.ReadQuery(ms.ReadQueryRequest(query=common_pb2.Query(datasource_id=987654), max_rows=5))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    channel.close()


def test_the_path_index_exists_on_both_engines(metadata_server, services):
    _, store = metadata_server
    direct, _ = both(services)
    with store.dialect.read() as session:
        if store.dialect.name == "duckdb":
            found = session.rows("SELECT index_name FROM duckdb_indexes() WHERE table_name = $1", [f"cur_{direct.id}"])
        else:
            found = session.rows("SELECT indexname FROM pg_indexes WHERE tablename = $1", [f"cur_{direct.id}"])
    assert (f"cur_{direct.id}_by_path",) in found


def test_connections_share_one_channel_per_address_across_threads(services):
    direct, via_flight = both(services)
    one, other = direct.connection, via_flight.connection
    seen = []

    def look() -> None:
        seen.append((one.metadata, other.metadata, one.flight))

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(stub) for row in seen for stub in row[:2]}) == 1
    assert len({id(row[2]) for row in seen}) == 1 and seen[0][2] is other.flight


FORKING_CLIENT = """
import os, sys
from thresher.connection import Connection
from thresher.datasource import Datasource
from thresher.v1 import common_pb2

metadata, flight, proto, path = sys.argv[1:5]
connection = Connection(metadata, flight, metadata)
ds = Datasource(connection, common_pb2.Datasource.FromString(bytes.fromhex(proto)))
before = ds.get_datapoint(path)["n"]  # the parent's channel is open
parent_channel = id(connection._channel(metadata))
child = os.fork()
if child == 0:
    fresh = id(connection._channel(metadata)) != parent_channel
    ok = fresh and ds.get_datapoint(path)["n"] == before and ds.count() > 0
    os._exit(0 if ok else 3)
_, status = os.waitpid(child, 0)
assert ds.get_datapoint(path)["n"] == before  # the parent's still works
print("child", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_opens_its_own_channel(services):
    # In a process of its own: this one runs the services, and a process serving gRPC cannot fork safely.
    direct, _ = both(services)
    connection = direct.connection
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            FORKING_CLIENT,
            connection.metadata_address,
            connection.flight_address,
            direct._shared.proto.SerializeToString().hex(),
            PATHS[3],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "child 0"


def _mark_ready(connection, datasource_id: int) -> None:
    """Records a finished scan, as the scanner would: reads then carry no scan-in-progress warning."""
    state = common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_READY)
    connection.call_metadata("UpdateScanStatus", ms.UpdateScanStatusRequest(datasource_id=datasource_id, scan=state))


def _new_datasource(direct, name: str) -> ms.CreateDatasourceResponse:
    """A datasource with no files behind it, written to by the test alone."""
    return direct.connection.call_metadata(
        "CreateDatasource",
        ms.CreateDatasourceRequest(namespace="direct/reads", name=name, source_uri="file:///nowhere"),
    )


def _every_field_type(services, name: str) -> tuple[Datasource, Datasource, dt.datetime]:
    """A new datasource ``name`` holding a value of every flat field type and a vector, as read directly
    and through Flight, and the instant its timestamps start at."""
    direct, via_flight, _ = services
    record = _new_datasource(direct, name)
    _mark_ready(direct.connection, record.datasource.id)
    typed, typed_via_flight = (Datasource(ds.connection, record.datasource) for ds in (direct, via_flight))
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    with typed.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("a.png", {"i": -(2**62), "f": 0.1, "b": True, "s": "it's", "t": when})
        ctx.update_metadata("b.png", {"i": 3, "s": "ünïcode"})
        ctx.update_metadata("c.png", {"b": False, "t": when + dt.timedelta(days=400)})
    typed.upload_vectors("v", ["a.png", "c.png"], [[0.5, -1.25], [3.0, 0.0]])
    return typed, typed_via_flight, when


def test_every_field_type_reads_the_same_both_ways(services):
    # Flat types come back from DuckDB as Python values on the direct path; vectors through Arrow.
    typed, typed_via_flight, when = _every_field_type(services, f"types-{id(services)}")
    for view in (
        lambda ds: ds.order_by("path").head(3),
        lambda ds: ds.get_datapoints(["c.png", "a.png", "b.png"]),
        lambda ds: ds.select("t", "b").order_by("path").head(2),
    ):
        same(view(typed).arrow, view(typed_via_flight).arrow)
    for path in ("a.png", "b.png", "c.png"):
        assert typed.get_datapoint(path) == typed_via_flight.get_datapoint(path)
    got = typed.get_datapoint("a.png")
    assert (got["i"], got["f"], got["b"], got["s"], got["t"]) == (-(2**62), 0.1, True, "it's", when)
    assert typed.get_datapoint("b.png")["b"] is None


def test_lookups_as_of_match_the_same_rows_read_by_a_scan(services):
    # A lookup by path as of an instant folds only those datapoints' log rows; a filter that is no
    # lookup (startswith) folds the whole log. Both must see the same state, deleted datapoints included.
    direct, via_flight, first_written = services
    for ds in (direct, via_flight):
        then = ds.as_of(first_written)
        for path in (PATHS[0], PATHS[-1], PATHS[12]):
            looked_up = then[then["path"] == path].all().arrow
            scanned = then[then["path"].startswith(path)].all().arrow
            same(looked_up, scanned)
            assert looked_up.num_rows == 1
        wanted = [PATHS[-1], PATHS[3], "nope.png", PATHS[0]]
        in_list = then[then["path"].isin(wanted)].order_by("n").all().arrow
        assert in_list.column("path").to_pylist() == [PATHS[0], PATHS[3], PATHS[-1]]
        narrowed = then[then["path"].isin(wanted) & (then["n"] > 1)].order_by("n").all().arrow
        assert narrowed.column("path").to_pylist() == [PATHS[3], PATHS[-1]]
        assert then[then["path"].isin([])].all().arrow.num_rows == 0
        assert then[then["path"] == "nope.png"].all().arrow.num_rows == 0
        assert ds.as_of(first_written).get_datapoints([PATHS[-1], PATHS[0]]).paths == [PATHS[-1], PATHS[0]]


def test_closing_one_connection_leaves_the_shared_channel_to_the_others(services):
    direct, _ = both(services)
    # The same service under a name of its own, so only this test's connections share the channel.
    address = "ipv4:" + direct.connection.metadata_address
    key = (address, None, False)
    one, other = Connection(address, address, address), Connection(address, address, address)
    request = ms.GetDatasourceRequest(id=direct.id)
    assert one.call_metadata("GetDatasource", request).datasource.id == direct.id
    assert other.call_metadata("GetDatasource", request).datasource.id == direct.id
    channel = one._channel(address)
    assert other._channel(address) is channel and transport.references("channel", key) == 2

    one.close()
    assert transport.references("channel", key) == 1
    assert other.call_metadata("GetDatasource", request).datasource.id == direct.id  # still open
    assert other._channel(address) is channel

    other.close()
    assert transport.references("channel", key) == 0
    with pytest.raises(ValueError, match="closed"):  # gRPC's refusal of a call on a closed channel
        MetadataServiceStub(channel).GetDatasource(request)

    # A closed connection used again dials a fresh channel of its own.
    assert one.call_metadata("GetDatasource", request).datasource.id == direct.id
    assert one._channel(address) is not channel and transport.references("channel", key) == 1
    one.close()
    assert transport.references("channel", key) == 0


@pytest.mark.parametrize("limit", [1, 3, 5, 6, 50])
@pytest.mark.parametrize("then", [False, True])
def test_path_lookups_under_any_limit_are_the_same_both_ways(services, limit, then):
    # A lookup of paths alone is run without its limit when the limit cannot cut it (limit >= paths):
    # both sides of that line, a deleted path and a path asked for twice, now and as of an earlier write.
    direct, via_flight, first_written = services
    wanted = [PATHS[0], PATHS[-1], PATHS[5], PATHS[0], "img/none.png", PATHS[12]]
    if then:
        direct, via_flight = direct.as_of(first_written), via_flight.as_of(first_written)
    view = lambda ds: ds[ds["path"].isin(wanted)].limit(limit)  # noqa: E731
    left, right = view(direct).all().arrow, view(via_flight).all().arrow
    found = 4 if then else 3
    assert left.num_rows == right.num_rows == min(limit, found)
    if limit >= found:  # which rows a smaller limit keeps is left open without an order
        same(left.sort_by("path"), right.sort_by("path"))


def test_a_lookup_sees_every_change_to_its_datasource(services):
    # DuckDB's store compiles a lookup of one path once per version of the datasource's record: new
    # fields, a changed scan state and deletions must show on the next lookup, as through Flight.
    direct, via_flight, _ = services
    record = _new_datasource(direct, f"changes-{id(services)}")
    ds, ds_via_flight = (Datasource(view.connection, record.datasource) for view in (direct, via_flight))

    def agree() -> pa.Table:
        for path in ("a.png", "b.png"):
            same(ds.get_datapoints([path]).arrow, ds_via_flight.get_datapoints([path]).arrow)
        return ds.get_datapoints(["a.png"]).arrow

    with pytest.warns(ScanInProgressWarning):  # the scan state travels in the schema: pending so far
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"n": 1})
            ctx.update_metadata("b.png", {"n": 2})
        assert agree().column_names == ["path", "datapoint_id", "n"]
        assert ds.get_datapoint("a.png")["n"] == 1
        with ds.metadata_context() as ctx:
            ctx.update_metadata("a.png", {"label": "cat", "n": 5})
        assert agree().column_names == ["path", "datapoint_id", "n", "label"]
        assert ds.get_datapoint("a.png")["label"] == "cat" and ds.get_datapoint("a.png")["n"] == 5
    _mark_ready(direct.connection, ds.id)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScanInProgressWarning)  # ready now: the lookup's schema says so
        agree()
    ds.delete_datapoints(["a.png"])
    with pytest.raises(NotFoundError):
        ds.get_datapoint("a.png")
    assert ds.get_datapoint("b.png")["n"] == 2


@pytest.mark.parametrize("absent", [0, 2000])
@pytest.mark.parametrize("then", [False, True])
def test_path_lists_short_and_long_read_the_same_both_ways(services, absent, then):
    # DuckDB looks up to INDEXED_ISIN_PATHS paths in the path index (an IN list) and matches longer
    # lists row by row (one list parameter): both forms, now and as of an earlier write.
    direct, via_flight, first_written = services
    wanted = [PATHS[3], PATHS[-1], PATHS[20]] + [f"none/{i}.png" for i in range(absent)]
    if then:
        direct, via_flight = direct.as_of(first_written), via_flight.as_of(first_written)
    view = lambda ds: ds[ds["path"].isin(wanted)]  # noqa: E731
    left, right = view(direct).all().arrow, view(via_flight).all().arrow
    assert left.num_rows == (3 if then else 2)
    same(left.sort_by("path"), right.sort_by("path"))
    excluded = lambda ds: ds[~ds["path"].isin(wanted)]  # noqa: E731
    assert excluded(direct).count() == excluded(via_flight).count() == len(excluded(via_flight).all())


def test_a_whole_count_follows_every_write(services):
    # DuckDB's store keeps a datasource's live count between writes: every write must move it, and a
    # count of another datasource, a filtered one or one as of an instant must not take its place.
    direct, via_flight, first_written = services
    record = _new_datasource(direct, f"counted-{id(services)}")
    ds, ds_via_flight = (Datasource(view.connection, record.datasource) for view in (direct, via_flight))
    _mark_ready(direct.connection, ds.id)

    def counted() -> int:
        total = ds.count()
        assert total == ds.count() == len(ds_via_flight.all()) == ds[ds["path"] != ""].count()
        return total

    assert counted() == 0
    with ds.metadata_context(create_missing=True) as ctx:
        for i in range(5):
            ctx.update_metadata(f"{i}.png", {"n": i})
    assert counted() == 5
    assert direct.count() == len(PATHS) - 2  # another datasource's count is its own
    before_delete = dt.datetime.now(UTC)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("0.png", {"n": 10})  # an update adds no datapoint
    assert counted() == 5
    ds.delete_datapoints(["1.png", "2.png"])
    assert counted() == 3
    assert ds.as_of(before_delete).count() == 5
    assert ds[ds["n"] > 3].count() == 2
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("1.png", {"n": 1})  # a deleted path written again is a datapoint again
    assert counted() == 4
    frame = pd.DataFrame({"path": ["5.png", "6.png", "0.png"], "n": [5, 6, 0]})
    ds.upload_metadata_from_dataframe(frame, create_missing=True)  # a table upload (Flight DoPut)
    assert counted() == 6
    assert ds.select("n").count() == 6
    with pytest.raises(NotFoundError):  # a selection is checked as before: no kept count skips it
        ds.connection.call_metadata(
            "DescribeQuery",
            ms.DescribeQueryRequest(
                query=common_pb2.Query(datasource_id=ds.id, select=[common_pb2.SelectItem(field="nope")]),
                count_only=True,
            ),
            idempotent=True,
        )
    direct.connection.call_metadata("DeleteDatasource", ms.DeleteDatasourceRequest(id=ds.id))
    with pytest.raises(NotFoundError):
        ds.count()


def test_a_path_looked_up_again_follows_every_write(services):
    # DuckDB's store keeps the rows of one-path lookups until the next write: reading the same path
    # again must show every later change, as through Flight, and a lookup as of an instant its past.
    direct, via_flight, _ = services
    record = _new_datasource(direct, f"again-{id(services)}")
    ds, ds_via_flight = (Datasource(view.connection, record.datasource) for view in (direct, via_flight))
    _mark_ready(direct.connection, ds.id)

    def looked_up(path: str) -> dict:
        found = [ds.get_datapoint(path) for _ in range(3)]
        assert found[0] == found[1] == found[2] == ds_via_flight.get_datapoint(path)
        same(ds.get_datapoints([path]).arrow, ds_via_flight.get_datapoints([path]).arrow)
        return found[0].metadata

    with pytest.raises(NotFoundError):
        ds.get_datapoint("x.png")
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("x.png", {"n": 1})
        ctx.update_metadata("y.png", {"n": 2})
    assert looked_up("x.png") == {"n": 1}
    first = dt.datetime.now(UTC)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("x.png", {"n": 3})
    assert looked_up("x.png") == {"n": 3}
    assert ds.as_of(first).get_datapoint("x.png")["n"] == 1
    with ds.metadata_context() as ctx:
        ctx.update_metadata("y.png", {"label": "cat"})  # a new field: every lookup's columns change
    assert looked_up("x.png") == {"n": 3, "label": None}
    ds.delete_datapoints(["x.png"])
    for _ in range(2):
        with pytest.raises(NotFoundError):
            ds.get_datapoint("x.png")
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("x.png", {"n": 4})
    assert looked_up("x.png") == {"n": 4, "label": None}
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["x.png"], "n": [5]}))  # through Flight DoPut
    assert looked_up("x.png") == {"n": 5, "label": None}
    assert looked_up("y.png") == {"n": 2, "label": "cat"}


@pytest.fixture
def path_indexes(metadata_server, monkeypatch):
    """The store's in-memory path indexes, read after a datasource's first lookup under a write marker
    (not the sixteenth): the embedded store's alone (PostgreSQL has writers this process does not see)."""
    _, store = metadata_server
    assert store.dialect.single_writer, "mark the test single_writer: it is collected for DuckDB only"
    monkeypatch.setattr(store.path_indexes, "after", 1)
    # Every index pays for itself here: a write elsewhere never makes the next one wait for more lookups.
    monkeypatch.setattr(store.path_indexes, "payback_rows", None)
    monkeypatch.setattr(store.path_indexes, "_needed", {})
    return store.path_indexes


def _indexed(indexes, ds, path: str) -> pa.Table:
    """``ds[path == path]`` (limited) read once the datasource's path index is read, asserting the index served it."""
    # A limit makes the result's bound known: it is read in one call, not through Flight.
    ds[ds["path"] == path].limit(2).all()  # the first lookup under this write marker starts reading the index
    assert indexes.wait_idle(60)
    served = indexes.served
    table = ds[ds["path"] == path].limit(2).all().arrow
    assert indexes.served == served + 1, "the lookup was not served by the path index"
    return table


@pytest.mark.single_writer
def test_the_path_index_reads_every_field_type_as_flight_does(services, path_indexes):
    typed, typed_via_flight, _ = _every_field_type(services, f"indexed-types-{id(services)}")
    for path in ("a.png", "b.png", "c.png", "ünïcode.png"):
        flight_rows = typed_via_flight[typed_via_flight["path"] == path].limit(2).all().arrow
        same(_indexed(path_indexes, typed, path), flight_rows)
        # get_datapoint's lookup (limit 1) is served by the index too.
        served = path_indexes.served
        if path == "ünïcode.png":
            with pytest.raises(NotFoundError):
                typed.get_datapoint(path)
        else:
            assert typed.get_datapoint(path) == typed_via_flight.get_datapoint(path)
        assert path_indexes.served == served + 1
    assert path_indexes.held(typed.id).rows.num_rows == 3


@pytest.mark.single_writer
def test_the_path_index_never_serves_rows_a_write_replaced(services, path_indexes):
    # After each kind of write the next lookup must show it (the index read before is dropped, never
    # served), and the index read again under the new marker must agree with Flight.
    direct, via_flight, _ = services
    record = _new_datasource(direct, f"indexed-changes-{id(services)}")
    _mark_ready(direct.connection, record.datasource.id)
    ds, ds_via_flight = (Datasource(view.connection, record.datasource) for view in (direct, via_flight))

    def after_a_write(path: str) -> dict | None:
        """The datapoint at ``path`` right after a write (not from the index) and once re-indexed."""
        served = path_indexes.served
        try:
            now = ds.get_datapoint(path).metadata
        except NotFoundError:
            now = None
        assert path_indexes.served == served, "a lookup after a write was served by an index read before it"
        same(_indexed(path_indexes, ds, path), ds_via_flight[ds_via_flight["path"] == path].limit(2).all().arrow)
        return now

    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("x.png", {"n": 1})
        ctx.update_metadata("y.png", {"n": 2})
    assert after_a_write("x.png") == {"n": 1}
    first = dt.datetime.now(UTC)
    with ds.metadata_context() as ctx:  # an upsert
        ctx.update_metadata("x.png", {"n": 3})
    assert after_a_write("x.png") == {"n": 3}
    served = path_indexes.served
    assert ds.as_of(first).get_datapoint("x.png")["n"] == 1  # as_of is never the index's
    assert path_indexes.served == served
    with ds.metadata_context() as ctx:  # a new field: every lookup's columns change
        ctx.update_metadata("y.png", {"label": "cat"})
    assert after_a_write("x.png") == {"n": 3, "label": None}
    ds.delete_metadata(["y.png"], "label")
    assert after_a_write("y.png") == {"n": 2, "label": None}
    ds.delete_datapoints(["x.png"])
    assert after_a_write("x.png") is None
    # No write since: the index read for x.png serves y.png too.
    same(_indexed(path_indexes, ds, "y.png"), ds_via_flight[ds_via_flight["path"] == "y.png"].limit(2).all().arrow)
    with ds.metadata_context(create_missing=True) as ctx:  # a deleted path written again
        ctx.update_metadata("x.png", {"n": 4})
    assert after_a_write("x.png") == {"n": 4, "label": None}
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["x.png"], "n": [5]}))  # through Flight DoPut
    assert after_a_write("x.png") == {"n": 5, "label": None}
    _mark_ready(direct.connection, ds.id)  # a changed record (scan state) without new rows
    assert after_a_write("y.png") == {"n": 2, "label": None}


@pytest.mark.single_writer
def test_a_datasource_past_the_byte_cap_keeps_the_statement_path(services, path_indexes, monkeypatch):
    direct, via_flight, _ = services
    record = _new_datasource(direct, f"capped-{id(services)}")  # its refused index stays its own
    _mark_ready(direct.connection, record.datasource.id)
    ds, ds_via_flight = (Datasource(view.connection, record.datasource) for view in (direct, via_flight))
    with ds.metadata_context(create_missing=True) as ctx:
        for i in range(3):
            ctx.update_metadata(f"{i}.png", {"n": i})
    monkeypatch.setattr(path_indexes, "max_bytes", 64)  # fewer bytes than one row
    served = path_indexes.served
    for path in ("0.png", "1.png", "none.png"):
        assert path_indexes.wait_idle(60)
        if path == "none.png":
            with pytest.raises(NotFoundError):
                ds.get_datapoint(path)
        else:
            assert ds.get_datapoint(path) == ds_via_flight.get_datapoint(path)
    assert path_indexes.wait_idle(60)
    assert path_indexes.held(ds.id) is None and path_indexes.served == served


@pytest.mark.single_writer
@pytest.mark.parametrize("limit", [None, 2, 3, 50])
def test_path_lists_through_the_path_index_are_the_same_both_ways(services, path_indexes, limit):
    # A list of paths alone is answered from a current index: missing, deleted and repeated paths,
    # in any order, under a limit at least the rows found; a limit below those keeps the statement.
    direct, via_flight, first_written = services
    wanted = [PATHS[7], PATHS[-1], "img/none.png", PATHS[0], PATHS[7], PATHS[30]]
    _indexed(path_indexes, direct, PATHS[1])
    view = lambda ds: ds[ds["path"].isin(wanted)].limit(limit or 10)  # noqa: E731
    served = path_indexes.served
    left, right = view(direct).all().arrow, view(via_flight).all().arrow
    assert path_indexes.served == served + (0 if limit == 2 else 1)
    assert left.num_rows == right.num_rows == min(limit or 10, 3)
    if limit != 2:
        same(left.sort_by("path"), right.sort_by("path"))
    found = direct.get_datapoints([PATHS[30], PATHS[7], PATHS[2]])
    assert found.paths == [PATHS[30], PATHS[7], PATHS[2]]
    same(found.arrow, via_flight.get_datapoints([PATHS[30], PATHS[7], PATHS[2]]).arrow)
    with pytest.raises(NotFoundError, match="img/none.png"):
        direct.get_datapoints([PATHS[3], "img/none.png"])
    assert len(direct[direct["path"].isin([])].limit(5).all()) == 0
    served = path_indexes.served
    then = direct.as_of(first_written)  # as_of is never the index's
    assert then[then["path"].isin(wanted)].limit(10).all().arrow.num_rows == 4
    assert path_indexes.served == served


def test_the_bound_comes_from_the_environment_unless_given(services, monkeypatch):
    # The default connection is built from the environment, so the bound must be settable there too.
    from thresher.core.settings import SettingsError

    direct, _ = both(services)
    addresses = (direct.connection.metadata_address, direct.connection.flight_address)
    assert Connection(*addresses).direct_read_rows == 10_000
    monkeypatch.setenv("THRESHER_DIRECT_READ_ROWS", "2")
    from_env = Connection(*addresses)
    assert from_env.direct_read_rows == 2
    assert Connection(*addresses, direct_read_rows=7).direct_read_rows == 7  # an argument wins
    # Past the bound the read goes through Flight, still complete and the same.
    view = Datasource(from_env, direct._shared.proto)
    same(view.order_by("n").head(10).arrow, direct.order_by("n").head(10).arrow)
    monkeypatch.setenv("THRESHER_DIRECT_READ_ROWS", "-1")
    with pytest.raises(SettingsError, match="THRESHER_DIRECT_READ_ROWS"):
        Connection(*addresses)
    with pytest.raises(ValueError, match="direct_read_rows takes a non-negative int"):
        Connection(*addresses, direct_read_rows=-3)


def test_a_small_limited_view_read_through_arrow_interchange_is_one_call(services, monkeypatch):
    # to_arrow, to_pandas, iter_batches and the Arrow C stream of a view whose limit bounds it small
    # take the same one-call path as all() and head(), with the same table as Flight gives. (polars reads
    # a view through the same C stream as pa.table; it is an optional extra the lowest-versions run lacks.)
    direct, via_flight = both(services)
    connection = direct.connection
    sent = []
    original = connection.read_small
    monkeypatch.setattr(connection, "read_small", lambda q, n: sent.append(n) or original(q, n))

    def no_flight(*args, **kwargs):
        raise AssertionError("a small limited view was read through Flight")

    monkeypatch.setattr(connection, "stream_query", no_flight)
    view = lambda ds: ds[ds["label"] == "cat"].order_by("n").select("n", "label").limit(6)  # noqa: E731
    expected = view(via_flight).to_arrow()
    same(view(direct).to_arrow(), expected)
    assert view(direct).to_pandas().equals(expected.to_pandas())
    assert pa.Table.from_batches(list(view(direct).iter_batches(4)), expected.schema).equals(expected)
    assert pa.table(view(direct)).equals(expected)  # the C stream interface
    empty = lambda ds: ds[ds["n"] > 10_000].limit(3)  # noqa: E731
    same(empty(direct).to_arrow(), empty(via_flight).to_arrow())
    assert sent == [6] * 4 + [3]
    monkeypatch.undo()
    # Past the bound a view streams from Flight, as before.
    bounded = Datasource(
        Connection(connection.metadata_address, connection.flight_address, direct_read_rows=2), direct._shared.proto
    )
    same(bounded.order_by("n").limit(5).to_arrow(), via_flight.order_by("n").limit(5).to_arrow())
