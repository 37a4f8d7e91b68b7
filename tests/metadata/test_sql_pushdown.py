"""The sandbox's WHERE pushdown (for statements the store cannot run whole): which conditions are pushed,
and results identical to the sandbox alone."""

import duckdb
import pyarrow as pa
import pytest

from thresher.core.types import FieldType
from thresher.services.metadata.sql import engine as sql_engine
from thresher.services.metadata.sql.engine import SqlEngine
from thresher.services.metadata.sql.pushdown import pushed_filter
from thresher.v1 import common_pb2

COLUMNS = {
    "path": FieldType.STRING,
    "n": FieldType.INT,
    "score": FieldType.FLOAT,
    "label": FieldType.STRING,
    "flag": FieldType.BOOL,
}
_Op = common_pb2.ComparisonOperator


def pushed(sql: str, parameters=()):
    return pushed_filter(duckdb.connect(), sql, COLUMNS, parameters)


def comparisons(found: common_pb2.Filter) -> list[tuple[str, int, object]]:
    parts = found.all_of.filters if found.WhichOneof("node") == "all_of" else [found]
    out = []
    for part in parts:
        c = part.comparison
        out.append((c.field, c.op, getattr(c.value, c.value.WhichOneof("kind"))))
    return out


def test_simple_conjuncts_are_pushed_with_constants_and_parameters():
    found = pushed(
        "SELECT * FROM \"a/b\".t WHERE n > 5 AND 0.5 > score AND starts_with(label, 'ca') AND flag = ? "
        "AND t.path <> $2",
        [True, "x.png"],
    )
    assert comparisons(found) == [
        ("n", _Op.COMPARISON_OPERATOR_GT, 5),
        ("score", _Op.COMPARISON_OPERATOR_LT, 0.5),
        ("label", _Op.COMPARISON_OPERATOR_STARTSWITH, "ca"),
        ("flag", _Op.COMPARISON_OPERATOR_EQ, True),
        ("path", _Op.COMPARISON_OPERATOR_NE, "x.png"),
    ]


def test_only_the_conjuncts_it_understands_are_pushed():
    found = pushed(
        "SELECT * FROM \"a/b\".t WHERE (n > 5 OR n < 2) AND label = 'cat' AND n = 2.5 AND label = 3 "
        "AND lower(label) = 'x' AND flag < true"
    )
    assert comparisons(found) == [("label", _Op.COMPARISON_OPERATOR_EQ, "cat")]


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT * FROM "a/b".t JOIN "a/b".u USING (path) WHERE n > 1',
        'WITH x AS (SELECT * FROM "a/b".t) SELECT * FROM x WHERE n > 1',
        'SELECT * FROM "a/b".t WHERE n > 1 UNION ALL SELECT * FROM "a/b".t',
        'SELECT * FROM "a/b".t WHERE n > (SELECT min(n) FROM "a/b".t)',
        'SELECT * FROM (SELECT * FROM "a/b".t) WHERE n > 1',
        'SELECT * FROM "a/b".t USING SAMPLE 10 WHERE n > 1',
        'SELECT * FROM "a/b".t WHERE n = ?',  # the parameter is not bound
        'SELECT * FROM "a/b".t',
    ],
)
def test_nothing_is_pushed_where_it_could_change_the_answer(sql):
    assert pushed(sql) is None


@pytest.fixture(scope="module")
def engine_and_table(metadata_server):
    _, store = metadata_server
    namespace = f"sql/push{id(store) % 100000}"
    record = store.create_datasource(namespace, "items", "file:///nowhere", "")
    rows = 200
    store.upsert(
        record.id,
        pa.table(
            {
                "path": [f"p/{i:04d}" for i in range(rows)],
                "n": pa.array([i if i % 7 else None for i in range(rows)], pa.int64()),
                "score": [i / rows for i in range(rows)],
                "label": [["cat", "dog", "catfish", None][i % 4] for i in range(rows)],
            }
        ),
        "path",
        "tester",
        create_missing=True,
    )
    return SqlEngine(store), f'"{namespace}".items'


@pytest.mark.parametrize(
    "where, parameters",
    [
        ("n > 50 AND score < 0.9", []),
        ("label = 'cat' AND n <> 8", []),
        ("starts_with(label, 'cat') AND n >= ?", [100]),
        ("contains(label, 'fish') OR n < 3", []),
        ("path >= 'p/0150' AND score > ?", [0.2]),
    ],
)
def test_pushed_results_equal_the_sandbox_alone(engine_and_table, monkeypatch, where, parameters):
    engine, table = engine_and_table

    def run(sql):
        schema, batches = engine.execute(sql, parameters, lambda _namespace: True)
        return pa.Table.from_batches(list(batches), schema)

    statements = [
        f"SELECT path, n, label FROM {table} WHERE {where} ORDER BY path",
        f"SELECT label, count(*) AS k, sum(n) AS s FROM {table} WHERE {where} GROUP BY label ORDER BY label",
    ]
    # The sandbox path (statements the store cannot run itself go there), with and without the pushed filter.
    monkeypatch.setattr(SqlEngine, "execute_in_store", lambda *args: None)
    pushed_answers = [run(sql) for sql in statements]
    monkeypatch.setattr(sql_engine, "pushed_filter", lambda *args: None)
    assert [run(sql) for sql in statements] == pushed_answers
    assert pushed_answers[0].num_rows > 0


def test_the_store_reads_only_the_rows_that_can_qualify(engine_and_table, monkeypatch):
    engine, table = engine_and_table
    store = engine._store
    read_rows = []
    original = store.query

    def counting(query, max_batch_rows=0):
        schema, batches = original(query, max_batch_rows)
        batches = list(batches)
        read_rows.append(sum(b.num_rows for b in batches))
        return schema, iter(batches)

    monkeypatch.setattr(store, "query", counting)
    monkeypatch.setattr(SqlEngine, "execute_in_store", lambda *args: None)
    schema, batches = engine.execute(f"SELECT path FROM {table} WHERE n > 190", [], lambda _namespace: True)
    assert pa.Table.from_batches(list(batches), schema).num_rows == 8  # 191..199 but 196
    assert read_rows == [8]
