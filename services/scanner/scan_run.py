"""One scan of one datasource: list the source, diff against the index, write what changed, delete what went.

Writes start while the listing runs; deletions wait until the listing has completed, so a scan that
fails half way never removes datapoints it merely had not reached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from thresher.core.scan_status import FAILED, READY, SCANNING, ScanStatus
from thresher.services.scanner.automatic import ETAG, MODIFIED, AutomaticFields
from thresher.services.scanner.diff import Diff, Stamp
from thresher.services.scanner.index_writer import BatchWriter
from thresher.services.scanner.metadata_interfaces import DatasourceRef, Index, MetadataError
from thresher.services.scanner.reporter import ProgressReporter
from thresher.services.scanner.scan_sources import Page, ScanCancelled, Source, SourceError, open_source

log = logging.getLogger(__name__)

# Rows per write: at least the first (so a long listing shows results early) and at most the second;
# while one write runs the next grows, which suits stores whose cost is mostly per write.
DEFAULT_BATCH_ROWS = (10_000, 100_000)
DEFAULT_REPORT_INTERVAL = 0.5
DELETE_CHUNK = 50_000


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Scan:
    """Runs in a thread of its own; ``progress`` may be read from any thread at any time.

    Image headers are read in ``image_pool``, or for remote sources (object stores) in
    ``remote_image_pool`` when given; ``remote_image_sizes=False`` skips them there, for buckets of
    images too many to read a header of each on a first scan.
    """

    def __init__(
        self,
        datasource: DatasourceRef,
        index: Index,
        image_pool: Executor,
        *,
        remote_image_pool: Executor | None = None,
        remote_image_sizes: bool = True,
        batch_rows: tuple[int, int] = DEFAULT_BATCH_ROWS,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
    ) -> None:
        self.datasource = datasource
        self.cancel = threading.Event()
        self.progress = ScanStatus(SCANNING, started_at=utc_now())
        self._index = index
        self._image_pool = image_pool
        self._remote_image_pool = remote_image_pool
        self._remote_image_sizes = remote_image_sizes
        self._batch_rows = batch_rows
        self._report_interval = report_interval
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._reporter: ProgressReporter | None = None

    def run(self) -> ScanStatus:
        """Scans to the end and returns the final progress (READY or FAILED); never raises."""
        name = f"datasource {self.datasource.id} ({self.datasource.source_uri})"
        log.info("scanning %s", name)
        try:
            self._index.report(self.progress)
            self._reporter = ProgressReporter(self._index.report, self._report_interval, name)
            self._scan()
            self._finish(state=READY, finished_at=utc_now())
        except ScanCancelled:
            # The datasource stays SCANNING in the store, so the next scanner to start resumes it.
            log.info("scan of %s cancelled after %d files", name, self.progress.files_seen)
            self._stop_reporting()
            return self.progress
        except SourceError as error:
            return self._fail(name, str(error))
        except MetadataError as error:
            return self._fail(name, f"metadata service: {error}")
        except Exception as error:  # noqa: BLE001 - a scan thread must end in a recorded state
            log.exception("scan of %s failed unexpectedly", name)
            return self._fail(name, f"internal error: {type(error).__name__}: {error}")
        progress = self.progress
        log.info(
            "scanned %s: %d files in %.1f s, %d added, %d updated, %d removed",
            name,
            progress.files_seen,
            time.monotonic() - self._started,
            progress.datapoints_added,
            progress.datapoints_updated,
            progress.datapoints_removed,
        )
        return progress

    def _scan(self) -> None:
        ref = self.datasource
        source = open_source(ref.source_uri, ref.revision, ref.repository_uri)
        try:
            diff = self._diff_and_write(source)
        finally:
            source.close()
        removed = diff.removed()
        for start in range(0, len(removed), DELETE_CHUNK):
            if self.cancel.is_set():
                raise ScanCancelled()
            chunk = removed[start : start + DELETE_CHUNK]
            self._index.delete(chunk)
            self._count(datapoints_removed=len(chunk))

    def _diff_and_write(self, source: Source) -> Diff:
        """Writes what was added to or changed in ``source``; returns the diff, which knows what went."""
        stamp = ETAG if source.tagged else MODIFIED
        self._index.prepare(stamp)
        with ThreadPoolExecutor(1, thread_name_prefix="scan-index") as reader:
            # What is indexed is read while the listing starts; pages wait for it in `listed`.
            indexed = reader.submit(self._index.indexed, stamp)
            return self._list_and_write(source, indexed)

    def _images(self, source: Source) -> Executor | None:
        if not source.remote:
            return self._image_pool
        if not self._remote_image_sizes:
            return None
        return self._remote_image_pool or self._image_pool

    def _list_and_write(self, source: Source, indexed: Future[Mapping[str, Stamp]]) -> Diff:
        """Lists the source and writes what was added or changed; returns the diff, which knows what went."""
        writer = BatchWriter(
            AutomaticFields(source, self._images(source)), self._index, *self._batch_rows, on_written=self._written
        )
        diff: Diff | None = None
        listed: list[Page] = []
        seen = 0
        try:
            for page in source.pages(self.cancel):
                seen += len(page)
                self._set(files_seen=seen)
                listed.append(_utf8_only(page))
                if diff is None and indexed.done():
                    diff = Diff(indexed.result(), source.tagged)
                if diff is not None:
                    _write_changes(diff, listed, writer)
                if self.cancel.is_set():
                    raise ScanCancelled()
            if diff is None:
                diff = Diff(indexed.result(), source.tagged)
            _write_changes(diff, listed, writer)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return diff

    def _written(self, added: int, updated: int) -> None:
        self._count(datapoints_added=added, datapoints_updated=updated)

    def _set(self, **values: Any) -> None:
        with self._lock:
            self._publish(values)

    def _count(self, **increments: int) -> None:
        with self._lock:
            self._publish({name: getattr(self.progress, name) + n for name, n in increments.items()})

    def _publish(self, values: dict[str, Any]) -> None:
        self.progress = self._replaced(values)
        if self._reporter is not None:
            self._reporter.offer(self.progress)

    def _finish(self, **values: Any) -> None:
        """Records the outcome in the store before showing it here, so whoever sees it here finds it there."""
        self._stop_reporting()
        with self._lock:
            final = self._replaced(values)
        self._index.report(final)
        self.progress = final

    def _stop_reporting(self) -> None:
        if self._reporter is not None:
            self._reporter.close()
            self._reporter = None

    def _replaced(self, values: dict[str, Any]) -> ScanStatus:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        files = values.get("files_seen", self.progress.files_seen)
        return dataclasses.replace(self.progress, files_per_second=files / elapsed, **values)

    def _fail(self, name: str, reason: str) -> ScanStatus:
        log.error("scan of %s failed: %s", name, reason)
        try:
            self._finish(state=FAILED, failure_reason=reason, finished_at=utc_now())
        except MetadataError as error:
            log.error("could not record the failed scan of %s: %s", name, error)
            self._set(state=FAILED, failure_reason=reason, finished_at=utc_now())
        return self.progress


def _write_changes(diff: Diff, pages: list[Page], writer: BatchWriter) -> None:
    """Hands the added and changed files of ``pages`` to the writer and empties the list."""
    for page in pages:
        added, changed = diff.split(page)
        if len(added) or len(changed):
            writer.add(added, changed)
    pages.clear()


def _utf8_only(page: Page) -> Page:
    """The page without (and logging) files whose names are not valid UTF-8, which Arrow strings cannot hold."""
    try:
        "".join(page.paths).encode("utf-8")  # one check for the whole page: names are nearly always fine
        return page
    except UnicodeEncodeError:
        pass
    rows = []
    for row, path in enumerate(page.paths):
        try:
            path.encode("utf-8")
            rows.append(row)
        except UnicodeEncodeError:
            log.warning("passing over %r: its name is not valid UTF-8", path)
    return page.take(rows)
