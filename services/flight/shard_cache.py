"""What serving bag shards keeps between calls: each dataset's location as the metadata service gave it
to a caller, and opened shard readers.

A training job asks for many ranges of the same shards, each epoch again. Without these, every DoGet
would ask the metadata service where the dataset lives and open the shard's files anew (several reads,
one request each on a cloud store), which costs more than streaming a range does.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Hashable

from thresher.core.bag import DatasetReader
from thresher.core.bag import spec as specs
from thresher.services.auth.forwarded_headers import Metadata

# How long a dataset's location answered to one caller is reused: a dataset moved, or a caller's access
# revoked, takes effect within this time.
LOCATION_SECONDS = 5.0
# How long an opened reader of a shard on a cloud store is reused (a local shard is checked on each use).
CLOUD_READER_SECONDS = 5.0
OPEN_READERS = 256


class Locations:
    """``lookup(dataset, caller)`` answers, reused for LOCATION_SECONDS per (dataset, caller)."""

    def __init__(self, lookup: Callable[[str, Metadata], str], seconds: float = LOCATION_SECONDS) -> None:
        self._lookup = lookup
        self._seconds = seconds
        self._answers: dict[Hashable, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, dataset: str, caller: Metadata) -> str:
        key, now = (dataset, caller), time.monotonic()
        with self._lock:
            answer = self._answers.get(key)
        if answer is not None and now - answer[0] < self._seconds:
            return answer[1]
        uri = self._lookup(dataset, caller)  # errors (not found, denied) are never kept
        with self._lock:
            if len(self._answers) >= 4 * OPEN_READERS:
                self._answers = {k: v for k, v in self._answers.items() if now - v[0] < self._seconds}
            self._answers[key] = (now, uri)
        return uri


# A local shard's (inode, modification time in ns, size) of its spec.json.
_Identity = tuple[int, int, int]


class _Opened:
    __slots__ = ("reader", "identity", "opened")

    def __init__(self, reader: DatasetReader, identity: _Identity | None) -> None:
        self.reader, self.identity, self.opened = reader, identity, time.monotonic()


def _identity(folder: str) -> _Identity | None:
    """What changes when a local shard is written again (its ``spec.json`` is written last); None on a
    cloud store, where asking would cost a request."""
    if "://" in folder:
        return None
    info = os.stat(os.path.join(folder, specs.SPEC_FILE))
    return info.st_ino, info.st_mtime_ns, info.st_size


class OpenShards:
    """Shard readers kept open, least recently used dropped first. A reader is shared by the streams
    using it (reads do not move a file position); one dropped is closed by the collector once the last
    stream lets go of it, so a stream is never cut short."""

    def __init__(self, capacity: int = OPEN_READERS) -> None:
        self._capacity = capacity
        self._open: collections.OrderedDict[str, _Opened] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: str) -> DatasetReader:
        """An open reader of the shard at ``folder`` (errors as DatasetReader raises them)."""
        try:
            identity = _identity(folder)
        except FileNotFoundError:
            identity = None  # opening says what is missing
        with self._lock:
            entry = self._open.get(folder)
            if entry is not None and self._fresh(entry, identity):
                self._open.move_to_end(folder)
                return entry.reader
        reader = DatasetReader(folder, None)
        with self._lock:
            self._open[folder] = _Opened(reader, identity)
            self._open.move_to_end(folder)
            while len(self._open) > self._capacity:
                self._open.popitem(last=False)
        return reader

    def forget(self, folder: str) -> None:
        """Drops the reader of ``folder`` (it failed: the next call opens the shard anew)."""
        with self._lock:
            self._open.pop(folder, None)

    @staticmethod
    def _fresh(entry: _Opened, identity: _Identity | None) -> bool:
        if entry.identity is not None:
            return entry.identity == identity
        return identity is None and time.monotonic() - entry.opened < CLOUD_READER_SECONDS
