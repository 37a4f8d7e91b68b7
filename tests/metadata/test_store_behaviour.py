"""One behaviour per engine: the points where the two former stores drifted, held by the same tests.

Each test runs on DuckDB and on PostgreSQL through the one store (``sql_store.SqlStore``); each fails on
the behaviour one of the former stores had.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pyarrow as pa
import pytest

from thresher.core.storage.blobs import open_blob_store
from thresher.core.types import FieldType
from thresher.services.metadata.domain_errors import InvalidArgument, NotFound, UnknownPaths
from thresher.services.metadata.store import DuckDBStore, PostgresStore, sql_store
from thresher.services.metadata.store.sql_store import CATALOG_LOCK, log_table
from thresher.v1 import common_pb2

UTC = dt.UTC
T0 = dt.datetime(2030, 1, 1, tzinfo=UTC)
_names = itertools.count()


class Clock:
    """A clock the test turns by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request, tmp_path):
    clock = Clock()
    blobs = open_blob_store(home=str(tmp_path))
    if request.param == "duckdb":
        store = DuckDBStore(str(tmp_path / "metadata.duckdb"), blobs, clock=clock)
    else:
        store = PostgresStore(request.getfixturevalue("postgres_url"), blobs, clock=clock)
    yield store, clock
    store.close()


def _datasource(store):
    return store.create_datasource(f"behaviour/n{next(_names)}", "ds", "file:///nowhere", "")


def _write(store, source, **columns):
    table = pa.table({"path": columns.pop("path"), **columns})
    return store.upsert(source.id, table, "path", "tester", create_missing=True)


def _state(store, source, at: dt.datetime | None = None) -> dict:
    query = common_pb2.Query(datasource_id=source.id)
    if at is not None:
        query.as_of.FromDatetime(at)
    schema, batches = store.query(query)
    table = pa.Table.from_batches(list(batches), schema).drop_columns(["datapoint_id"])
    return {row.pop("path"): {k: v for k, v in row.items() if v is not None} for row in table.to_pylist()}


def test_write_times_increase_per_datasource_and_as_of_reads_its_own_writes(engine):
    # The former DuckDB store ordered write times globally (a write was stamped after every other
    # datasource's last write) and matched as_of against every datasource's writes.
    store, clock = engine
    first, second = _datasource(store), _datasource(store)
    clock.now = T0 + dt.timedelta(seconds=10)
    _write(store, first, path=["a"], x=[1])
    clock.now = T0
    _write(store, second, path=["b"], x=[2])
    assert store.changes(second.id, None, None)["written_at"].to_pylist() == [T0]
    assert _state(store, second, T0 + dt.timedelta(seconds=5)) == {"b": {"x": 2}}
    assert _state(store, first, T0 + dt.timedelta(seconds=5)) == {}
    # Within one datasource, times still strictly increase when the clock goes back.
    clock.now = T0 - dt.timedelta(seconds=1)
    _write(store, second, path=["b"], x=[3])
    assert store.changes(second.id, None, None)["written_at"].to_pylist() == [T0, T0 + dt.timedelta(microseconds=1)]


def test_tag_merges_keep_first_occurrence_order(engine):
    # The former DuckDB store merged with list_distinct, which reorders.
    store, _ = engine
    source = _datasource(store)
    store.define_fields(source.id, [("label", FieldType.STRING, ("b", "a", "z", "q"))])
    merged = store.define_fields(source.id, [("label", FieldType.STRING, ("c", "a", "b", "d"))])
    assert merged[0].tags == ("b", "a", "z", "q", "c", "d")


def test_not_found_names_the_first_missing_path_in_request_order(engine):
    store, _ = engine
    source = _datasource(store)
    _write(store, source, path=[f"p{i:05d}" for i in range(5000)], x=list(range(5000)))
    requested = [f"p{i:05d}" for i in range(5000)]
    requested[3000:3000] = ["missing-3"]
    requested[1000:1000] = ["missing-2"]
    requested.append("missing-1")
    with pytest.raises(NotFound, match="'missing-2'"):
        store.delete_datapoints(source.id, requested, "tester")
    assert store.describe(common_pb2.Query(datasource_id=source.id))[1] == 5000


def test_a_new_field_is_created_at_its_writes_time(engine):
    # The former DuckDB store stamped a new field before (and apart from) the write that made it.
    store, clock = engine
    source = _datasource(store)
    clock.now = T0 + dt.timedelta(seconds=3)
    _write(store, source, path=["a"], score=[0.5])
    written_at = store.changes(source.id, None, None)["written_at"][0].as_py()
    assert store.get_datasource(source.id).fields[0].created_at == written_at == clock.now
    assert _state(store, source, written_at) == {"a": {"score": 0.5}}


