"""An in-memory index of a datasource's live rows by path, for lookups by path between writes.

A lookup of a random path through the store's compiled statement costs about a millisecond in DuckDB,
most of it planning and optimising the statement, not the seek. A datasource looked up by path again
and again under one write marker (``PathIndexes.after`` lookups) is read once, in the background, in
the columns of its default point-lookup view: one Arrow table of its live rows, and their paths'
hashes sorted beside their row positions. A lookup is then a binary search and a one-row slice (a
list of paths: vectorised searches and one `take`).

An index answers only under the write marker it was read at (read before the rows, so a write that
commits meanwhile leaves it under a marker that is already gone) and for the datasource record it was
compiled from. When the marker moves, every index is dropped (the single writer's marker counts every
write); a new one is read only once lookups reach ``after`` again under the new marker, so a
write-heavy workload does not pay a read per write. Indexes are held up to ``max_bytes`` in all; a
datasource whose rows pass that keeps the statement path. This is the embedded (single-writer)
store's: other engines have writers this process does not see.

Not to be confused with the engine's index on ``path`` (``migrations.path_index_sql``), which serves
the statement path and every other lookup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

#: Lookups of one datasource under one write marker after which its index is read.
BUILD_AFTER = 16
#: The most lookups a datasource waits for before its index is read again (see ``PathIndexes``).
MOST_AFTER = 1024
#: Rows whose read one lookup answered by an index pays back: reading an index costs about 0.4 µs a
#: row (1M rows: ~0.4 s), a lookup through it saves ~1 ms of the statement's.
PAYBACK_ROWS = 2500
#: The most bytes of rows and hashes held in all indexes together.
MAX_BYTES = 256 * 1024 * 1024
#: Per row, what the index adds to its Arrow rows: a hash and a position, 8 bytes each.
ROW_BYTES = 16
#: Paths turned into Python strings at a time to hash them.
_HASHED_AT_ONCE = 65536


@dataclass(frozen=True)
class PathIndex:
    """One datasource's live rows (``rows``, in its point lookup's schema) read at write marker
    ``marker`` under datasource record ``record``, with ``hashes`` (sorted) and ``positions`` (each
    hash's row) of the rows' paths."""

    marker: int
    record: object
    rows: pa.Table
    hashes: np.ndarray
    positions: np.ndarray
    paths: pa.ChunkedArray
    nbytes: int
    seconds: float

    def rows_of(self, path: str) -> pa.Table:
        """The row of ``path`` (one row, or none when it is no live datapoint)."""
        position = self._position(path)
        return self.rows.slice(0, 0) if position is None else self.rows.slice(position, 1)

    def rows_of_paths(self, paths: Sequence[str]) -> pa.Table:
        """The rows of ``paths`` (distinct), in the datasource's row order; none for a path that is no
        live datapoint."""
        keys = np.fromiter((hash(path) for path in paths), dtype=np.int64, count=len(paths))
        starts = np.searchsorted(self.hashes, keys)
        found = starts < len(self.hashes)
        found[found] = self.hashes[starts[found]] == keys[found]
        positions = self.positions[starts[found]]
        wanted = [path for path, hit in zip(paths, found.tolist(), strict=True) if hit]
        if self.paths.take(positions).to_pylist() != wanted:  # two paths share a hash: one by one
            kept = (self._position(path) for path in paths)
            positions = np.array([position for position in kept if position is not None], dtype=np.int64)
        return self.rows.take(np.sort(positions))

    def _position(self, path: str) -> int | None:
        key = hash(path)
        start = int(np.searchsorted(self.hashes, key))
        # Equal hashes sit side by side; each candidate's path is compared (two paths may share one).
        while start < len(self.hashes) and self.hashes[start] == key:
            position = int(self.positions[start])
            if self.paths[position].as_py() == path:
                return position
            start += 1
        return None


def build(marker: int, record: object, rows: pa.Table, path_column: str, started: float) -> PathIndex:
    """The index of ``rows`` (live rows, each path once) read at ``marker`` under ``record``."""
    paths = rows.column(path_column)
    # Python's string hash: what a lookup computes of the path it is asked for. Hashed a slice at a
    # time, so that the Python strings of a million paths never live at once.
    hashes = np.empty(rows.num_rows, dtype=np.int64)
    done = 0
    for start in range(0, rows.num_rows, _HASHED_AT_ONCE):
        some = paths.slice(start, _HASHED_AT_ONCE).to_pylist()
        hashes[done : done + len(some)] = [hash(path) for path in some]
        done += len(some)
    order = np.argsort(hashes, kind="stable")
    nbytes = rows.nbytes + ROW_BYTES * rows.num_rows
    return PathIndex(marker, record, rows, hashes[order], order, paths, nbytes, time.perf_counter() - started)


class PathIndexes:
    """The indexes of the datasources looked up by path, each read in a thread of its own once
    ``after`` lookups of it came under one write marker. ``read(datasource_id)`` reads one (None when it
    cannot: changed meanwhile, or more than ``max_bytes``).

    A datasource whose index is dropped (a write) before it answered enough lookups to pay for its
    read (one per ``payback_rows`` rows) waits for twice as many lookups before the next read, up
    to ``MOST_AFTER``; one that paid goes back to ``after``. So a workload that writes between every
    few dozen lookups of a large datasource stops reading an index per write.

    ``_held`` is replaced, never changed in place: lookups and writes read it without the lock.
    """

    def __init__(
        self,
        read: Callable[[int, int], PathIndex | None],
        after: int = BUILD_AFTER,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._read = read
        self.after = after
        self.max_bytes = max_bytes
        self._held: dict[int, PathIndex] = {}
        self._lookups: dict[int, tuple[int, int]] = {}  # datasource -> (marker, lookups under it)
        self._building: set[int] = set()
        self._tried: dict[int, int] = {}  # datasource -> the marker its latest read started under
        self._needed: dict[int, int] = {}  # datasource -> lookups that start a read, when not ``after``
        self._answered: dict[int, int] = {}  # datasource -> lookups its held index answered
        self.payback_rows: int | None = PAYBACK_ROWS  # None: never wait for more lookups
        self._changed = threading.Condition()
        self.served = 0  # lookups answered by an index, counted by the store (tests read it)

    def find(self, datasource_id: int, marker: int, record: object) -> PathIndex | None:
        """The index that answers a lookup of ``datasource_id`` at ``marker`` under ``record``, or None
        (the statement answers it); counts the lookup, and starts reading an index at the ``after``-th."""
        index = self._held.get(datasource_id)
        if index is not None and index.marker == marker and index.record is record:
            self._answered[datasource_id] = self._answered.get(datasource_id, 0) + 1  # a guide: races may drop one
            return index
        with self._changed:
            self._drop_stale(marker)
            seen, lookups = self._lookups.get(datasource_id, (marker, 0))
            lookups = lookups + 1 if seen == marker else 1
            self._lookups[datasource_id] = (marker, lookups)
            # One read per marker at most: one that was too large, or raced a write, is not retried
            # until lookups come again under a new marker.
            if (
                0 < self.after
                and self._needed.get(datasource_id, self.after) <= lookups
                and datasource_id not in self._building
                and self._tried.get(datasource_id) != marker
            ):
                self._building.add(datasource_id)
                self._tried[datasource_id] = marker
                # Not a daemon: the interpreter waits for a read (at most ``max_bytes``) rather than
                # stopping a thread that is inside DuckDB at exit, which aborts the process.
                threading.Thread(target=self._build, args=(datasource_id, self.max_bytes), name="path-index").start()
        return None

    def _build(self, datasource_id: int, max_bytes: int) -> None:
        index = None
        try:
            index = self._read(datasource_id, max_bytes)
        except Exception:  # noqa: BLE001 - the statement path still answers; say why this did not
            log.exception("reading the path index of datasource %d failed", datasource_id)
        with self._changed:
            self._building.discard(datasource_id)
            if index is not None and index.nbytes <= max_bytes:
                # Room for it: the others go, stale ones first, then the largest.
                others = sorted(
                    ((key, kept) for key, kept in self._held.items() if key != datasource_id),
                    key=lambda item: (item[1].marker == index.marker, -item[1].nbytes),
                )
                while others and sum(kept.nbytes for _, kept in others) + index.nbytes > max_bytes:
                    others.pop(0)
                self._held = {**dict(others), datasource_id: index}
                self._answered[datasource_id] = 0
                log.info(
                    "path index of datasource %d: %d rows, %.1f MB, read in %.3f s",
                    datasource_id,
                    index.rows.num_rows,
                    index.nbytes / 1e6,
                    index.seconds,
                )
            self._changed.notify_all()

    def drop_stale(self, marker: int) -> None:
        """Drops every index read under another marker than ``marker`` (a write moved it)."""
        if any(kept.marker != marker for kept in self._held.values()):
            with self._changed:
                self._drop_stale(marker)

    def _drop_stale(self, marker: int) -> None:
        stale = [key for key, kept in self._held.items() if kept.marker != marker]
        if not stale:
            return
        for key in stale:
            # An index that did not answer enough lookups to pay for its read waits for more next time.
            answered = self._answered.pop(key, 0)
            if self.payback_rows is not None and answered * self.payback_rows < self._held[key].rows.num_rows:
                self._needed[key] = min(max(self._needed.get(key, self.after), 1) * 2, MOST_AFTER)
            else:
                self._needed.pop(key, None)
        self._held = {key: kept for key, kept in self._held.items() if kept.marker == marker}

    def held(self, datasource_id: int) -> PathIndex | None:
        """The index held for ``datasource_id``, current or not."""
        return self._held.get(datasource_id)

    def wait_idle(self, timeout: float) -> bool:
        """Waits until no index is being read (tests wait on this, not on time); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._building, timeout)
