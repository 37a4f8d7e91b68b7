"""SQL run by the store itself (DuckDB and PostgreSQL): the same answers as the sandbox, and the same refusals."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pytest

from thresher.services.metadata.domain_errors import InvalidArgument
from thresher.services.metadata.sql.engine import SqlEngine
from thresher.v1 import common_pb2

ROWS = 60
START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def world(metadata_server):
    """Two datasources and a saved dataset in one namespace, and a datasource in a namespace nobody may read."""
    _, store = metadata_server
    namespace, hidden = f"sql/store-{os.getpid()}", f"sql/hidden-{os.getpid()}"
    items = store.create_datasource(namespace, "items", "file:///nowhere", "")
    store.upsert(
        items.id,
        pa.table(
            {
                "path": [f"p/{i:03d}" for i in range(ROWS)],
                "n": pa.array([i if i % 7 else None for i in range(ROWS)], pa.int64()),
                "score": pa.array([i / ROWS if i % 5 else None for i in range(ROWS)], pa.float64()),
                "label": [["cat", "dog", "catfish", None, "Cat_1"][i % 5] for i in range(ROWS)],
                "flag": [i % 3 == 0 for i in range(ROWS)],
                "seen": pa.array(
                    [START + dt.timedelta(minutes=i) if i % 4 else None for i in range(ROWS)],
                    pa.timestamp("us", tz="UTC"),
                ),
                "raw": pa.array([bytes([i % 3]) * 3 for i in range(ROWS)], pa.binary()),
            }
        ),
        "path",
        "tester",
        create_missing=True,
    )
    store.delete_datapoints(items.id, ["p/059"], "tester")  # a deleted datapoint is no row
    tags = store.create_datasource(namespace, "Tags", "file:///nowhere", "")
    store.upsert(
        tags.id,
        pa.table(
            {
                "path": [f"p/{i:03d}" for i in range(0, ROWS, 4)],
                "tag": [["a", "b", None][i % 3] for i in range(0, ROWS, 4)],
            }
        ),
        "path",
        "tester",
        create_missing=True,
    )
    cats = common_pb2.Query(
        datasource_id=items.id,
        filter=common_pb2.Filter(
            comparison=common_pb2.Comparison(
                field="label", op=common_pb2.COMPARISON_OPERATOR_EQ, value=common_pb2.Value(string_value="cat")
            )
        ),
    )
    cats.select.add(field="n")
    store.save_dataset(namespace, "cats", items.id, cats.SerializeToString())
    # A dataset named like a datasource is hidden by it: "items" stays the datasource's 59 rows.
    store.save_dataset(namespace, "items", items.id, cats.SerializeToString())
    secret = store.create_datasource(hidden, "items", "file:///nowhere", "")
    store.upsert(secret.id, pa.table({"path": ["s"], "n": [1]}), "path", "tester", create_missing=True)
    return SqlEngine(store), namespace, hidden


def _visible(namespace: str) -> bool:
    return "hidden" not in namespace


def _run(engine: SqlEngine, sql: str, parameters=()) -> pa.Table:
    schema, batches = engine.execute(sql, list(parameters), _visible)
    return pa.Table.from_batches(list(batches), schema)


T = '"{ns}".items'
QUERIES = [
    ("SELECT * FROM {t} ORDER BY path", ()),
    ("SELECT path, n, label FROM {t} WHERE n > 10 AND score < 0.9 AND starts_with(label, 'cat') ORDER BY path", ()),
    (
        "SELECT label, count(*) AS k, count(n) AS with_n, sum(n) AS s, avg(score) AS a, min(path), max(score) "
        "FROM {t} GROUP BY label ORDER BY label NULLS FIRST",
        (),
    ),
    ("SELECT path, score FROM {t} ORDER BY score DESC, path LIMIT 7 OFFSET 2", ()),
    ("SELECT path FROM {t} WHERE n IS NULL OR label IS NULL ORDER BY 1", ()),
    (
        "SELECT path, n <> 3 AS ne, n IN (1, 2, NULL) AS in_null, n NOT IN (1, NULL) AS not_in_null, "
        "coalesce(label, 'none') AS l, n / 4 AS q, -n + 2 * n - 1 AS m FROM {t} ORDER BY path",
        (),
    ),
    (
        'SELECT i.path, i.label, t.tag FROM {t} AS i JOIN "{ns}".tags t ON t.path = i.path '
        "WHERE t.tag IS NOT NULL ORDER BY i.path",
        (),
    ),
    ('SELECT i.path, tag FROM {t} i LEFT JOIN "{ns}".TAGS USING (path) ORDER BY i.path DESC LIMIT 12', ()),
    (
        'SELECT tag, count(*) AS k FROM "{ns}".tags RIGHT JOIN {t} USING (path) GROUP BY tag '
        "HAVING count(*) > 1 ORDER BY tag",
        (),
    ),
    ("WITH big AS (SELECT path, n FROM {t} WHERE n > $1) SELECT count(*) AS k, sum(n) AS s FROM big", (40,)),
    (
        "SELECT path FROM {t} WHERE label LIKE 'cat%' AND path NOT LIKE '%0' AND contains(label, 'fish') = ? "
        "ORDER BY path",
        (False,),
    ),
    (
        "SELECT path, CASE WHEN score > 0.5 THEN 'high' WHEN score IS NULL THEN NULL ELSE 'low' END AS band, "
        "CAST(n AS DOUBLE) AS d, CAST(score * 100 AS BIGINT) AS pct, upper(label) AS u, length(label) AS len "
        "FROM {t} WHERE flag ORDER BY path",
        (),
    ),
    (
        'SELECT path FROM {t} WHERE n BETWEEN ? AND ? AND EXISTS (SELECT 1 FROM "{ns}".tags x WHERE x.path = path) '
        "ORDER BY path",
        (8, 30),
    ),
    (
        'SELECT path, n FROM {t} WHERE n > (SELECT avg(n) FROM {t}) AND path IN (SELECT path FROM "{ns}".tags) '
        "ORDER BY path",
        (),
    ),
    ("SELECT DISTINCT label FROM thresher.{t} ORDER BY label DESC", ()),
    ('SELECT path, n FROM "{ns}".cats ORDER BY n DESC NULLS FIRST, path', ()),
    (
        "SELECT count(DISTINCT label) AS labels, count(*) FILTER (WHERE flag) AS flagged, "
        "sum(n) FILTER (WHERE label = ?) AS dogs FROM {t}",
        ("dog",),
    ),
    ("SELECT label IS DISTINCT FROM 'cat' AS d, count(*) AS k FROM {t} GROUP BY 1 ORDER BY 1", ()),
    ("SELECT 1 AS one, 'x' || 'y' AS xy", ()),
    (
        "SELECT path, seen, raw FROM {t} WHERE seen >= CAST('2024-05-01 00:30:00+00' AS TIMESTAMPTZ) AND seen < ? "
        "ORDER BY seen DESC",
        (START + dt.timedelta(minutes=50),),
    ),
    ("SELECT raw, count(*) AS k, min(seen) AS first FROM {t} GROUP BY raw ORDER BY raw", ()),
]


@pytest.mark.parametrize("sql, parameters", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_the_store_answers_as_the_sandbox_does(world, monkeypatch, sql, parameters):
    """Each statement runs in the store (on each engine) with the answer, names and types of the sandbox."""
    engine, namespace, _ = world
    sql = sql.format(t=T.format(ns=namespace), ns=namespace)
    assert engine.execute_in_store(sql, list(parameters), _visible) is not None, "the store did not run it"
    in_store = _run(engine, sql, parameters)
    with monkeypatch.context() as patch:
        patch.setattr(SqlEngine, "execute_in_store", lambda *args: None)
        patch.setattr(SqlEngine, "_rewritten", lambda *args: None)
        in_sandbox = _run(engine, sql, parameters)
        described_in_sandbox = engine.describe(sql, list(parameters), _visible)
    assert in_store.schema == in_sandbox.schema == described_in_sandbox
    assert engine.describe(sql, list(parameters), _visible) == described_in_sandbox
    assert in_store.to_pylist() == in_sandbox.to_pylist()


def test_a_few_answers_in_full(world):
    engine, namespace, _ = world
    table = T.format(ns=namespace)
    assert _run(engine, f"SELECT count(*) AS k, count(n) AS n FROM {table}").to_pylist() == [{"k": 59, "n": 50}]
    assert _run(engine, f"SELECT path FROM {table} ORDER BY n DESC LIMIT 2").column("path").to_pylist() == [
        "p/058",
        "p/057",
    ]
    assert _run(engine, f"SELECT path FROM {table} WHERE n <> 3 AND path < 'p/002' ORDER BY path").column(
        "path"
    ).to_pylist() == ["p/001"]  # a missing n is neither equal nor unequal to 3


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM {t} USING SAMPLE 5 ROWS",  # a sample
        "SELECT list_value(n, 1) AS l FROM {t} ORDER BY path",  # a function not on the allowlist
        "SELECT path FROM {t} UNION ALL SELECT path FROM {t}",  # a set operation
    ],
)
def test_what_the_store_cannot_run_still_runs_in_the_sandbox(world, sql):
    engine, namespace, _ = world
    sql = sql.format(t=T.format(ns=namespace))
    assert engine.execute_in_store(sql, [], _visible) is None
    assert _run(engine, sql).num_rows > 0


@pytest.mark.parametrize(
    "sql, message",
    [
        ("INSERT INTO {t} (path) VALUES ('x')", "only read-only queries"),
        ("DELETE FROM {t}", "only read-only queries"),
        ("CREATE TABLE x AS SELECT 1", "only read-only queries"),
        ("COPY (SELECT 1) TO '/tmp/thresher-sql-copy.csv'", "only read-only queries"),
        ("ATTACH '/tmp/thresher-other.db' AS other", "only read-only queries"),
        ("SELECT 1; SELECT 2", "exactly one SQL statement"),
        ("SELECT * FROM read_csv('/etc/hostname')", "file system operations are disabled"),
        ("SELECT * FROM read_parquet('/etc/hostname')", "file system operations are disabled"),
        ('SELECT * FROM "{hidden}".items', "does not exist"),
        ('SELECT * FROM {t} JOIN "{hidden}".items USING (path)', "does not exist"),
        ("SELECT * FROM datasources", "does not exist"),
        ("SELECT * FROM cur_1", "does not exist"),
        ("SELECT pg_read_file('/etc/hostname')", "pg_read_file"),
        ("SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", "dblink"),
        ("SELECT lo_import('/etc/hostname')", "lo_import"),
    ],
)
def test_refusals_hold_whichever_engine_runs_sql(world, sql, message):
    engine, namespace, hidden = world
    sql = sql.format(t=T.format(ns=namespace), hidden=hidden)
    with pytest.raises(InvalidArgument, match=message):
        _run(engine, sql)


def test_the_store_runs_sql_in_a_read_only_transaction(world):
    engine, _, _ = world
    store = engine._store
    with pytest.raises(Exception, match="(?i)read.only"):
        schema, batches = store.stream_read_only("CREATE TABLE thresher_sql_probe AS SELECT 1 AS a", [], 100)
        list(batches)


def test_a_dataset_saved_as_of_an_instant_reads_that_instant_in_the_store_and_the_sandbox(metadata_server):
    # SQL reads a datasource's current rows; a saved dataset's as_of is how SQL reads the past. The
    # store's rewrite must fold the log as the sandbox's feed (the store's own query) does.
    _, store = metadata_server
    namespace = f"sql/as-of-{os.getpid()}"
    source = store.create_datasource(namespace, "things", "file:///nowhere", "")
    store.upsert(source.id, pa.table({"path": ["a", "b", "c"], "n": [1, 2, 3]}), "path", "tester", create_missing=True)
    then = dt.datetime.now(dt.UTC)
    while dt.datetime.now(dt.UTC) <= then:  # the next write's instant is strictly later
        pass
    store.upsert(source.id, pa.table({"path": ["a", "d"], "n": [10, 4]}), "path", "tester", create_missing=True)
    store.delete_datapoints(source.id, ["b"], "tester")
    past = common_pb2.Query(datasource_id=source.id)
    past.as_of.FromDatetime(then)
    store.save_dataset(namespace, "then", source.id, past.SerializeToString())
    engine = SqlEngine(store)
    sql = f'SELECT path, n FROM "{namespace}".then ORDER BY path'
    expected = [{"path": "a", "n": 1}, {"path": "b", "n": 2}, {"path": "c", "n": 3}]
    assert engine.execute_in_store(sql, [], _visible) is not None  # run by the store, not the sandbox
    assert _run(engine, sql).to_pylist() == expected
    now = _run(engine, f'SELECT path, n FROM "{namespace}".things ORDER BY path').to_pylist()
    assert now == [{"path": "a", "n": 10}, {"path": "c", "n": 3}, {"path": "d", "n": 4}]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SqlEngine, "execute_in_store", lambda *args: None)
        patch.setattr(SqlEngine, "_rewritten", lambda *args: None)
        assert _run(engine, sql).to_pylist() == expected
