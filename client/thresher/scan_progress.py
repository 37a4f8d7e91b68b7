"""Waiting for a datasource's scan to finish, with a progress bar (the client side of a scan)."""

from __future__ import annotations

import time
from collections.abc import Callable

from thresher.core.errors import ScanFailedError

# PENDING and SCANNING are unused here: they stay importable from this module for the old ``thresher.scan`` path.
from thresher.core.scan_status import FAILED, PENDING, READY, SCANNING, ScanStatus

__all__ = ["FAILED", "PENDING", "READY", "SCANNING", "ScanStatus", "wait_until_ready"]


def wait_until_ready(
    poll: Callable[[], ScanStatus], name: str, timeout: float | None = None, progress: bool = True
) -> ScanStatus:
    """Polls ``poll`` until the scan is ready, showing files seen and the scan rate.

    Raises ScanFailedError with the scanner's reason if the scan fails, TimeoutError after ``timeout``
    seconds.
    """
    from tqdm.auto import tqdm  # only here: keeps `import thresher` light

    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.02
    with tqdm(desc=f"scanning {name}", unit=" files", disable=not progress, leave=False) as bar:
        while True:
            status = poll()
            bar.n = status.files_seen
            bar.set_postfix_str(f"{status.files_per_second:,.0f} files/s", refresh=True)
            if status.state == READY:
                return status
            if status.state == FAILED:
                raise ScanFailedError(f"the scan of {name} failed: {status.failure_reason or 'no reason given'}")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(
                    f"the scan of {name} is still {status.state} after {timeout} s ({status.files_seen} files seen)"
                )
            # Poll quickly at first (small scans finish fast), then settle at a few times a second.
            time.sleep(pause if remaining is None else min(pause, remaining))
            pause = min(pause * 1.5, 0.25)
