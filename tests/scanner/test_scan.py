import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from thresher.core.scan_status import FAILED, PENDING, READY, SCANNING, ScanStatus
from thresher.services.scanner.metadata_interfaces import DatasourceRef
from thresher.services.scanner.scan_run import Scan

from .fakes import MemoryIndex


@pytest.fixture
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


def _scan(root, index, pool, **kwargs):
    ref = DatasourceRef(7, f"file://{root}", "", ScanStatus(PENDING))
    return Scan(ref, index, pool, **kwargs)


def _files(root, names, data=b"x"):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_first_scan_writes_everything_in_batches_and_ends_ready(tmp_path, pool):
    _files(tmp_path, [f"d{i % 3}/f{i}.txt" for i in range(10)])
    Image.new("RGB", (8, 6)).save(tmp_path / "img.png")
    index = MemoryIndex()
    progress = _scan(tmp_path, index, pool, batch_rows=(4, 4)).run()
    assert progress.state == READY and progress.finished_at is not None
    assert (
        progress.files_seen,
        progress.datapoints_added,
        progress.datapoints_updated,
        progress.datapoints_removed,
    ) == (11, 11, 0, 0)
    assert [len(paths) for paths in index.upserts] == [4, 4, 3]
    assert index.rows["img.png"]["width"] == 8 and index.rows["img.png"]["height"] == 6
    assert index.reports[0].state == SCANNING and index.reports[-1] == progress


def test_rescan_writes_only_what_changed_and_deletes_what_went(tmp_path, pool):
    _files(tmp_path, ["same.txt", "grown.txt", "touched.txt", "gone.txt"])
    index = MemoryIndex()
    _scan(tmp_path, index, pool).run()
    index.upserts.clear()
    (tmp_path / "grown.txt").write_bytes(b"longer")
    stat = os.stat(tmp_path / "touched.txt")
    os.utime(tmp_path / "touched.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000))
    (tmp_path / "gone.txt").unlink()
    _files(tmp_path, ["new.txt"])
    progress = _scan(tmp_path, index, pool).run()
    assert (
        progress.files_seen,
        progress.datapoints_added,
        progress.datapoints_updated,
        progress.datapoints_removed,
    ) == (4, 1, 2, 1)
    assert [sorted(paths) for paths in index.upserts] == [["grown.txt", "new.txt", "touched.txt"]]
    assert index.deletes == [["gone.txt"]]
    assert index.rows["grown.txt"]["size"] == 6

    index.upserts.clear()
    index.deletes.clear()
    progress = _scan(tmp_path, index, pool).run()
    assert (progress.datapoints_added, progress.datapoints_updated, progress.datapoints_removed) == (0, 0, 0)
    assert index.upserts == [] and index.deletes == []


def test_missing_folder_fails_with_the_reason_and_deletes_nothing(tmp_path, pool):
    index = MemoryIndex()
    index.rows["old.txt"] = {"path": "old.txt", "size": 1, "modified": None}
    progress = _scan(tmp_path / "missing", index, pool).run()
    assert progress.state == FAILED
    assert "does not exist" in progress.failure_reason and str(tmp_path / "missing") in progress.failure_reason
    assert index.reports[-1].state == FAILED
    assert "old.txt" in index.rows and index.deletes == []


def test_a_failed_write_fails_the_scan_and_deletes_nothing(tmp_path, pool):
    _files(tmp_path, ["a.txt"])
    index = MemoryIndex()
    index.rows["old.txt"] = {"path": "old.txt", "size": 1, "modified": None}
    index.fail_upsert = "writing 1 datapoints: INVALID_ARGUMENT: field size is a string"
    progress = _scan(tmp_path, index, pool).run()
    assert progress.state == FAILED
    assert progress.failure_reason == "metadata service: writing 1 datapoints: INVALID_ARGUMENT: field size is a string"
    assert index.deletes == []


def test_a_cancelled_scan_stays_scanning_and_reports_no_outcome(tmp_path, pool):
    _files(tmp_path, [f"f{i}" for i in range(1100)])
    index = MemoryIndex()
    scan = _scan(tmp_path, index, pool)
    scan.cancel.set()
    progress = scan.run()
    assert progress.state == SCANNING
    assert all(report.state == SCANNING for report in index.reports)


def test_names_that_are_not_utf8_are_passed_over(tmp_path, pool):
    _files(tmp_path, ["ok.txt"])
    os.close(os.open(os.fsencode(tmp_path) + b"/bad\xff.txt", os.O_CREAT | os.O_WRONLY))
    index = MemoryIndex()
    progress = _scan(tmp_path, index, pool).run()
    assert progress.state == READY and set(index.rows) == {"ok.txt"}
