"""A store written by the first layout (every value in log and current table) opens, upgraded, with
the same data, history and earlier states. The fixture was made by that layout's code
(fixtures/make_v1_store.py, run before the change)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import pyarrow as pa
import pytest

from thresher.core.errors import StoreLayoutError
from thresher.core.storage.blobs import open_blob_store
from thresher.services.metadata.store import DuckDBStore
from thresher.services.metadata.store.migrations import LAYOUT_VERSION
from thresher.v1 import common_pb2

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _plain(table: pa.Table) -> list[dict]:
    return [
        {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()} for row in table.to_pylist()
    ]


def _state(store, datasource_id: int, at: str | None) -> list[dict]:
    query = common_pb2.Query(datasource_id=datasource_id)
    if at is not None:
        query.as_of.FromDatetime(dt.datetime.fromisoformat(at))
    schema, batches = store.query(query)
    return _plain(pa.Table.from_batches(list(batches), schema).sort_by("path"))


def test_a_first_layout_store_opens_upgraded_with_the_same_data_and_history(tmp_path):
    with open(os.path.join(FIXTURES, "v1_expected.json")) as source:
        expected = json.load(source)
    path = str(tmp_path / "metadata.duckdb")
    shutil.copy(os.path.join(FIXTURES, "v1_store.duckdb"), path)
    store = DuckDBStore(path, open_blob_store(home=str(tmp_path)))
    try:
        ds_id, other_id = expected["datasource_ids"]
        with store.dialect.read() as session:
            assert session.one("SELECT max(version) FROM store_layout")[0] == LAYOUT_VERSION
        assert [[f.name, f.type.value, list(f.tags)] for f in store.get_datasource(ds_id).fields] == expected["fields"]
        for at, state in zip([None, *expected["instants"]], expected["states"]):
            assert _state(store, ds_id, at) == state
        assert _plain(store.history(ds_id, "a")) == expected["history_a"]
        assert _plain(store.history(ds_id, "b", "label")) == expected["history_b_label"]
        assert _plain(store.changes(ds_id, None, None)) == expected["changes"]
        assert store.find_dataset("fixture/store", "cats").datasource_id == ds_id
        assert store.find_bag_dataset("fixture/store", "bag").uri == "/tmp/bag"
        # Writes go on in the new layout, beside the upgraded history.
        store.upsert(ds_id, pa.table({"path": ["a", "f"], "x": [11, 6]}), "path", "erin", create_missing=True)
        assert [h["x"] for h in store.history(ds_id, "a", "x").to_pylist()] == [1, 10, 11]
        assert _state(store, other_id, None)[0]["flag"] is True
    finally:
        store.close()
    reopened = DuckDBStore(path, open_blob_store(home=str(tmp_path)))
    try:
        paths = {row["path"] for row in _state(reopened, expected["datasource_ids"][0], None)}
        assert paths == {"a", "b", "c", "d", "e", "f"}
    finally:
        reopened.close()


def test_a_first_layout_postgres_store_opens_upgraded_with_the_same_data_and_history(postgres_url, tmp_path):
    import subprocess
    import urllib.parse

    import adbc_driver_postgresql.dbapi as adbc_postgres

    from tests.deploy.postgres import postgres_bin
    from thresher.services.metadata.store import PostgresStore

    with open(os.path.join(FIXTURES, "v1_postgres_expected.json")) as source:
        expected = json.load(source)
    database = "upgrade_from_v1"
    with adbc_postgres.connect(postgres_url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database}")
    url = urllib.parse.urlsplit(postgres_url)
    subprocess.run(
        [
            os.path.join(postgres_bin(), "psql"),
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            url.hostname,
            "-p",
            str(url.port),
            "-U",
            url.username,
            "-d",
            database,
            "-f",
            os.path.join(FIXTURES, "v1_postgres.sql"),
        ],
        check=True,
        capture_output=True,
    )
    store = PostgresStore(url._replace(path=f"/{database}").geturl(), open_blob_store(home=str(tmp_path)))
    try:
        ds_id = expected["datasource_id"]
        assert _state(store, ds_id, None) == [{"datapoint_id": 1, **row} for row in expected["now"]]
        then = [row["path"] for row in _state(store, ds_id, expected["between"])]
        assert then == [row["path"] for row in expected["then"]]
        history = [[r["operation"], r["actor"], r["x"], r["label"]] for r in store.history(ds_id, "a").to_pylist()]
        assert history == expected["history_a"]
        store.upsert(ds_id, pa.table({"path": ["a"], "x": [5]}), "path", "carol")
        assert [r["x"] for r in store.history(ds_id, "a", "x").to_pylist()] == [1, 5]
    finally:
        store.close()


def _stamp_layout(path: str, version: int) -> None:
    import duckdb

    connection = duckdb.connect(path)
    try:
        connection.execute("INSERT INTO store_layout VALUES ($1)", [version])
    finally:
        connection.close()


def _layouts(path: str) -> list[int]:
    import duckdb

    connection = duckdb.connect(path)
    try:
        return [row[0] for row in connection.execute("SELECT version FROM store_layout ORDER BY version").fetchall()]
    finally:
        connection.close()


def test_a_store_from_a_newer_thresher_is_refused_naming_it_and_both_layouts(tmp_path):
    path = str(tmp_path / "metadata.duckdb")
    DuckDBStore(path, open_blob_store(home=str(tmp_path))).close()
    _stamp_layout(path, LAYOUT_VERSION + 1)
    with pytest.raises(StoreLayoutError) as refused:
        DuckDBStore(path, open_blob_store(home=str(tmp_path)))
    message = str(refused.value)
    assert path in message and f"layout {LAYOUT_VERSION + 1}" in message and f"up to {LAYOUT_VERSION}" in message
    assert _layouts(path) == [LAYOUT_VERSION, LAYOUT_VERSION + 1]  # refused before writing anything


def test_thresher_up_on_a_newer_store_is_a_user_error_not_a_crash(monkeypatch, capsys, tmp_path):
    from thresher.cli.app import main

    home = tmp_path / "home"
    path = str(home / "metadata.duckdb")
    DuckDBStore(path, open_blob_store(home=str(home))).close()
    _stamp_layout(path, LAYOUT_VERSION + 1)
    monkeypatch.setenv("THRESHER_HOME", str(home))
    assert main(["up", "--port", "0", "--no-gallery"]) == 2
    err = capsys.readouterr().err
    assert "unexpected" not in err and path in err and "newer Thresher" in err


def test_a_postgres_store_from_a_newer_thresher_is_refused_without_its_password(postgres_url, tmp_path):
    import urllib.parse

    import adbc_driver_postgresql.dbapi as adbc_postgres

    from thresher.services.metadata.store import PostgresStore

    database = "newer_layout"
    with adbc_postgres.connect(postgres_url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database}")
    url = urllib.parse.urlsplit(postgres_url)._replace(path=f"/{database}")
    PostgresStore(url.geturl(), open_blob_store(home=str(tmp_path))).close()
    with adbc_postgres.connect(url.geturl(), autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO store_layout VALUES ($1)", [LAYOUT_VERSION + 1])
    # The password travels in the URL's query, where an operator's DSN may carry it.
    with_password = url._replace(query="password=hunter2-secret").geturl()
    with pytest.raises(StoreLayoutError) as refused:
        PostgresStore(with_password, open_blob_store(home=str(tmp_path)))
    message = str(refused.value)
    assert f"/{database}" in message and f"layout {LAYOUT_VERSION + 1}" in message
    assert "hunter2-secret" not in message
