"""Sharded datasets: one complete dataset per folder ``000000``, ``000001``, ...

``shardstart``/``shardstep`` let k writers (or readers) take every k-th shard. A writer that is
started again on a folder whose write was interrupted keeps the shards that were completed,
discards the one that was not, and goes on from there: ``len(writer)`` says how many datapoints
are already in, so the caller skips that many. On ``s3://`` and ``gs://`` each shard is uploaded
as it closes, ``spec.json`` last, so the same holds there.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from thresher.core.bag import files
from thresher.core.bag import spec as specs
from thresher.core.bag.bag_errors import (
    CorruptBagError,
    DatasetExistsError,
    IncompleteDatasetError,
    MaskError,
    ResumeError,
)
from thresher.core.bag.checksums import SUFFIX as CRC_SUFFIX
from thresher.core.bag.reader import DatasetReader
from thresher.core.bag.writer import DatasetWriter
from thresher.core.bag.writing import TMP

# What an unfinished shard folder may hold; anything else there is not ours to delete.
_LEFTOVERS = (TMP, ".bag", CRC_SUFFIX, ".idx")


def shard_name(number: int) -> str:
    """A shard's folder name: its number padded to 6 digits."""
    return f"{number:06}"


def _check_stepping(shardstart: int, shardstep: int) -> None:
    if shardstart < 0 or shardstep < 1:
        raise ValueError(f"shardstart must be >= 0 and shardstep >= 1, got {shardstart} and {shardstep}")


