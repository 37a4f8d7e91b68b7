"""The scanner service against a real metadata service, over gRPC on loopback."""

import datetime as dt
import os
import time

import grpc
import pyarrow as pa
import pytest
from PIL import Image

from thresher.core.arrow_io import read_batch, read_schema
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as mpb
from thresher.v1 import scanner_service_pb2 as spb

from .conftest import create_datasource, scan, wait_for_scan


def _query(metadata, datasource_id: int) -> dict[str, dict]:
    responses = iter(
        metadata.ExecuteQuery(mpb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=datasource_id)))
    )
    schema = read_schema(next(responses).schema)
    table = pa.Table.from_batches([read_batch(r.record_batch, schema) for r in responses], schema)
    return {row["path"]: row for row in table.to_pylist()}


def _modified(path) -> dt.datetime:
    micros = os.stat(path).st_mtime_ns // 1000
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (64, 48), "blue").save(root / "images" / "a.png")
    Image.new("RGB", (32, 80), "green").save(root / "images" / "b.jpg", quality=90)
    (root / "notes.txt").write_text("hello")
    return root


def test_scan_indexes_files_with_automatic_fields(scanner, metadata, namespace, folder):
    source = create_datasource(metadata, namespace, folder.as_uri())
    status = scan(scanner, source.id)
    assert status.state == common_pb2.SCAN_STATE_READY, status.failure_reason
    assert (status.files_seen, status.datapoints_added, status.datapoints_updated) == (3, 3, 0)
    assert status.HasField("started_at") and status.HasField("finished_at")
    rows = _query(metadata, source.id)
    assert set(rows) == {"images/a.png", "images/b.jpg", "notes.txt"}
    png, jpg, text = rows["images/a.png"], rows["images/b.jpg"], rows["notes.txt"]
    assert (png["width"], png["height"], png["content_type"]) == (64, 48, "image/png")
    assert (jpg["width"], jpg["height"], jpg["content_type"]) == (32, 80, "image/jpeg")
    assert (text["width"], text["height"], text["content_type"], text["size"]) == (None, None, "text/plain", 5)
    assert png["size"] == os.path.getsize(folder / "images" / "a.png")
    assert png["modified"] == _modified(folder / "images" / "a.png")
    recorded = metadata.GetDatasource(mpb.GetDatasourceRequest(id=source.id)).datasource.scan
    assert recorded.state == common_pb2.SCAN_STATE_READY and recorded.files_seen == 3


def test_rescan_adds_updates_and_removes(scanner, metadata, namespace, folder):
    source = create_datasource(metadata, namespace, str(folder))
    scan(scanner, source.id)
    ids = {path: row["datapoint_id"] for path, row in _query(metadata, source.id).items()}
    Image.new("RGB", (100, 10)).save(folder / "images" / "a.png")  # changed: size and dimensions
    (folder / "notes.txt").unlink()
    (folder / "new.txt").write_text("new!")
    status = scan(scanner, source.id)
    assert (status.files_seen, status.datapoints_added, status.datapoints_updated, status.datapoints_removed) == (
        3,
        1,
        1,
        1,
    )
    rows = _query(metadata, source.id)
    assert set(rows) == {"images/a.png", "images/b.jpg", "new.txt"}
    assert (rows["images/a.png"]["width"], rows["images/a.png"]["height"]) == (100, 10)
    assert rows["images/a.png"]["datapoint_id"] == ids["images/a.png"]  # ids are stable across rescans
    status = scan(scanner, source.id)
    assert (status.datapoints_added, status.datapoints_updated, status.datapoints_removed) == (0, 0, 0)


def test_missing_folder_fails_with_the_reason(scanner, metadata, namespace, tmp_path):
    source = create_datasource(metadata, namespace, (tmp_path / "absent").as_uri())
    status = scan(scanner, source.id)
    assert status.state == common_pb2.SCAN_STATE_FAILED
    assert f"folder {tmp_path / 'absent'} does not exist" in status.failure_reason
    recorded = metadata.GetDatasource(mpb.GetDatasourceRequest(id=source.id)).datasource.scan
    assert recorded.state == common_pb2.SCAN_STATE_FAILED and recorded.failure_reason == status.failure_reason


def test_unsupported_source_fails_with_the_reason(scanner, metadata, namespace):
    source = create_datasource(metadata, namespace, "ftp://host/data")
    status = scan(scanner, source.id)
    assert status.state == common_pb2.SCAN_STATE_FAILED and "ftp:// sources are not supported" in status.failure_reason


def test_a_field_of_another_type_fails_the_scan_and_names_it(scanner, metadata, namespace, folder):
    source = create_datasource(metadata, namespace, str(folder))
    metadata.DefineFields(
        mpb.DefineFieldsRequest(
            datasource_id=source.id, fields=[common_pb2.Field(name="size", type=common_pb2.FIELD_TYPE_STRING)]
        )
    )
    status = scan(scanner, source.id)
    assert status.state == common_pb2.SCAN_STATE_FAILED
    assert status.failure_reason.startswith("metadata service: declaring the automatic fields")
    assert "INVALID_ARGUMENT" in status.failure_reason and "size" in status.failure_reason


