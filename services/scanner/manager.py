"""Runs scans in background threads, at most one per datasource, and resumes those a stopped scanner left."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from thresher.core.scan_status import SCANNING, ScanStatus
from thresher.services.scanner.metadata_interfaces import Catalog, DatasourceRef, MetadataError, MetadataUnavailable
from thresher.services.scanner.scan_run import DEFAULT_BATCH_ROWS, DEFAULT_REPORT_INTERVAL, Scan

log = logging.getLogger(__name__)

IMAGE_THREADS = 4
# Reading an image header from an object store is a round trip of milliseconds: more threads hide it.
REMOTE_IMAGE_THREADS = 16
# Resuming waits this long at most for a metadata service that is still starting.
RESUME_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15, 30)


class ShuttingDown(RuntimeError):
    """The scanner is stopping and starts no new scans."""


class ScanManager:
    def __init__(
        self,
        catalog: Catalog,
        *,
        batch_rows: tuple[int, int] = DEFAULT_BATCH_ROWS,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
        remote_image_sizes: bool = True,
    ) -> None:
        """``remote_image_sizes=False``: no width/height for images in object stores (no header reads)."""
        self._catalog = catalog
        self._batch_rows = batch_rows
        self._report_interval = report_interval
        self._remote_image_sizes = remote_image_sizes
        self._image_pool = ThreadPoolExecutor(IMAGE_THREADS, thread_name_prefix="scan-images")
        self._remote_image_pool = ThreadPoolExecutor(REMOTE_IMAGE_THREADS, thread_name_prefix="scan-remote-images")
        self._lock = threading.Lock()
        self._running: dict[int, tuple[Scan, threading.Thread]] = {}
        self._finished: dict[int, ScanStatus] = {}
        self._closed = threading.Event()

    def start(self, datasource_id: int) -> tuple[ScanStatus, bool]:
        """Starts a scan unless one runs; returns its progress and whether it started. Raises DatasourceNotFound."""
        running = self._running_progress(datasource_id)
        if running is not None:
            return running, False
        return self._start(self._catalog.datasource(datasource_id))

    def status(self, datasource_id: int) -> ScanStatus:
        """The progress of the running or last scan here, else what the datasource records."""
        running = self._running_progress(datasource_id)
        if running is not None:
            return running
        with self._lock:
            finished = self._finished.get(datasource_id)
        return finished if finished is not None else self._catalog.datasource(datasource_id).progress

    def resume_in_background(self) -> threading.Thread:
        """Restarts, in a thread, the scans of datasources left pending or scanning."""
        thread = threading.Thread(target=self._resume, name="scan-resume", daemon=True)
        thread.start()
        return thread

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancels running scans and waits for their threads; they stay SCANNING, to be resumed later."""
        self._closed.set()
        with self._lock:
            running = list(self._running.values())
        for scan, _ in running:
            scan.cancel.set()
        for _, thread in running:
            thread.join(timeout)
        self._image_pool.shutdown(wait=False, cancel_futures=True)
        self._remote_image_pool.shutdown(wait=False, cancel_futures=True)

    def _running_progress(self, datasource_id: int) -> ScanStatus | None:
        with self._lock:
            if self._closed.is_set():
                raise ShuttingDown("the scanner is shutting down")
            running = self._running.get(datasource_id)
        return running[0].progress if running is not None else None

    def _start(self, datasource: DatasourceRef) -> tuple[ScanStatus, bool]:
        with self._lock:
            if self._closed.is_set():
                raise ShuttingDown("the scanner is shutting down")
            # Checked again under the lock: another request may have started it meanwhile.
            if datasource.id in self._running:
                return self._running[datasource.id][0].progress, False
            scan = Scan(
                datasource,
                self._catalog.index(datasource.id),
                self._image_pool,
                remote_image_pool=self._remote_image_pool,
                remote_image_sizes=self._remote_image_sizes,
                batch_rows=self._batch_rows,
                report_interval=self._report_interval,
            )
            thread = threading.Thread(target=self._run, args=(scan,), name=f"scan-{datasource.id}", daemon=True)
            self._running[datasource.id] = (scan, thread)
            thread.start()
        return scan.progress, True

    def _run(self, scan: Scan) -> None:
        progress = scan.run()
        with self._lock:
            del self._running[scan.datasource.id]
            if progress.state != SCANNING:  # a cancelled scan has no outcome to remember
                self._finished[scan.datasource.id] = progress

    def _resume(self) -> None:
        for delay in RESUME_DELAYS:
            try:
                unfinished = list(self._catalog.unfinished())
                break
            except MetadataUnavailable as error:
                log.info("metadata service not reachable yet (%s); retrying in %s s", error, delay)
                if self._closed.wait(delay):
                    return
            except MetadataError as error:
                log.error("cannot list datasources to resume their scans: %s", error)
                return
        else:
            log.error("gave up resuming unfinished scans: the metadata service stayed unreachable")
            return
        for datasource in unfinished:
            if self._closed.is_set():
                return
            log.info("resuming the scan of datasource %d (%s)", datasource.id, datasource.progress.state)
            try:
                self._start(datasource)
            except ShuttingDown:
                return
