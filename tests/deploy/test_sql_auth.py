"""Flight SQL with tokens: ADBC's username/password (Basic handshake) and bearer header, namespace scoping."""

from __future__ import annotations

import os

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pyarrow as pa
import pytest

from thresher.core.transport import open_channel
from thresher.v1 import metadata_service_pb2 as pb
from thresher.v1 import metadata_service_pb2_grpc

NAMESPACE = f"team/sql-{os.getpid()}"
OTHER = f"other/sql-{os.getpid()}"


@pytest.fixture(scope="module")
def tables(secured):
    """A datasource in NAMESPACE (alice's) and one in OTHER (bob's), made by the admin."""
    channel = open_channel(secured.metadata_address)
    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    admin = (("authorization", "Bearer admin-token"),)
    for namespace in (NAMESPACE, OTHER):
        stub.CreateDatasource(
            pb.CreateDatasourceRequest(namespace=namespace, name="ds", source_uri="file:///x"), metadata=admin
        )
    with secured.connect(token="admin-token") as connection:
        source = connection.metadata.GetDatasource(
            pb.GetDatasourceRequest(namespace=NAMESPACE, name="ds"), metadata=admin
        ).datasource
        connection.upsert_table(source.id, pa.table({"path": ["a", "b"], "n": [1, 2]}), "path", create_missing=True)
    yield
    channel.close()


def _connect(secured, **db_kwargs):
    return flightsql.connect(f"grpc://{secured.flight_address}", db_kwargs=db_kwargs, autocommit=True)


def _rows(connection, sql: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetch_arrow_table().to_pylist()


def test_username_and_token_as_password_log_in_through_the_basic_handshake(secured, tables):
    with _connect(secured, username="alice", password="alice-token") as connection:
        assert _rows(connection, f'SELECT path, n FROM "{NAMESPACE}".ds ORDER BY path') == [
            {"path": "a", "n": 1},
            {"path": "b", "n": 2},
        ]


def test_a_bearer_header_works_and_a_wrong_token_is_refused(secured, tables):
    header = adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value
    with _connect(secured, **{header: "Bearer alice-token"}) as connection:
        assert _rows(connection, f'SELECT count(*) AS n FROM "{NAMESPACE}".ds') == [{"n": 2}]
    with pytest.raises(adbc_driver_manager.Error, match="UNAUTHENTICATED|Unauthenticated"):
        with _connect(secured, **{header: "Bearer not-a-token"}) as connection:
            _rows(connection, "SELECT 1")


def test_namespaces_the_token_may_not_read_are_invisible_and_unreadable(secured, tables):
    with _connect(secured, username="alice", password="alice-token") as connection:
        with pytest.raises(adbc_driver_manager.Error, match="does not exist"):
            _rows(connection, f'SELECT * FROM "{OTHER}".ds')
        schemas = [
            s["db_schema_name"]
            for c in connection.adbc_get_objects(depth="db_schemas").read_all().to_pylist()
            for s in c["catalog_db_schemas"]
        ]
        assert NAMESPACE in schemas and OTHER not in schemas