def test_status_of_a_datasource_never_scanned_is_pending(scanner, metadata, namespace, folder):
    source = create_datasource(metadata, namespace, str(folder))
    status = scanner.GetScanStatus(spb.GetScanStatusRequest(datasource_id=source.id)).scan
    assert status.state == common_pb2.SCAN_STATE_PENDING


@pytest.mark.parametrize(
    "datasource_id, code", [(0, grpc.StatusCode.INVALID_ARGUMENT), (10**9, grpc.StatusCode.NOT_FOUND)]
)
def test_bad_datasource_ids_are_rejected(scanner, datasource_id, code):
    for call, request in ((scanner.StartScan, spb.StartScanRequest), (scanner.GetScanStatus, spb.GetScanStatusRequest)):
        with pytest.raises(grpc.RpcError) as caught:
            call(request(datasource_id=datasource_id))
        assert caught.value.code() == code
    if code == grpc.StatusCode.NOT_FOUND:
        assert caught.value.details() == f"datasource {datasource_id} not found"


def test_a_starting_scanner_resumes_pending_and_interrupted_scans(tmp_path, folder):
    from thresher.core.transport import open_channel
    from thresher.services.metadata.server import create_server as create_metadata
    from thresher.services.metadata.server import open_store
    from thresher.services.scanner.server import create_server as create_scanner
    from thresher.v1 import metadata_service_pb2_grpc, scanner_service_pb2_grpc

    store = open_store(str(tmp_path / "home"))
    metadata_server, port = create_metadata("127.0.0.1:0", store)
    address = f"127.0.0.1:{port}"
    try:
        with open_channel(address) as channel:
            metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel)
            pending = create_datasource(metadata, "resume/ns", str(folder), "pending")
            interrupted = create_datasource(metadata, "resume/ns", str(folder), "interrupted")
            ready = create_datasource(metadata, "resume/other", str(folder), "ready")
            metadata.UpdateScanStatus(
                mpb.UpdateScanStatusRequest(
                    datasource_id=interrupted.id, scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_SCANNING)
                )
            )
            metadata.UpdateScanStatus(
                mpb.UpdateScanStatusRequest(
                    datasource_id=ready.id, scan=common_pb2.ScanStatus(state=common_pb2.SCAN_STATE_READY, files_seen=42)
                )
            )
            scanner_server, scanner_port = create_scanner("127.0.0.1:0", address)
            try:
                with open_channel(f"127.0.0.1:{scanner_port}") as scanner_channel:
                    scanner = scanner_service_pb2_grpc.ScannerServiceStub(scanner_channel)
                    for source in (pending, interrupted):
                        status = wait_for_scan(scanner, source.id)
                        assert status.state == common_pb2.SCAN_STATE_READY and status.datapoints_added == 3
                    untouched = scanner.GetScanStatus(spb.GetScanStatusRequest(datasource_id=ready.id)).scan
                    assert (untouched.state, untouched.files_seen) == (common_pb2.SCAN_STATE_READY, 42)
            finally:
                scanner_server.stop(grace=None).wait()
    finally:
        metadata_server.stop(grace=None).wait()
        store.close()


class _RecordingIndex:
    """Passes calls to the real index, noting which paths each write carried."""

    def __init__(self, index, upserts, deletes):
        self._index, self.upserts, self.deletes = index, upserts, deletes

    def upsert(self, batch):
        self.upserts.append(sorted(batch.column("path").to_pylist()))
        self._index.upsert(batch)

    def delete(self, paths):
        self.deletes.append(sorted(paths))
        self._index.delete(paths)

    def __getattr__(self, name):
        return getattr(self._index, name)


def test_rescan_writes_exactly_the_changes_to_the_metadata_service(scanner_metadata, metadata, namespace, folder):
    from thresher.core.scan_status import READY, SCANNING
    from thresher.core.transport import open_channel
    from thresher.services.scanner.manager import ScanManager
    from thresher.services.scanner.metadata_client import MetadataCatalog

    upserts, deletes = [], []
    with open_channel(scanner_metadata) as channel:
        catalog = MetadataCatalog(channel)
        catalog.index = lambda datasource_id, real=catalog.index: _RecordingIndex(real(datasource_id), upserts, deletes)
        manager = ScanManager(catalog)

        def rescan():
            upserts.clear()
            deletes.clear()
            assert manager.start(source.id)[1]
            deadline = time.monotonic() + 60
            while manager.status(source.id).state == SCANNING:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            return manager.status(source.id)

        source = create_datasource(metadata, namespace, str(folder))
        assert rescan().state == READY
        assert upserts == [["images/a.png", "images/b.jpg", "notes.txt"]] and deletes == []

        assert rescan().state == READY
        assert upserts == [] and deletes == []  # nothing changed: nothing written at all

        stat = os.stat(folder / "notes.txt")
        os.utime(folder / "notes.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        (folder / "images" / "b.jpg").unlink()
        assert rescan().state == READY
        assert upserts == [["notes.txt"]] and deletes == [["images/b.jpg"]]
        assert _query(metadata, source.id)["notes.txt"]["modified"] == _modified(folder / "notes.txt")
        manager.shutdown()
