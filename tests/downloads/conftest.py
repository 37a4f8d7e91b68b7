"""Datasources over local folders, S3 prefixes and git paths, on the suite's services."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

import thresher
from thresher.connection import Connection
from thresher.core.storage import open_storage
from thresher.datasource import Datasource
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as ms

_names = itertools.count()


@pytest.fixture
def conn(local_services) -> Connection:
    """A connection to the suite's services; bucket downloaders are switched off again afterwards."""
    connection = local_services.connect()
    yield connection
    thresher.disable_bucket_downloaders()


@pytest.fixture
def local_source(conn, namespace, tmp_path):
    """Makes a scanned datasource over a new folder holding ``files`` (path -> bytes)."""

    def make(files_: dict[str, bytes]) -> Datasource:
        folder = tmp_path / f"src{next(_names)}"
        folder.mkdir()
        for path, content in files_.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
        ds = thresher.datasources.get_or_create(namespace, folder.name, folder, connection=conn)
        return ds.wait_until_ready(timeout=60, progress=False)

    return make


def indexed(
    conn: Connection, namespace: str, source_uri: str, paths: list[str], revision: str = "", extra: dict | None = None
) -> Datasource:
    """A datasource over ``source_uri`` whose datapoints are ``paths``, written directly and marked ready
    (these tests are about reading files, not about scanning them)."""
    name = f"ds{next(_names)}"
    proto = conn.call_metadata(
        "CreateDatasource",
        ms.CreateDatasourceRequest(namespace=namespace, name=name, source_uri=source_uri, revision=revision),
    ).datasource
    proto = conn.call_metadata(
        "UpdateScanStatus",
        ms.UpdateScanStatusRequest(
            datasource_id=proto.id, scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_READY)
        ),
    ).datasource
    ds = Datasource(conn, proto)
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": paths, **(extra or {})}), create_missing=True)
    return ds


@pytest.fixture
def s3_source(conn, namespace, s3_bucket):
    """Writes ``files`` under ``s3://<bucket>/<prefix>`` and indexes them as a datasource."""

    def make(files_: dict[str, bytes], prefix: str = "raw/images") -> Datasource:
        storage = open_storage(f"s3://{s3_bucket}/{prefix}")
        for path, content in files_.items():
            storage.write(path, content)
        return indexed(conn, namespace, f"s3://{s3_bucket}/{prefix}", list(files_))

    return make
