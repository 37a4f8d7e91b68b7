"""Datasources, scans, saved datasets and the default connection, end to end."""

import pathlib
import warnings

import pytest

import thresher
from thresher import datasets, datasources
from thresher.core.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    ScanFailedError,
    ScanInProgressWarning,
)
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as ms

FILES = {"a.png": b"a", "b.png": b"bb", "sub/c.txt": b"ccc"}


def test_create_scans_the_folder_and_the_path_becomes_a_file_uri(make_datasource, tmp_path):
    ds = make_datasource(FILES)
    assert ds.source == (tmp_path / "ds").resolve().as_uri()
    assert ds.scan_status.state == "ready" and ds.scan_status.files_seen == len(FILES)
    assert set(ds.all().paths) == set(FILES)
    assert ds.fields["size"] is thresher.FieldType.INT  # the scanner's automatic metadata


def test_get_or_create_is_idempotent_and_lookups(make_datasource, client, namespace, tmp_path):
    ds = make_datasource(FILES)
    again = datasources.get_or_create(namespace, "ds", tmp_path / "ds", connection=client)
    assert again.id == ds.id and again.scan_status.state == "ready"
    assert datasources.get_datasource(namespace, "ds", connection=client).id == ds.id
    assert datasources.get_datasource(id=ds.id, connection=client).name == "ds"
    with pytest.raises(AlreadyExistsError, match="ds"):
        datasources.create_datasource(namespace, "ds", tmp_path, connection=client)
    with pytest.raises(NotFoundError):
        datasources.get_datasource(namespace, "nope", connection=client)
    with pytest.raises(InvalidArgumentError, match="namespace and a name, or an id"):
        datasources.get_datasource(namespace)


def test_get_datasources_lists_the_namespace(make_datasource, client, namespace):
    first = make_datasource({"x": b"1"}, name="one")
    second = make_datasource({"y": b"2"}, name="two")
    listed = datasources.get_datasources(namespace, connection=client)
    assert sorted((d.name, d.id) for d in listed) == [("one", first.id), ("two", second.id)]
    assert datasources.get_datasources(namespace + "-empty", connection=client) == []


def test_delete_source(make_datasource, client):
    ds = make_datasource(FILES)
    ds.delete_source()
    with pytest.raises(NotFoundError):
        datasources.get_datasource(id=ds.id, connection=client)


def test_rescan_sees_new_files(make_datasource, tmp_path):
    ds = make_datasource(FILES)
    (tmp_path / "ds" / "new.png").write_bytes(b"new")
    ds.rescan()
    ds.wait_until_ready(timeout=60, progress=False)
    assert "new.png" in set(ds.all().paths)


def test_a_failed_scan_raises_with_the_reason(client, namespace, tmp_path):
    ds = datasources.create_datasource(namespace, "missing", tmp_path / "does-not-exist", connection=client)
    with pytest.raises(ScanFailedError, match="missing") as raised:
        ds.wait_until_ready(timeout=60, progress=False)
    assert ds.scan_status.failure_reason in str(raised.value)


def test_wait_until_ready_shows_progress(make_datasource, capsys):
    ds = make_datasource(FILES)
    ds.wait_until_ready(timeout=10)
    assert "files" in capsys.readouterr().err


def test_a_query_while_scanning_warns_and_returns_what_is_indexed(client, namespace):
    # Created without starting a scan, then marked as scanning, as the scanner does.
    proto = client.call_metadata(
        "CreateDatasource", ms.CreateDatasourceRequest(namespace=namespace, name="busy", source_uri="file:///nowhere")
    ).datasource
    client.call_metadata(
        "UpdateScanStatus",
        ms.UpdateScanStatusRequest(
            datasource_id=proto.id, scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_SCANNING, files_seen=1)
        ),
    )
    ds = datasources.get_datasource(id=proto.id, connection=client)
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("seen.png", {"n": 1})
    with pytest.warns(ScanInProgressWarning, match="still being scanned"):
        result = ds.all()
    assert result.paths == ["seen.png"] and result.scan_state == "scanning"
    with pytest.warns(ScanInProgressWarning):
        ds.head(1)
    client.call_metadata(
        "UpdateScanStatus",
        ms.UpdateScanStatusRequest(
            datasource_id=proto.id, scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_READY)
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.all()


def test_datasets_save_get_list_delete(make_datasource, client, namespace):
    ds = make_datasource(FILES)
    pngs = ds[ds["path"].endswith(".png")].select("size").order_by(ds["size"].desc()).limit(5)
    saved = pngs.save_dataset("pngs")
    assert saved.dataset_name == "pngs"
    ds.save_dataset("everything")
    loaded = datasets.get_dataset(namespace, "pngs", connection=client)
    assert loaded.dataset_name == "pngs" and loaded.id == ds.id
    assert loaded.query_proto() == pngs.query_proto()
    assert loaded.all().paths == ["b.png", "a.png"]
    assert list(loaded.all().dataframe.columns) == ["path", "datapoint_id", "size"]
    narrower = loaded[ds["size"] < 2]  # a saved filter combines like any other
    assert narrower.all().paths == ["a.png"]
    with pytest.raises(AlreadyExistsError, match="pngs"):
        ds.save_dataset("pngs")
    names = sorted(d.dataset_name for d in datasets.get_datasets(namespace, connection=client))
    assert names == ["everything", "pngs"]
    datasets.delete_dataset(namespace, "pngs", connection=client)
    with pytest.raises(NotFoundError):
        datasets.get_dataset(namespace, "pngs", connection=client)
    assert [d.dataset_name for d in datasets.get_datasets(namespace, connection=client)] == ["everything"]


def test_module_functions_use_the_default_connection(local_services, monkeypatch, make_datasource, namespace):
    ds = make_datasource(FILES)
    thresher.set_default_connection(None)
    for key, value in local_services.environment().items():
        monkeypatch.setenv(key, value)
    assert thresher.get_datasource(namespace, "ds").id == ds.id
    connection = thresher.default_connection()
    assert connection.metadata_address == local_services.metadata_address
    assert thresher.get_datasource(namespace, "ds").connection is connection
    explicit = thresher.connect(
        local_services.metadata_address, local_services.flight_address, local_services.scanner_address
    )
    assert thresher.default_connection() is explicit
    ds.save_dataset("via-default")
    assert thresher.get_dataset(namespace, "via-default").dataset_name == "via-default"
    thresher.delete_dataset(namespace, "via-default")
    assert thresher.get_datasets(namespace) == []


def test_download_urls_point_at_the_files(make_datasource):
    ds = make_datasource({"dir with space/x.png": b"x"})
    point = ds.get_datapoint("dir with space/x.png")
    assert point.download_url.startswith("file:///")
    from urllib.parse import unquote

    assert pathlib.Path(unquote(point.download_url[len("file://") :])).read_bytes() == b"x"
