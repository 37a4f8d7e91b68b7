"""A scanner SIGKILLed mid-scan resumes after a restart and its scan ends with exactly the files on disk.

Each round changes the folder a little (files added and removed), restarts the scanner, asks for a scan
and kills the scanner either as soon as the scan was acknowledged or once its first datapoints are in the
store. A kill that lands after the scan finished does not count as mid-scan. At the end the datasource
must be ready with one datapoint per file, no more.
"""

from __future__ import annotations

import random

import pytest

from tests.reliability.harness import ChildService, fast_channel, poll, read_all
from thresher.services.metadata.server import create_server, open_store
from thresher.v1 import common_pb2, metadata_service_pb2_grpc, scanner_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb
from thresher.v1 import scanner_service_pb2 as spb

pytestmark = pytest.mark.slow  # SIGKILL loop: a scanner killed and restarted round after round

FILES = 3000
ROUNDS = 8


@pytest.fixture
def metadata_address(tmp_path):
    store = open_store(str(tmp_path / "metadata"))
    server, port = create_server("127.0.0.1:0", store)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait()
    store.close()


def _write_files(root, names) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


@pytest.mark.timeout(300)
def test_a_scanner_killed_mid_scan_resumes_and_indexes_exactly_the_files(tmp_path, metadata_address):
    root = tmp_path / "data"
    on_disk = {f"d{i % 30:02d}/f{i:05d}.txt" for i in range(FILES)}
    _write_files(root, on_disk)
    metadata_channel = fast_channel(metadata_address)
    metadata = metadata_service_pb2_grpc.MetadataServiceStub(metadata_channel)
    source = metadata.CreateDatasource(
        mpb.CreateDatasourceRequest(namespace="crash/scanner", name="files", source_uri=root.as_uri()), timeout=30
    ).datasource

    def stored_state() -> int:
        return metadata.GetDatasource(mpb.GetDatasourceRequest(id=source.id), timeout=30).datasource.scan.state

    def stored_rows() -> int:
        return len(read_all(metadata, source.id))

    rng = random.Random(99)
    mid_scan = immediate = 0
    scanner = ChildService("scanner", "--metadata-address", metadata_address)
    for round_ in range(ROUNDS + 1):
        if round_:  # the folder changes between kills: the resumed scan must add and remove
            added = {f"new/r{round_}/f{i}.txt" for i in range(200)}
            removed = set(rng.sample(sorted(on_disk), 10))
            _write_files(root, added)
            for name in removed:
                (root / name).unlink()
            on_disk = (on_disk | added) - removed
        scanner.start()
        channel = fast_channel(scanner.address)
        stub = scanner_service_pb2_grpc.ScannerServiceStub(channel)
        stub.StartScan(spb.StartScanRequest(datasource_id=source.id), timeout=60, wait_for_ready=True)
        if round_ == ROUNDS:
            break
        if rng.random() < 0.5:
            immediate += 1
        else:
            rows_before = stored_rows()
            poll(
                lambda: stored_rows() != rows_before or stored_state() != common_pb2.SCAN_STATE_SCANNING,
                60,
                "the scan's first write",
            )
        scanner.kill()
        channel.close()
        # Unfinished: still scanning, or so early that the scan had not yet recorded that it started.
        mid_scan += stored_state() != common_pb2.SCAN_STATE_READY

    try:
        final = poll(
            lambda: (
                lambda scan: scan if scan.state in (common_pb2.SCAN_STATE_READY, common_pb2.SCAN_STATE_FAILED) else None
            )(stub.GetScanStatus(spb.GetScanStatusRequest(datasource_id=source.id), timeout=30).scan),
            120,
            "the last scan to finish",
        )
    finally:
        scanner.kill()
        channel.close()
    assert final.state == common_pb2.SCAN_STATE_READY, final.failure_reason
    paths = list(read_all(metadata, source.id)["path"])
    metadata_channel.close()
    assert len(paths) == len(set(paths)), "a file is indexed twice"
    assert set(paths) == on_disk
    # A kill right after the scan was acknowledged usually lands mid-scan, but on a loaded machine a rescan
    # may finish first; the test proves something only if some kills landed mid-scan.
    assert immediate >= 1 and mid_scan >= 1, f"only {mid_scan} of {ROUNDS} kills landed mid-scan"
    print(
        f"\n{scanner.kills} SIGKILLs of the scanner ({mid_scan} mid-scan); the resumed scan indexed exactly "
        f"the {len(on_disk)} files"
    )
