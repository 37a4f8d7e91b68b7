"""Flight SQL through the real ADBC driver (adbc_driver_flightsql's DBAPI) against real services."""

from __future__ import annotations

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import duckdb
import pyarrow as pa
import pyarrow.flight as fl
import pytest

from thresher.flight_sql_protocol import flight_sql_pb2 as fsql
from thresher.services.flight.sql.protocol import pack
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as mpb

ROWS = pa.table(
    {
        "path": ["a.png", "b.png", "c.png", "d.png"],
        "label": ["cat", "dog", "cat", None],
        "score": [0.1, 0.5, 0.9, 0.7],
        "episode": [1, 2, 3, 4],
    }
)


@pytest.fixture
def world(local_services, client, namespace):
    """A datasource with ROWS and a saved dataset of its cats, in a fresh namespace."""
    stub = client.metadata
    source = stub.CreateDatasource(
        mpb.CreateDatasourceRequest(namespace=namespace, name="images", source_uri="file:///nowhere")
    ).datasource
    client.upsert_table(source.id, ROWS, "path", create_missing=True)
    cats = common_pb2.Query(
        datasource_id=source.id,
        filter=common_pb2.Filter(
            comparison=common_pb2.Comparison(
                field="label", op=common_pb2.COMPARISON_OPERATOR_EQ, value=common_pb2.Value(string_value="cat")
            )
        ),
    )
    stub.SaveDataset(mpb.SaveDatasetRequest(namespace=namespace, name="cats", query=cats))
    return namespace


@pytest.fixture
def connection(local_services):
    # autocommit: Thresher has no transactions (every statement reads), so there is nothing to turn off.
    with flightsql.connect(f"grpc://{local_services.flight_address}", autocommit=True) as conn:
        yield conn


def _sql(connection, sql: str, parameters=None) -> pa.Table:
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetch_arrow_table()


def test_select_with_where_on_metadata_fields_into_arrow_pandas_and_duckdb(world, connection):
    table = _sql(
        connection,
        f"SELECT path, label, score FROM \"{world}\".images WHERE label = 'cat' AND score > 0.05 ORDER BY path",
    )
    assert table.to_pylist() == [
        {"path": "a.png", "label": "cat", "score": 0.1},
        {"path": "c.png", "label": "cat", "score": 0.9},
    ]
    assert table.schema.field("score").type == pa.float64()
    frame = table.to_pandas()
    assert list(frame["path"]) == ["a.png", "c.png"]
    arrow_table = table  # noqa: F841 - DuckDB finds it by name
    assert duckdb.sql("SELECT max(score) FROM arrow_table").fetchall() == [(0.9,)]


def test_every_field_with_its_arrow_type_and_saved_datasets_as_tables(world, connection):
    table = _sql(connection, f'SELECT * FROM thresher."{world}".images ORDER BY path')
    assert table.column_names == ["path", "datapoint_id", "label", "score", "episode"]
    assert table.schema.field("episode").type == pa.int64()
    assert table.num_rows == 4
    cats = _sql(connection, f'SELECT path FROM "{world}".cats ORDER BY path')
    assert cats.column("path").to_pylist() == ["a.png", "c.png"]


def test_a_bound_parameter(world, connection):
    table = _sql(connection, f'SELECT path FROM "{world}".images WHERE episode >= ? ORDER BY path', (3,))
    assert table.column("path").to_pylist() == ["c.png", "d.png"]


def test_catalog_listing_and_table_schema(world, connection):
    objects = connection.adbc_get_objects(db_schema_filter=world).read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["thresher"]
    (schema,) = objects[0]["catalog_db_schemas"]
    assert schema["db_schema_name"] == world
    tables = {t["table_name"]: t for t in schema["db_schema_tables"]}
    assert {name: t["table_type"] for name, t in tables.items()} == {"images": "TABLE", "cats": "VIEW"}
    assert [c["column_name"] for c in tables["images"]["table_columns"]] == [
        "path",
        "datapoint_id",
        "label",
        "score",
        "episode",
    ]
    table_schema = connection.adbc_get_table_schema("images", db_schema_filter=world)
    assert table_schema.field("label").type == pa.string() and table_schema.field("score").type == pa.float64()
    assert set(connection.adbc_get_table_types()) == {"TABLE", "VIEW"}


def test_writes_are_refused(world, connection):
    for statement in (
        f"INSERT INTO \"{world}\".images (path) VALUES ('x')",
        f'DROP VIEW "{world}".images',
        "CREATE TABLE t AS SELECT 1",
        "COPY (SELECT 1) TO '/tmp/thresher-sql-copy.csv'",
    ):
        with pytest.raises(adbc_driver_manager.Error, match="only read-only queries"):
            _sql(connection, statement)
    assert _sql(connection, f'SELECT count(*) AS n FROM "{world}".images').to_pylist() == [{"n": 4}]


def test_the_file_system_and_the_stores_own_tables_are_out_of_reach(world, connection):
    with pytest.raises(adbc_driver_manager.Error, match="file system operations are disabled"):
        _sql(connection, "SELECT * FROM read_text('/etc/hostname')")
    with pytest.raises(adbc_driver_manager.Error, match="does not exist"):
        _sql(connection, "SELECT * FROM datasources")


def test_unsupported_commands_answer_unimplemented(local_services):
    with fl.connect(f"grpc://{local_services.flight_address}") as client:
        update = fl.FlightDescriptor.for_command(pack(fsql.CommandStatementUpdate(query="DELETE FROM x")))
        # pyarrow raises NotImplementedError for the UNIMPLEMENTED status, the code ADBC falls back on.
        with pytest.raises(NotImplementedError, match="read-only"):
            client.get_flight_info(update)
        with pytest.raises(NotImplementedError):
            list(client.do_action(fl.Action("BeginTransaction", b"")))