def test_names_are_unique_by_constraint_in_every_engine(engine):
    # The former DuckDB store had no constraint: uniqueness rested on a check before each insert.
    store, _ = engine
    source = _datasource(store)
    row = (
        "INSERT INTO datasources VALUES (999999, $1, $2, 'file:///x', '', $3, 'pending', 0, 0, 0, 0, 0, '', NULL, NULL)"
    )
    with pytest.raises(Exception, match="(?i)constraint|duplicate|unique"):
        store.dialect.write(CATALOG_LOCK, lambda s: s.execute(row, [source.namespace, source.name, T0]))
    assert store.find_datasource(source.namespace, source.name).id == source.id


def test_duplicate_paths_in_one_write_are_refused_and_nothing_is_written(engine):
    store, _ = engine
    source = _datasource(store)
    with pytest.raises(InvalidArgument, match="path 'b' appears more than once"):
        _write(store, source, path=["a", "b", "c", "b"], x=[1, 2, 3, 4])
    assert _state(store, source) == {}


def test_writes_to_unknown_paths_are_refused_unless_asked_to_create_them(engine):
    store, _ = engine
    source = _datasource(store)
    _write(store, source, path=["known"], x=[1])
    paths = ["known", *(f"new{i:02d}" for i in range(12))]
    with pytest.raises(UnknownPaths) as refused:
        store.upsert(source.id, pa.table({"path": paths, "x": list(range(13))}), "path", "tester")
    message = str(refused.value)
    assert refused.value.count == 12 and message.startswith("12 paths are not in datasource")
    assert "'new00'" in message and "'new09'" in message and "'new10'" not in message and "2 more" in message
    assert _state(store, source) == {"known": {"x": 1}}
    # A deleted datapoint is not in the datasource either.
    store.delete_datapoints(source.id, ["known"], "tester")
    with pytest.raises(UnknownPaths, match="^1 paths are not in datasource .*'known'"):
        store.upsert(source.id, pa.table({"path": ["known"], "x": [5]}), "path", "tester")
    result = store.upsert(
        source.id, pa.table({"path": paths, "x": list(range(13))}), "path", "tester", create_missing=True
    )
    assert (result.datapoints_written, result.datapoints_created) == (13, 13)


def test_new_datapoints_are_written_once_and_updates_log_what_they_supersede(engine):
    store, clock = engine
    source = _datasource(store)
    _write(store, source, path=["a", "b", "c"], x=[1, 2, 3], label=["cat", None, "dog"])
    with store.dialect.read() as session:
        assert session.one(f"SELECT count(*) FROM {log_table(source.id)}")[0] == 0
    clock.now = T0 + dt.timedelta(seconds=1)
    _write(store, source, path=["b"], label=["bird"])
    with store.dialect.read() as session:
        assert session.one(f"SELECT count(*) FROM {log_table(source.id)}")[0] == 1
    history = store.history(source.id, "b").to_pylist()
    assert [(h["x"], h["label"]) for h in history] == [(2, None), (None, "bird")]
    assert [h["label"] for h in store.history(source.id, "a", "label").to_pylist()] == ["cat"]
    assert _state(store, source, T0) == {"a": {"x": 1, "label": "cat"}, "b": {"x": 2}, "c": {"x": 3, "label": "dog"}}
    assert _state(store, source)["b"] == {"x": 2, "label": "bird"}


