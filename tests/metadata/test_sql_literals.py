"""Values rendered as SQL literals read back as exactly themselves, in DuckDB and in PostgreSQL.

The strings are chosen to break naive quoting: quotes, backslashes, ``$$``, comments, statement
separators, ``E''`` prefixes and unicode. PostgreSQL is checked with ``standard_conforming_strings``
both on and off, since an escape-string literal must not depend on it.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.core.types import FieldType
from thresher.services.metadata import sql_literals
from thresher.services.metadata.domain_errors import InvalidArgument

# Strings made of pieces that break naive quoting, mixed with any other character but NUL.
PIECES = [
    "'",
    "''",
    "\\",
    "\\'",
    '"',
    "$$",
    "$1",
    "--",
    "/*",
    "*/",
    ";",
    "E'",
    "\n",
    "\r",
    "\t",
    "é",
    "😀",
    "\u2028",
    "{",
    "}",
    ",",
    "NULL",
    " ",
]
NASTY = st.lists(
    st.one_of(st.sampled_from(PIECES), st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
    max_size=12,
).map("".join)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
INTS = st.integers(-(2**63), 2**63 - 1)
TIMES = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def duck():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


@pytest.fixture(scope="module", params=["on", "off"])
def pg(request, postgres_url):
    import adbc_driver_postgresql.dbapi as pg_dbapi

    connection = pg_dbapi.connect(postgres_url)
    cursor = connection.cursor()
    cursor.execute(f"SET standard_conforming_strings = {request.param}")
    cursor.execute("SET TimeZone = 'UTC'")
    yield cursor
    cursor.close()
    connection.close()


def _duck_value(duck, sql: str):
    return duck.execute(f"SELECT {sql} AS v").fetchall()[0][0]


def _pg_value(pg, sql: str):
    pg.execute(f"SELECT {sql} AS v")
    return pg.fetch_arrow_table().column("v")[0].as_py()


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@SETTINGS
@given(text=NASTY)
def test_strings_read_back_unchanged_in_duckdb(duck, text):
    assert _duck_value(duck, sql_literals.literal(text, FieldType.STRING, sql_literals.DUCKDB)) == text
    listed = sql_literals.list_literal([text, "x"], FieldType.STRING, sql_literals.DUCKDB)
    assert _duck_value(duck, listed) == [text, "x"]


@SETTINGS
@given(text=NASTY)
def test_strings_read_back_unchanged_in_postgres(pg, text):
    assert _pg_value(pg, sql_literals.literal(text, FieldType.STRING, sql_literals.POSTGRES)) == text
    listed = sql_literals.list_literal([text, "x"], FieldType.STRING, sql_literals.POSTGRES)
    assert _pg_value(pg, listed) == [text, "x"]


@SETTINGS
@given(number=INTS, real=FLOATS, when=TIMES, flag=st.booleans())
def test_numbers_times_and_bools_read_back_unchanged(duck, pg, number, real, when, flag):
    for engine, read in (
        (sql_literals.DUCKDB, lambda s: _duck_value(duck, s)),
        (sql_literals.POSTGRES, lambda s: _pg_value(pg, s)),
    ):
        assert read(sql_literals.literal(number, FieldType.INT, engine)) == number
        assert _same_float(read(sql_literals.literal(real, FieldType.FLOAT, engine)), real)
        assert read(sql_literals.literal(when, FieldType.DATETIME, engine)) == when
        assert read(sql_literals.literal(flag, FieldType.BOOL, engine)) is flag
        assert read(sql_literals.list_literal([number, 0], FieldType.INT, engine)) == [number, 0]
        assert all(map(_same_float, read(sql_literals.list_literal([real], FieldType.FLOAT, engine)), [real]))
        assert read(sql_literals.list_literal([when], FieldType.DATETIME, engine)) == [when]
        assert read(sql_literals.list_literal([flag], FieldType.BOOL, engine)) == [flag]


def test_a_negative_number_cannot_join_an_operator_before_it(duck):
    assert _duck_value(duck, "1 - " + sql_literals.literal(-1, FieldType.INT, sql_literals.DUCKDB)) == 2


@pytest.mark.parametrize("engine", [sql_literals.DUCKDB, sql_literals.POSTGRES])
def test_nul_and_values_of_the_wrong_type_are_refused(engine):
    with pytest.raises(InvalidArgument, match="NUL"):
        sql_literals.literal("a\x00b", FieldType.STRING, engine)
    with pytest.raises(InvalidArgument, match="NUL"):
        sql_literals.list_literal(["ok", "a\x00"], FieldType.STRING, engine)
    with pytest.raises(InvalidArgument, match="64 bits"):
        sql_literals.literal(2**63, FieldType.INT, engine)
    with pytest.raises(TypeError):
        sql_literals.literal("1; DROP TABLE x", FieldType.INT, engine)
    with pytest.raises(TypeError):
        sql_literals.literal(True, FieldType.INT, engine)
    with pytest.raises(TypeError):
        sql_literals.literal("nan", FieldType.FLOAT, engine)


def test_a_postgres_store_query_binds_nothing_even_as_of_and_with_a_field_at_another_time(postgres_url, tmp_path):
    """PostgreSQL's driver reads a result through COPY only when the statement binds nothing: the
    store's own values in the relation (write ids of ``as_of`` and of a field read at another time)
    are literals too, and the answers stay right."""
    import pyarrow as pa

    from thresher.core.storage.blobs import open_blob_store
    from thresher.services.metadata.store import PostgresStore
    from thresher.v1 import common_pb2

    first, second = dt.datetime(2031, 1, 1, tzinfo=dt.UTC), dt.datetime(2031, 1, 2, tzinfo=dt.UTC)
    now = [first]  # the store's clock, turned by hand
    store = PostgresStore(postgres_url, open_blob_store(home=str(tmp_path)), clock=lambda: now[0])
    streamed = []
    stream = store.dialect.stream
    store.dialect.stream = lambda sql, params, max_rows: (
        streamed.append((sql, list(params))) or stream(sql, params, max_rows)
    )
    try:
        source = store.create_datasource("literals/as-of", f"ds{uuid.uuid4().hex}", "file:///nowhere", "")
        store.upsert(source.id, pa.table({"path": ["a", "b"], "n": [1, 2]}), "path", "tester", create_missing=True)
        now[0] = second
        store.upsert(source.id, pa.table({"path": ["a", "b"], "n": [10, 20]}), "path", "tester")
        query = common_pb2.Query(
            datasource_id=source.id,
            filter=common_pb2.Filter(
                comparison=common_pb2.Comparison(
                    field="n", op=common_pb2.COMPARISON_OPERATOR_GE, value=common_pb2.Value(int_value=2)
                )
            ),
        )
        query.as_of.FromDatetime(first + dt.timedelta(hours=1))  # between the two writes
        query.select.add(field="path")
        timed = query.select.add(field="n", alias="n_now")
        timed.as_of.FromDatetime(second + dt.timedelta(hours=1))
        query.order_by.add(field="path")
        _, batches = store.query(query)
        got = pa.Table.from_batches(list(batches))
        assert got.column("path").to_pylist() == ["b"] and got.column("n_now").to_pylist() == [20]
        assert streamed and all(params == [] and "$" not in sql for sql, params in streamed)
    finally:
        store.close()
