"""Sends scan progress to the store from a thread of its own, at most once per interval.

A progress report waits behind any write the store is doing, so the listing must never wait for one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from thresher.core.scan_status import ScanStatus
from thresher.services.scanner.metadata_interfaces import MetadataError

log = logging.getLogger(__name__)


class ProgressReporter:
    def __init__(self, send: Callable[[ScanStatus], None], interval: float, name: str) -> None:
        self._send = send
        self._interval = interval
        self._name = name
        self._latest: ScanStatus | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scan-progress", daemon=True)
        self._thread.start()

    def offer(self, progress: ScanStatus) -> None:
        """Makes ``progress`` the next one to send; returns at once."""
        self._latest = progress
        self._wake.set()

    def close(self) -> None:
        """Stops reporting; waits for a report in flight, so none arrives after what the caller sends next."""
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            latest = self._latest
            if latest is None:  # cannot happen: only offer() wakes the thread without stopping it, after setting it
                continue
            try:
                self._send(latest)
            except MetadataError as error:
                # Progress is a courtesy; the outcome is reported by the scan itself.
                log.warning("could not report the progress of %s: %s", self._name, error)
            if self._stop.wait(self._interval):
                return
