import threading
import time

import pytest

from thresher.core.scan_status import FAILED, PENDING, READY, SCANNING, ScanStatus
from thresher.services.scanner.manager import ScanManager, ShuttingDown
from thresher.services.scanner.metadata_interfaces import DatasourceNotFound, DatasourceRef, MetadataUnavailable

from .fakes import MemoryIndex


class BlockingIndex(MemoryIndex):
    """Holds the scan in prepare() until released, so a test can act while it runs."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def prepare(self, stamp):
        self.entered.set()
        assert self.release.wait(30)


class FakeCatalog:
    def __init__(self, refs, unavailable_times=0):
        self.refs = {ref.id: ref for ref in refs}
        self.indexes = {ref.id: BlockingIndex() for ref in refs}
        self.unavailable_times = unavailable_times

    def datasource(self, datasource_id):
        if datasource_id not in self.refs:
            raise DatasourceNotFound(f"datasource {datasource_id} not found")
        return self.refs[datasource_id]

    def unfinished(self):
        if self.unavailable_times:
            self.unavailable_times -= 1
            raise MetadataUnavailable("listing datasources: UNAVAILABLE: connection refused")
        return [ref for ref in self.refs.values() if ref.progress.state in (PENDING, SCANNING)]

    def index(self, datasource_id):
        return self.indexes[datasource_id]


def _ref(datasource_id, root, state=PENDING):
    return DatasourceRef(datasource_id, str(root), "", ScanStatus(state))


def _wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_a_second_start_while_running_does_not_start_another(tmp_path):
    catalog = FakeCatalog([_ref(1, tmp_path)])
    manager = ScanManager(catalog)
    progress, started = manager.start(1)
    assert started and progress.state == SCANNING
    assert catalog.indexes[1].entered.wait(30)
    progress, started = manager.start(1)
    assert not started and progress.state == SCANNING
    assert manager.status(1).state == SCANNING
    catalog.indexes[1].release.set()
    _wait(lambda: manager.status(1).state == READY)
    _, started = manager.start(1)  # a finished scan can run again
    assert started
    manager.shutdown()


def test_status_falls_back_to_what_the_datasource_records(tmp_path):
    manager = ScanManager(FakeCatalog([_ref(1, tmp_path, FAILED)]))
    assert manager.status(1).state == FAILED
    with pytest.raises(DatasourceNotFound):
        manager.status(2)
    with pytest.raises(DatasourceNotFound):
        manager.start(2)
    manager.shutdown()


def test_shutdown_cancels_running_scans_and_refuses_new_ones(tmp_path):
    for i in range(1100):
        (tmp_path / f"f{i}").write_bytes(b"")
    catalog = FakeCatalog([_ref(1, tmp_path)])
    manager = ScanManager(catalog)
    manager.start(1)
    assert catalog.indexes[1].entered.wait(30)
    stopper = threading.Thread(target=manager.shutdown)
    stopper.start()
    _wait(lambda: manager._closed.is_set())
    catalog.indexes[1].release.set()
    stopper.join(30)
    assert not stopper.is_alive()
    index = catalog.indexes[1]
    assert index.upserts == [] and all(r.state == SCANNING for r in index.reports)
    with pytest.raises(ShuttingDown):
        manager.start(1)


def test_resume_waits_for_the_metadata_service_and_starts_unfinished_scans(tmp_path):
    refs = [_ref(1, tmp_path), _ref(2, tmp_path, SCANNING), _ref(3, tmp_path, READY)]
    catalog = FakeCatalog(refs, unavailable_times=1)
    for index in catalog.indexes.values():
        index.release.set()
    manager = ScanManager(catalog)
    manager.resume_in_background().join(30)
    _wait(lambda: all(manager.status(i).state == READY for i in (1, 2)))
    assert catalog.indexes[3].reports == []
    manager.shutdown()