def test_an_upload_is_written_chunk_by_chunk_and_commits_only_whole(engine, monkeypatch):
    from thresher.services.metadata.store import sql_store as store_module

    store, clock = engine
    monkeypatch.setattr(store_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(store_module, "FIRST_CHUNK_ROWS", 2)
    source = _datasource(store)
    _write(store, source, path=["a", "b"], x=[1, 2], label=["cat", "dog"])
    schema = pa.schema([("path", pa.string()), ("x", pa.int64()), ("score", pa.float64())])

    def batches(*rows):
        for paths, xs, scores in rows:
            yield pa.record_batch(
                [pa.array(paths), pa.array(xs, pa.int64()), pa.array(scores, pa.float64())], schema=schema
            )

    with pytest.raises(InvalidArgument, match="path 'c' appears more than once"):
        store.upsert_batches(
            source.id,
            schema,
            batches((["c", "a"], [3, 10], [None, None]), (["d", "c"], [4, 5], [0.5, 0.5])),
            "path",
            "tester",
            create_missing=True,
        )
    assert _state(store, source) == {"a": {"x": 1, "label": "cat"}, "b": {"x": 2, "label": "dog"}}

    def failing():
        yield from batches((["a", "e"], [10, 5], [None, None]), (["f", "g"], [6, 7], [0.1, 0.2]))
        raise InvalidArgument("the stream stopped before its end")

    with pytest.raises(InvalidArgument, match="before its end"):
        store.upsert_batches(source.id, schema, failing(), "path", "tester", create_missing=True)
    assert _state(store, source) == {"a": {"x": 1, "label": "cat"}, "b": {"x": 2, "label": "dog"}}
    clock.now = T0 + dt.timedelta(seconds=1)
    # `score` has no value in the first chunk, so it becomes a field in a later one.
    result = store.upsert_batches(
        source.id,
        schema,
        batches((["a", "e"], [10, 5], [None, None]), (["b", "f"], [None, 6], [0.25, 0.5])),
        "path",
        "tester",
        create_missing=True,
    )
    assert (result.datapoints_written, result.datapoints_created) == (4, 2)
    assert _state(store, source) == {
        "a": {"x": 10, "label": "cat"},
        "b": {"x": 2, "label": "dog", "score": 0.25},
        "e": {"x": 5},
        "f": {"x": 6, "score": 0.5},
    }
    assert [(h["x"], h["label"], h["score"]) for h in store.history(source.id, "a").to_pylist()] == [
        (1, "cat", None),
        (10, None, None),
    ]
    assert [(h["x"], h["score"]) for h in store.history(source.id, "b").to_pylist()] == [(2, None), (None, 0.25)]
    assert [(h["x"], h["score"]) for h in store.history(source.id, "f").to_pylist()] == [(6, 0.5)]
    assert _state(store, source, T0) == {"a": {"x": 1, "label": "cat"}, "b": {"x": 2, "label": "dog"}}


def test_a_streamed_upload_is_read_by_its_caller_alone_and_stops_at_a_bad_chunk(engine, monkeypatch):
    # Chunks are written on a helper thread while the caller reads the next one; the stream itself is
    # read on the caller's thread only, and no further than one chunk past the one that failed.
    import threading

    from thresher.services.metadata.store import sql_store as store_module

    store, _ = engine
    monkeypatch.setattr(store_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(store_module, "FIRST_CHUNK_ROWS", 2)
    source = _datasource(store)
    _write(store, source, path=["a"], x=[1])
    schema = pa.schema([("path", pa.string()), ("x", pa.int64())])
    readers: list[threading.Thread] = []

    def batches(bad_at: int | None = None):
        for i in range(6):
            readers.append(threading.current_thread())
            paths = ["", "x"] if i == bad_at else [f"p{i}a", f"p{i}b"]
            yield pa.record_batch([pa.array(paths), pa.array([i, i], pa.int64())], schema=schema)

    with pytest.raises(InvalidArgument, match="has an empty path"):
        store.upsert_batches(source.id, schema, batches(bad_at=2), "path", "tester", create_missing=True)
    assert len(readers) <= 4 and set(readers) == {threading.current_thread()}
    assert _state(store, source) == {"a": {"x": 1}}
    result = store.upsert_batches(source.id, schema, batches(), "path", "tester", create_missing=True)
    assert result.datapoints_written == 12 and len(_state(store, source)) == 13


def _current_indexes(store, datasource_id: int) -> set[str]:
    """The names of the indexes on a datasource's current table (a PostgreSQL key's included)."""
    table = f"cur_{datasource_id}"
    if store.dialect.name == "postgres":
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1"
    else:
        sql = "SELECT index_name FROM duckdb_indexes() WHERE table_name = $1"
    with store.dialect.read() as session:
        return {row[0] for row in session.rows(sql, [table])}


def test_a_first_load_keeps_the_current_tables_indexes_whether_it_commits_or_not(engine, monkeypatch):
    # PostgreSQL builds the indexes of an empty datasource's first large load after its rows, inside
    # its transaction; whatever happens, the table has them afterwards and lookups by path work.
    from thresher.services.metadata.store import sql_store as store_module

    store, _ = engine
    monkeypatch.setattr(store_module, "INDEX_AFTER_ROWS", 2)
    monkeypatch.setattr(store_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(store_module, "FIRST_CHUNK_ROWS", 2)
    source = _datasource(store)
    before = _current_indexes(store, source.id)
    assert f"cur_{source.id}_by_path" in before
    schema = pa.schema([("path", pa.string()), ("x", pa.int64())])

    def batches(*paths):
        for pair in paths:
            yield pa.record_batch([pa.array(pair), pa.array([1, 2], pa.int64())], schema=schema)

    with pytest.raises(InvalidArgument, match="path 'b' appears more than once"):
        store.upsert_batches(source.id, schema, batches(["a", "b"], ["b", "c"]), "path", "t", create_missing=True)
    assert _current_indexes(store, source.id) == before and _state(store, source) == {}
    result = store.upsert_batches(source.id, schema, batches(["a", "b"], ["c", "d"]), "path", "t", create_missing=True)
    assert result.datapoints_created == 4 and _current_indexes(store, source.id) == before
    _write(store, source, path=["c"], x=[7])  # an update finds its row by key again
    assert _state(store, source)["c"] == {"x": 7} and len(_state(store, source)) == 4


def test_a_first_load_into_postgresql_is_vacuumed_once_committed(postgres_url, tmp_path, monkeypatch):
    # Its pages end all-visible, so the scans that follow skip each row's visibility check; and the
    # connection the vacuum ran on (outside a transaction) serves transactions again afterwards.
    from thresher.services.metadata.store import sql_store as store_module

    monkeypatch.setattr(store_module, "INDEX_AFTER_ROWS", 2)
    store = PostgresStore(postgres_url, open_blob_store(home=str(tmp_path)), pool_size=1)
    try:
        source = _datasource(store)
        _write(store, source, path=[f"p{i}" for i in range(500)], x=list(range(500)))
        with store.dialect.read() as session:
            pages, visible = session.row(
                "SELECT relpages, relallvisible FROM pg_class WHERE relname = $1", [f"cur_{source.id}"]
            )
        assert pages > 0 and visible == pages
        _write(store, source, path=["p1"], x=[-1])  # on the one pooled connection, the vacuum's
        assert _state(store, source)["p1"] == {"x": -1} and len(_state(store, source)) == 500
    finally:
        store.close()


def test_duplicates_are_found_across_chunks_whether_or_not_paths_increase(engine, monkeypatch):
    from thresher.services.metadata.store import sql_store as store_module

    store, _ = engine
    monkeypatch.setattr(store_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(store_module, "FIRST_CHUNK_ROWS", 2)
    source = _datasource(store)
    schema = pa.schema([("path", pa.string()), ("x", pa.int64())])

    def upload(*chunks):
        batches = [
            pa.record_batch([pa.array(paths), pa.array(range(len(paths)), pa.int64())], schema=schema)
            for paths in chunks
        ]
        return store.upsert_batches(source.id, schema, batches, "path", "tester", create_missing=True)

    # Increasing within each chunk; the repeat is the last path of one chunk and the first of the next.
    with pytest.raises(InvalidArgument, match="path 'b' appears more than once"):
        upload(["a", "b"], ["b", "c"])
    # Not increasing: every path is hashed, and the first repeated one is named.
    with pytest.raises(InvalidArgument, match="path 'd' appears more than once"):
        upload(["d", "a"], ["c", "d"], ["a", "e"])
    assert _state(store, source) == {}
    assert upload(["a", "b"], ["c", "d"]).datapoints_written == 4
    assert upload(["d", "c"], ["b", "a"]).datapoints_written == 4
    assert _state(store, source) == {p: {"x": x} for p, x in (("d", 0), ("c", 1), ("b", 0), ("a", 1))}


def test_an_update_clears_a_rows_field_list_only_where_it_sets_every_field(engine):
    store, _ = engine
    source = _datasource(store)
    _write(store, source, path=["a", "b"], x=[1, 1], y=[1, 1])
    # `a` sets only x (its row lists it); `b` sets both (no list).
    _write(store, source, path=["a", "b"], x=[2, 2], y=pa.array([None, 2], pa.int64()))
    # Both set every field: `a`'s list goes; then one sets only y.
    _write(store, source, path=["a", "b"], x=[3, 3], y=[3, 3])
    _write(store, source, path=["b", "a"], x=pa.array([None, 4], pa.int64()), y=[4, 4])
    assert [(h["x"], h["y"]) for h in store.history(source.id, "a").to_pylist()] == [(1, 1), (2, None), (3, 3), (4, 4)]
    assert [(h["x"], h["y"]) for h in store.history(source.id, "b").to_pylist()] == [(1, 1), (2, 2), (3, 3), (None, 4)]
    assert _state(store, source) == {"a": {"x": 4, "y": 4}, "b": {"x": 3, "y": 4}}


@pytest.mark.parametrize("named_writes", [sql_store.NAMED_WRITES, 1])
def test_an_update_logs_rows_last_set_by_writes_of_different_fields(engine, monkeypatch, named_writes):
    # The update names the writes whose rows it logs: a field every one of them set is copied, one some
    # set is copied by write, one none set is NULL. Past NAMED_WRITES it reads each row's write instead.
    monkeypatch.setattr(sql_store, "NAMED_WRITES", named_writes)
    store, clock = engine
    source = _datasource(store)
    _write(store, source, path=["d"], w=[5])
    clock.now = T0 + dt.timedelta(seconds=1)
    _write(store, source, path=["a", "b", "c"], x=[1, 1, 1], y=[1, 1, 1], z=[1, 1, 1])
    clock.now = T0 + dt.timedelta(seconds=2)
    _write(store, source, path=["a"], x=[2], y=[2])
    clock.now = T0 + dt.timedelta(seconds=3)
    _write(store, source, path=["b"], x=[3])
    before = _state(store, source)
    clock.now = T0 + dt.timedelta(seconds=4)
    _write(store, source, path=["a", "b", "c"], z=[9, 9, 9])

    def history(path: str) -> list[tuple]:
        return [(h["w"], h["x"], h["y"], h["z"]) for h in store.history(source.id, path).to_pylist()]

    assert history("a") == [(None, 1, 1, 1), (None, 2, 2, None), (None, None, None, 9)]
    assert history("b") == [(None, 1, 1, 1), (None, 3, None, None), (None, None, None, 9)]
    assert history("c") == [(None, 1, 1, 1), (None, None, None, 9)]
    assert history("d") == [(5, None, None, None)]
    assert _state(store, source, T0 + dt.timedelta(seconds=3)) == before
    assert _state(store, source)["b"] == {"x": 3, "y": 1, "z": 9}


def test_history_keeps_exactly_the_fields_each_update_set(engine):
    store, _ = engine
    source = _datasource(store)
    _write(store, source, path=["a"], x=[1], y=[1])
    _write(store, source, path=["a"], x=[2], y=pa.array([None], pa.int64()))
    _write(store, source, path=["a"], x=[3], y=[3])
    assert [(h["x"], h["y"]) for h in store.history(source.id, "a").to_pylist()] == [(1, 1), (2, None), (3, 3)]
    store.delete_metadata(source.id, ["a"], ["x"], "tester")
    history = store.history(source.id, "a").to_pylist()
    assert [(h["operation"], h["x"], h["y"], h["cleared"]) for h in history] == [
        ("set", 1, 1, []),
        ("set", 2, None, []),
        ("set", 3, 3, []),
        ("delete_metadata", None, None, ["x"]),
    ]
    assert [h["y"] for h in store.history(source.id, "a", "y").to_pylist()] == [1, 3]


def test_last_write_id_moves_with_each_write_and_only_then(engine):
    store, clock = engine
    source = _datasource(store)
    assert store.last_write_id(source.id) == -1
    seen = [store.last_write_id(source.id)]
    for write in (
        lambda: _write(store, source, path=["a", "b"], n=[1, 2]),
        lambda: store.delete_metadata(source.id, ["a"], ["n"], "tester"),
        lambda: store.delete_datapoints(source.id, ["b"], "tester"),
    ):
        clock.now += dt.timedelta(seconds=1)
        write()
        seen.append(store.last_write_id(source.id))
        store.query(common_pb2.Query(datasource_id=source.id))  # reads leave it alone
        assert store.last_write_id(source.id) == seen[-1]
    assert seen == sorted(set(seen)), "every write gives a larger id"
    other = _datasource(store)
    assert store.last_write_id(other.id) == -1  # another datasource's writes do not count


def test_a_query_reads_the_same_datasource_record_in_one_statement(engine):
    # PostgreSQL queries read the record afresh, row and fields joined; it must equal the two-step read.
    store, _ = engine
    source = _datasource(store)
    with store.dialect.read() as session:
        assert store._catalog_record(session, source.id) == store._datasource(session, source.id)  # no fields
    _write(
        store,
        source,
        path=["a", "b"],
        n=[1, 2],
        label=["x", None],
        v=pa.array([[1.0, 2.0], None], pa.list_(pa.float32())),
    )
    store.define_fields(source.id, [("tagged", FieldType.STRING, ("one", "two"))])
    with store.dialect.read() as session:
        joined = store._catalog_record(session, source.id)
        assert joined == store._datasource(session, source.id)
        assert [f.name for f in joined.fields] == ["n", "label", "v", "tagged"]
        with pytest.raises(NotFound, match="datasource 987654 not found"):
            store._catalog_record(session, 987654)
