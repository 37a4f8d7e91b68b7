"""Writes new and changed files to the index in batches, one batch in flight while the listing goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from thresher.services.scanner.automatic import AutomaticFields
from thresher.services.scanner.metadata_interfaces import Index
from thresher.services.scanner.scan_sources import Page

log = logging.getLogger(__name__)

# Called after each committed batch with the numbers of (added, updated) datapoints in it.
WrittenCallback = Callable[[int, int], None]


class BatchWriter:
    """Collects added and changed files and upserts them in batches on a background thread.

    A batch leaves once ``min_rows`` wait and no write is running, or once ``max_rows`` wait; so while
    the store is busy the next batch grows, up to ``max_rows``, and fewer, larger writes keep up.
    """

    def __init__(
        self, fields: AutomaticFields, index: Index, min_rows: int, max_rows: int, *, on_written: WrittenCallback
    ) -> None:
        self._fields = fields
        self._index = index
        self._min_rows = min_rows
        self._max_rows = max_rows
        self._on_written = on_written
        self._added = Page()
        self._changed = Page()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-writer")
        self._in_flight: Future[None] | None = None

    def add(self, added: Page, changed: Page) -> None:
        self._added.extend(added)
        self._changed.extend(changed)
        while self._waiting() >= self._max_rows:
            self._submit()
        if self._waiting() >= self._min_rows and (self._in_flight is None or self._in_flight.done()):
            self._submit()

    def close(self) -> None:
        """Writes what is left and waits for every write; raises the first write error."""
        try:
            while self._waiting():
                self._submit()
            self._wait()
        finally:
            self._thread.shutdown(wait=True)

    def abort(self) -> None:
        """Drops what is not written yet; lets a write in progress finish."""
        self._added, self._changed = Page(), Page()
        self._thread.shutdown(wait=True, cancel_futures=True)

    def _waiting(self) -> int:
        return len(self._added) + len(self._changed)

    def _submit(self) -> None:
        """Sends up to ``max_rows`` rows, added files first."""
        # Waiting for the previous batch first bounds memory and surfaces its error early.
        self._wait()
        batch = self._added[: self._max_rows]
        self._added = self._added[self._max_rows :]
        added = len(batch)
        rest = self._max_rows - added
        batch.extend(self._changed[:rest])
        self._changed = self._changed[rest:]
        self._in_flight = self._thread.submit(self._write, batch, added)

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def _write(self, page: Page, added: int) -> None:
        batch = self._fields.batch(page)
        self._index.upsert(batch)
        log.debug("wrote %d datapoints", batch.num_rows)
        self._on_written(added, len(page) - added)
