"""One bag: a file of records with an index table, written buffered and read with ranged reads.

A :class:`BagWriter` writes to ``<path>.tmp`` and renames on :meth:`~BagWriter.close`, so a writer
that crashes leaves no file under the bag's name (for a cloud path it writes a local temporary copy
and uploads it on close, the sidecar first). It writes the seed layout (records, then a version 2
table), plus the checksum sidecar ``<path>.crc``. A :class:`BagReader` reads the seed
layout (table version 1 or 2) and the split layout (``.bag`` + ``.idx``).
"""

from __future__ import annotations

import mmap
import operator
import os
import pickle
import threading
from array import array
from typing import Any

import numpy as np

from thresher.core.bag import checksums, files, tables
from thresher.core.bag.bag_errors import BagError, CorruptBagError, DatasetExistsError
from thresher.core.bag.staging import Staging
from thresher.core.bag.writing import TMP, write_all, write_file_atomic

# Records are gathered and handed to the OS in one writev once this much is pending.
_FLUSH_BYTES = 1 << 20
_FLUSH_COUNT = 4096
# From this many records on, a block read is checked by whole blocks rather than record by record.
_BLOCK_CHECK_RECORDS = 32


class BagWriter:
    """Append records to a new bag; the bag appears under its name only when closed.

    ``append`` buffers records and returns their index; bytes are handed to the OS in large
    batches, because nothing is readable before :meth:`close` anyway. ``checksum`` picks the
    sidecar's algorithm (default: XXH3 when ``xxhash`` is installed, else CRC-32).
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        version: int = 2,
        checksum: bytes | None = None,
    ):
        if version not in (1, 2):
            raise ValueError(f"bag table version must be 1 or 2, got {version!r}")
        self.path = files.normpath(filepath)
        if files.exists(self.path):
            raise DatasetExistsError(f"{self.path}: already exists")
        self.version = version
        self._algorithm = checksum or checksums.default_algorithm()
        self._digest = checksums.digest_function(self._algorithm)
        folder, self._name = files.split(self.path)
        self._staging = Staging(folder)
        self._local = self._staging.path(self._name)  # the bag's own path, or its temporary copy
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        try:
            self._fd = os.open(self._local + TMP, flags, 0o666)
        except BaseException:
            self._staging.discard()
            raise
        self._lengths = array("Q")  # record lengths; the end offsets are summed up on close
        self._digests = array("Q")
        self._blocks = checksums.BlockDigests(self._algorithm)
        self._pending: list[bytes] = []
        self._offset = 0
        self._flushed = 0
        self.closed = False

    @property
    def size(self) -> int:
        """Bytes the bag will take once closed."""
        return self._offset + 8 * len(self._lengths) + 8 * self._leading_zero()

    def __len__(self) -> int:
        return len(self._lengths)

    def append(self, record: bytes, flush: bool = False) -> int:
        """Add one record (bytes-like) and return its index."""
        if type(record) is not bytes:
            record = self._as_bytes(record)
        if self.closed:
            raise BagError(f"{self.path}: append to a closed writer")
        self._pending.append(record)
        self._lengths.append(len(record))
        self._offset += len(record)
        if flush or self._offset - self._flushed >= _FLUSH_BYTES or len(self._pending) >= _FLUSH_COUNT:
            self.flush()
        return len(self._lengths) - 1

    def extend(self, records: list[bytes]) -> int:
        """Add several records at once; return the index of the first."""
        if set(map(type, records)) - {bytes}:
            records = [r if type(r) is bytes else self._as_bytes(r) for r in records]
        return self.extend_bytes(records)

    def extend_bytes(self, records: list[bytes]) -> int:
        """:meth:`extend` for records known to be ``bytes`` (a dataset writer checked them)."""
        first = len(self._lengths)
        if not records:
            return first
        if self.closed:
            raise BagError(f"{self.path}: append to a closed writer")
        self._lengths.extend(map(len, records))
        # A temporary view: the array must not be exporting its buffer when it grows again.
        self._offset += int(np.frombuffer(self._lengths, np.uint64, offset=8 * first).sum())
        self._pending += records
        if self._offset - self._flushed >= _FLUSH_BYTES or len(self._pending) >= _FLUSH_COUNT:
            self.flush()
        return first

    def _as_bytes(self, record: Any) -> bytes:
        if isinstance(record, (bytearray, memoryview)):
            return bytes(record)  # a copy, so later changes by the caller cannot reach the file
        raise TypeError(f"{self.path}: records must be bytes, got {type(record).__name__}")

    def flush(self) -> None:
        """Hand buffered records to the OS (they stay unreadable until close)."""
        if self._pending:
            self._digests.extend(map(self._digest, self._pending))
            first = len(self._lengths) - len(self._pending)
            # A temporary view: the array must not be exporting its buffer when it grows again.
            ends = np.cumsum(np.frombuffer(self._lengths, np.uint64, offset=8 * first)) + np.uint64(self._flushed)
            self._blocks.feed(self._pending, ends)
            write_all(self._fd, self._pending, self._offset - self._flushed)
            self._pending = []
            self._flushed = self._offset

    def _leading_zero(self) -> bool:
        # A version 2 table starting with 0 (an empty first record) would read as version 1, so
        # such a bag gets a version 1 table, which readers of both versions understand.
        return self.version == 1 or (len(self._lengths) > 0 and self._lengths[0] == 0)

    def _table(self) -> bytes:
        ends = np.cumsum(np.frombuffer(self._lengths, np.uint64), dtype="<u8")
        return (tables.ZERO_WORD if self._leading_zero() else b"") + ends.tobytes()

    def close(self) -> None:
        """Write the index table and checksums, then give the bag its name."""
        if self.closed:
            return
        self.flush()
        table = self._table()
        write_all(self._fd, [table], len(table))
        os.close(self._fd)
        self.closed = True
        self._blocks.finish()
        sidecar = checksums.encode(self._digests, self._blocks, self._digest(table), self._algorithm)
        write_file_atomic(self._local + checksums.SUFFIX, sidecar)
        os.replace(self._local + TMP, self._local)
        self._staging.publish(last=self._name)

    def abort(self) -> None:
        """Drop everything written so far; the bag never appears."""
        if self.closed:
            return
        os.close(self._fd)
        self.closed = True
        for leftover in (self._local + TMP, self._local + checksums.SUFFIX + TMP):
            if os.path.exists(leftover):
                os.remove(leftover)
        self._staging.discard()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.abort() if exc_type else self.close()


def idx_path_of(path: str) -> str:
    """The ``.idx`` file beside a ``.bag`` file in the split layout."""
    return (path[: -len(".bag")] if path.endswith(".bag") else path) + ".idx"


class BagReader:
    """Random access to the records of a bag.

    ``reader[i]`` is one record (bytes), ``reader[a:b]`` a list of records fetched in one read.
    ``cache_index`` holds the index table in memory (one read at open instead of one per lookup);
    ``cache_data`` holds the whole bag in memory. ``verify`` checks records against the checksum
    sidecar when there is one. ``split`` picks the layout; None looks for an ``.idx`` file.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        cache_index: bool = True,
        cache_data: bool = False,
        verify: bool = True,
        split: bool | None = None,
    ):
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.path, data, split = "<memory>", bytes(source), False
        else:
            self.path, data = files.normpath(source), None
        self._lock = threading.Lock()
        self._file: files.RangedFile | None = None
        self._idx: files.RangedFile | None = None
        self._bounds_array: array[int] | None = None
        self._view: bytes | mmap.mmap | None = None
        self._fetch = self._reopen_and_fetch
        self.closed = False
        try:
            self._open(data, cache_index, cache_data, verify, split)
        except FileNotFoundError as e:
            self.close()
            raise FileNotFoundError(e.errno, f"{e.filename or self.path}: bag file missing", e.filename) from e
        except BaseException:
            self.close()
            raise

    def _open(self, data: bytes | None, cache_index: bool, cache_data: bool, verify: bool, split: bool | None) -> None:
        in_memory = data is not None
        if cache_data and not in_memory:
            data = files.read_whole(self.path)
        self._cached_data = data
        file = files.open_ranged(self.path) if data is None else files.MemoryFile(data, self.path)
        self._file = file
        self._use(file)
        self._bag_size = file.size
        self.split = files.exists(idx_path_of(self.path)) if split is None else split
        cache_index = cache_index or data is not None
        if self.split:
            self._idx = files.open_ranged(idx_path_of(self.path))
            self.table, raw = tables.locate_split(file, self._idx, cache_index)
        else:
            self.table, raw = tables.locate_seed(file, cache_index)
        # Thresher writes checksums for the seed layout only; an in-memory bag has no sidecar.
        self.checksums = self._load_checksums() if verify and not self.split and not in_memory else None
        if raw is not None:
            self._cache_index(raw, file)

    def _load_checksums(self) -> checksums.Checksums | None:
        name = self.path + checksums.SUFFIX
        try:
            content = files.read_whole(name)
        except FileNotFoundError:
            return None
        return checksums.decode(content, self.table.count, name)

    def _cache_index(self, raw: bytes, file: files.RangedFile) -> None:
        table = self.table
        if self.checksums is not None:
            self.checksums.check_table(raw, self.path)
        ends = raw[table.offset - table.table_start :]
        self._bounds_array = tables.load_bounds(table, ends, self.path)
        self._use(file)

    @property
    def size(self) -> int:
        """Bytes of the bag: file size, or for the split layout its records and index entries."""
        if self.split:
            return self.table.data_end + self.table.count * tables.WORD
        return self._bag_size

    def __len__(self) -> int:
        return self.table.count

    def __getitem__(self, index: int | slice | range) -> bytes | list[bytes]:
        count = self.table.count
        if isinstance(index, (slice, range)):
            if index.step not in (None, 1):
                raise ValueError(f"{self.path}: only contiguous slices can be read, got step {index.step}")
            start, stop, _ = slice(index.start, index.stop).indices(count)
            return self.read_range(start, max(start, stop))
        i = operator.index(index)
        if i < 0:
            i += count
        if not 0 <= i < count:
            raise IndexError(f"{self.path}: record {index} out of range for {count} records")
        return self.read(i)

    def _bounds(self, start: int, stop: int) -> Any:
        bounds = self._bounds_array
        if bounds is not None:
            return bounds[start : stop + 1]
        if self._file is None:
            self._reopen()
        file = self._idx or self._file
        assert file is not None, "_reopen opens the file or raises"
        return tables.read_bounds(file, self.table, start, stop, self.path)

    def _reopen_and_fetch(self, start: int, end: int) -> bytes:
        self._reopen()
        return self._fetch(start, end)

    def _reopen(self) -> None:
        # After unpickling (e.g. in a worker process) files open again on first use.
        if self.closed:
            raise BagError(f"{self.path}: read from a closed reader")
        with self._lock:
            if self._file is not None:
                return
            file: files.RangedFile
            if self._cached_data is not None:
                file = files.MemoryFile(self._cached_data, self.path)
            else:
                file = files.open_ranged(self.path)
                if file.size != self._bag_size:
                    file.close()
                    raise CorruptBagError(
                        f"{self.path}: size changed from {self._bag_size} to {file.size} bytes since it was opened"
                    )
            if self.split and self._bounds_array is None:
                self._idx = files.open_ranged(idx_path_of(self.path))
            self._file = file
            self._use(file)

    def _use(self, file: files.RangedFile) -> None:
        # With the index in memory and checked against the file's size, a file that lives in
        # memory can be sliced directly: the offsets cannot run past its end.
        self._fetch = file.read
        view = getattr(file, "view", None)
        self._view = view if view is not None and self._bounds_array is not None else None

    def read(self, index: int) -> bytes:
        """Record ``index`` (0 <= index < len), checked against its checksum when there is one."""
        bounds = self._bounds_array
        view = self._view
        if view is not None and bounds is not None:  # (a view is kept only with the bounds in memory)
            record = view[bounds[index] : bounds[index + 1]]
        elif bounds is not None:
            record = self._fetch(bounds[index], bounds[index + 1])
        else:
            start, end = self._bounds(index, index + 1)
            record = self._fetch(start, end)
        sums = self.checksums
        if sums is not None and sums.digest(record) != sums.digests[index]:
            raise sums.mismatch(index, self.path)
        return record

    def read_range(self, start: int, stop: int) -> list[bytes]:
        """Records ``start..stop-1`` fetched with one ranged read."""
        if stop <= start:
            return []
        if stop - start == 1:
            return [self.read(start)]
        bounds = self._bounds(start, stop)
        lo = bounds[0]
        buffer = self._fetch(lo, bounds[-1])
        records = [buffer[a - lo : b - lo] for a, b in zip(bounds, bounds[1:])]
        sums = self.checksums
        if sums is not None:
            for i, record in enumerate(records, start):
                if sums.digest(record) != sums.digests[i]:
                    raise sums.mismatch(i, self.path)
        return records

    def read_block(self, start: int, stop: int) -> tuple[bytes | memoryview, Any]:
        """Records ``start..stop-1`` as one buffer (one ranged read) and their ``stop - start + 1`` bounds
        relative to it, checked against their checksums: for callers that slice lazily (Arrow arrays).
        The buffer may be a view of the mapped file rather than a copy.

        A long run is checked block by block (one digest per ~64 KiB): the read then widens to the
        whole blocks around the run, and the run comes back as a view of what was read."""
        if stop <= start:
            return b"", np.zeros(1, np.int64)
        sums = self.checksums
        around = sums.blocks_around(start, stop) if sums is not None and stop - start >= _BLOCK_CHECK_RECORDS else None
        first, last = around or (start, stop)
        bounds = np.asarray(self._bounds(first, last), np.int64)
        if around is not None:
            wanted = int(bounds[stop - first] - bounds[start - first])
            if int(bounds[-1] - bounds[0]) - wanted > max(wanted, 2 * checksums.BLOCK_BYTES):
                # A big record shares a block with the run's edge: checking the run record by record is cheaper.
                around, first, last, bounds = None, start, stop, bounds[start - first : stop - first + 1]
        lo, hi = int(bounds[0]), int(bounds[-1])
        # A mapped file is lent, not copied: the bytes go from the page cache straight to the caller's
        # consumer (e.g. a Flight stream); the mapping stays until the last view of it is released.
        buffer = memoryview(self._view)[lo:hi] if self._view is not None else self._fetch(lo, hi)
        bounds = bounds - lo
        if around is None or sums is None:  # (blocks_around found blocks only when there are checksums)
            if sums is not None:
                sums.check_records(buffer, bounds, start, self.path)
            return buffer, bounds
        sums.check_blocks(buffer, bounds, first, self.path)
        if first == start and stop == last:
            return buffer, bounds
        bounds = bounds[start - first : stop - first + 1]
        return memoryview(buffer)[int(bounds[0]) : int(bounds[-1])], bounds - bounds[0]

    def copy(self) -> BagReader:
        """An independent reader of the same bag (shares nothing open)."""
        copy: BagReader = pickle.loads(pickle.dumps(self))
        return copy

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = state["_idx"] = state["_lock"] = state["_fetch"] = state["_view"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._fetch = self._reopen_and_fetch

    def close(self) -> None:
        """Release open files."""
        for file in (self._file, self._idx):
            if file is not None:
                file.close()
        self._file = self._idx = self._view = None
        self._fetch = self._reopen_and_fetch
        self.closed = True

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