class ShardedDatasetWriter:
    """Write datapoints into shards of ``shardlen`` datapoints each (one shard if None).

    Each shard is closed, and so complete, as soon as it is full. Run again on the same folder
    after a crash, it resumes after the last complete shard of its own (``shardstart``,
    ``shardstart + shardstep``, ...).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        spec: Mapping[str, str],
        encoders: Mapping[str, Callable[..., Any]] | None,
        shardlen: int | None = None,
        shardstart: int = 0,
        shardstep: int = 1,
    ):
        _check_stepping(shardstart, shardstep)
        if shardlen is not None and shardlen < 1:
            raise ValueError(f"shardlen must be >= 1 or None, got {shardlen}")
        if (shardstart or shardstep > 1) and not shardlen:
            raise ValueError("writing every k-th shard needs a shardlen, so that the shards interleave")
        self.directory = files.normpath(directory)
        self._spec = specs.check_spec(spec)
        specs.codecs(self._spec, encoders, "encoder")  # fail now, not at the first append
        self.encoders = encoders
        self.shardlen = shardlen
        self.shardstep = shardstep
        if files.exists(files.join(self.directory, specs.SPEC_FILE)):
            raise DatasetExistsError(f"{self.directory}: holds an unsharded dataset")
        if not files.is_remote(self.directory):
            os.makedirs(self.directory, exist_ok=True)
        self._writer: DatasetWriter | None = None
        self._done_shards = self._done_length = self._done_size = 0
        self._next = self._resume(shardstart)
        self.closed = False

    def _folder(self, number: int) -> str:
        return files.join(self.directory, shard_name(number))

    def _resume(self, number: int) -> int:
        """Count this writer's complete shards; clear an unfinished one; return where to go on."""
        while files.isdir(self._folder(number)):
            folder = self._folder(number)
            if not files.exists(files.join(folder, specs.SPEC_FILE)):
                self._clear_unfinished(folder)
                break
            with DatasetReader(folder, None, cache_index=False, verify=False) as shard:
                if shard.spec != self._spec:
                    raise ResumeError(f"{folder}: written with spec {shard.spec}, not {self._spec}")
                self._done_shards += 1
                self._done_length += len(shard)
                self._done_size += shard.size
            number += self.shardstep
        later = [n for n in _shard_numbers(self.directory) if n > number and (n - number) % self.shardstep == 0]
        if later:
            raise ResumeError(f"{self._folder(later[0])} exists after the unfinished or missing {self._folder(number)}")
        return number

    def _clear_unfinished(self, folder: str) -> None:
        names = files.listdir(folder)
        foreign = [n for n in names if not n.endswith(_LEFTOVERS)]
        if foreign:
            raise ResumeError(f"{folder}: unfinished shard holds files a writer does not leave: {sorted(foreign)}")
        files.remove_tree(folder)

    @property
    def spec(self) -> dict[str, str]:
        """The spec, keys sorted."""
        return dict(self._spec)

    @property
    def shards(self) -> int:
        """Shards written so far, the open one included."""
        return self._done_shards + (self._writer is not None)

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._done_size + (self._writer.size if self._writer else 0)

    def __len__(self) -> int:
        return self._done_length + (len(self._writer) if self._writer else 0)

    def append(self, datapoint: Mapping[str, Any], flush: bool = False) -> int:
        """Add one datapoint; return its index across this writer's shards."""
        if self._writer is None:
            self._writer = DatasetWriter(self._folder(self._next), self._spec, self.encoders)
        self._writer.append(datapoint, flush)
        index = len(self) - 1
        if self.shardlen and len(self._writer) >= self.shardlen:
            self._finish_shard()
        return index

    def _finish_shard(self) -> None:
        writer, self._writer = self._writer, None
        assert writer is not None, "called only while a shard is open"
        writer.close()
        self._done_shards += 1
        self._done_length += len(writer)
        self._done_size += writer.size
        self._next += self.shardstep

    def flush(self) -> None:
        """Hand buffered records of the open shard to the OS."""
        if self._writer:
            self._writer.flush()

    def close(self) -> None:
        """Close the open shard; a writer that wrote nothing leaves one empty shard (so the spec reads)."""
        if self.closed:
            return
        if self._writer is None and not self._done_shards:
            self._writer = DatasetWriter(self._folder(self._next), self._spec, self.encoders)
        if self._writer is not None:
            self._finish_shard()
        self.closed = True

    def abort(self) -> None:
        """Discard the open shard; complete shards stay, so a later writer resumes after them."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        self.closed = True

    def __enter__(self) -> ShardedDatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.abort() if exc_type else self.close()


def _shard_numbers(directory: str) -> list[int]:
    return sorted(int(name) for name in files.listdir(directory) if name.isascii() and name.isdigit())


class ShardedDatasetReader:
    """Random access across the shards of a sharded dataset, as one :class:`DatasetReader`.

    ``shardstart``/``shardstep`` read every k-th shard only; other options as for DatasetReader.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        decoders: Mapping[str, Callable[..., Any]] | None,
        cache_index: bool = True,
        cache_keys: Iterable[str] = (),
        parallel: bool = False,
        shardstart: int = 0,
        shardstep: int = 1,
        verify: bool = True,
    ):
        _check_stepping(shardstart, shardstep)
        self.directory = files.normpath(directory)
        numbers = self._numbers()
        selected = [self._folder(n) for n in numbers[shardstart::shardstep]]
        if not selected:
            raise MaskError(f"{self.directory}: shardstart {shardstart} selects none of its {len(numbers)} shards")
        options = dict(cache_index=cache_index, cache_keys=tuple(cache_keys), parallel=parallel, verify=verify)
        self.readers = self._open(selected, decoders, options, parallel)
        for reader in self.readers[1:]:
            if reader.spec != self.readers[0].spec:
                raise CorruptBagError(f"{reader.directory}: spec {reader.spec} differs from {self.readers[0].spec}")
        self.stops = []
        total = 0
        for reader in self.readers:
            total += len(reader)
            self.stops.append(total)

    def _folder(self, number: int) -> str:
        return files.join(self.directory, shard_name(number))

    def _numbers(self) -> list[int]:
        try:
            numbers = _shard_numbers(self.directory)
        except FileNotFoundError:
            raise IncompleteDatasetError(f"{self.directory} does not exist") from None
        if not numbers:
            raise IncompleteDatasetError(f"{self.directory}: no shard folders ({shard_name(0)}, ...)")
        for expected, number in enumerate(numbers):
            if number != expected:
                raise IncompleteDatasetError(
                    f"{self._folder(expected)} is missing: the shards stop being consecutive there"
                )
        return numbers

    @staticmethod
    def _open(folders: list[str], decoders: Any, options: dict[str, Any], parallel: bool) -> list[DatasetReader]:
        if not parallel or len(folders) == 1:
            readers = []
            try:
                for folder in folders:
                    readers.append(DatasetReader(folder, decoders, **options))
            except BaseException:
                for reader in readers:
                    reader.close()
                raise
            return readers
        with concurrent.futures.ThreadPoolExecutor(min(32, len(folders))) as pool:
            futures = [pool.submit(DatasetReader, folder, decoders, **options) for folder in folders]
        failed = [error for error in (f.exception() for f in futures) if error is not None]
        if failed:
            for f in futures:
                if f.exception() is None:
                    f.result().close()
            raise failed[0]
        return [f.result() for f in futures]

    @property
    def spec(self) -> dict[str, str]:
        """The spec, keys sorted."""
        return self.readers[0].spec

    @property
    def size(self) -> int:
        """Bytes of all selected shards."""
        return sum(reader.size for reader in self.readers)

    @property
    def shards(self) -> int:
        """Number of shards read."""
        return len(self.readers)

    def __len__(self) -> int:
        return self.stops[-1]

    def _locate(self, i: int) -> tuple[DatasetReader, int]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"{self.directory}: datapoint {i} out of range for {len(self)}")
        shard = bisect.bisect_right(self.stops, i)
        return self.readers[shard], i - (self.stops[shard - 1] if shard else 0)

    def available(self, index: int) -> dict[str, bool | range]:
        """Per key: True for a scalar, ``range(len)`` for a sequence."""
        reader, local = self._locate(index)
        return reader.available(local)

    def __getitem__(self, index: Any) -> dict[str, Any]:
        index, mask = index if type(index) is tuple and len(index) == 2 else (index, None)
        if not isinstance(index, (slice, range)):
            reader, local = self._locate(index.__index__())
            return reader[local] if mask is None else reader[local, mask]
        if index.step not in (None, 1):
            raise MaskError(f"only contiguous slices can be read, got step {index.step}")
        start, stop, _ = slice(index.start, index.stop).indices(len(self))
        parts: list[dict[str, list[Any]]] = []
        offset = 0
        for reader, end in zip(self.readers, self.stops):
            lo, hi = max(start, offset), min(stop, end)
            if lo < hi or not parts and reader is self.readers[-1]:
                window = slice(lo - offset, max(lo, hi) - offset)
                parts.append(reader[window] if mask is None else reader[window, mask])
            offset = end
        merged: dict[str, list[Any]] = {key: [] for key in parts[0]}
        for part in parts:
            for key, values in part.items():
                merged[key].extend(values)
        return merged

    def copy(self) -> ShardedDatasetReader:
        """An independent reader of the same shards."""
        copy: ShardedDatasetReader = pickle.loads(pickle.dumps(self))
        return copy

    def close(self) -> None:
        """Release every shard's files."""
        for reader in self.readers:
            reader.close()

    def __enter__(self) -> ShardedDatasetReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
