"""Fixtures for client tests that run against in-process fakes of the services."""

import pytest

from thresher.core.types import FieldType

from .fakes import FakeServices

FIELDS = {
    "label": FieldType.STRING,
    "size": FieldType.INT,
    "score": FieldType.FLOAT,
    "flag": FieldType.BOOL,
    "taken": FieldType.DATETIME,
    "thumb": FieldType.BLOB,
}


@pytest.fixture
def fakes():
    services = FakeServices(FIELDS)
    yield services
    services.close()


@pytest.fixture
def ds(fakes):
    """A view of the fake datasource, whose fields are FIELDS."""
    return fakes.datasource()


@pytest.fixture
def make_datasource(client, namespace, tmp_path):
    """Creates a folder holding ``files`` (path → bytes) and a scanned datasource over it."""
    from thresher import datasources

    def make(files: dict[str, bytes], name: str = "ds"):
        folder = tmp_path / name
        for path, content in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
        folder.mkdir(exist_ok=True)
        ds = datasources.get_or_create(namespace, name, folder, connection=client)
        return ds.wait_until_ready(timeout=60, progress=False)

    return make
