"""Writing one dataset: ``spec.json``, ``refs.bag`` and one bag per key (the seed layout).

``spec.json`` is written last, after every bag has its table and its name, so a dataset whose
writer crashed or was never closed has no ``spec.json`` and no reader takes it for complete. A
dataset for an ``s3://`` or ``gs://`` folder is written to a local temporary folder and uploaded on
close, ``spec.json`` last again (see :mod:`thresher.core.bag.staging`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from thresher.core.bag import files
from thresher.core.bag import spec as specs
from thresher.core.bag.bag import BagWriter
from thresher.core.bag.bag_errors import BagError, DatasetExistsError, EncodeError, SpecError
from thresher.core.bag.formats import encode_bytes
from thresher.core.bag.staging import Staging
from thresher.core.bag.writing import TMP, write_file_atomic

_BATCH_BYTES = 4 << 20
_BATCH_POINTS = 1024
_BYTES = frozenset({bytes})


def prepare_directory(directory: str) -> bool:
    """Create ``directory`` or accept an empty one; return whether it was created (never, for a URI)."""
    if files.is_remote(directory):
        if files.isdir(directory):
            raise DatasetExistsError(f"{directory}: not empty; a writer needs a new or empty folder")
        return False
    if os.path.isdir(directory):
        if os.listdir(directory):
            raise DatasetExistsError(f"{directory}: not empty; a writer needs a new or empty folder")
        return False
    if os.path.exists(directory):
        raise DatasetExistsError(f"{directory}: exists and is not a folder")
    os.makedirs(directory)
    return True


class DatasetWriter:
    """Write datapoints (dicts of key -> value) into a new dataset folder.

    ``encoders`` maps type names to functions returning bytes (e.g. ``thresher.encoders``); with
    None, values must already be bytes. Leaving a ``with`` block by an exception discards the
    dataset; otherwise it is closed and complete. ``directory`` may be an ``s3://`` or ``gs://``
    URI: the dataset is then uploaded by :meth:`close`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        spec: Mapping[str, str],
        encoders: Mapping[str, Callable[..., Any]] | None,
    ):
        self.directory = files.normpath(directory)
        self._spec = specs.check_spec(spec)
        encode = specs.codecs(self._spec, encoders, "encoder")
        self._created = prepare_directory(self.directory)
        self._staging = Staging(self.directory)
        self._keys = set(self._spec)
        self._refs, *self._bags = self._open_bags([specs.REFS_BAG, *(f"{key}.bag" for key in self._spec)])
        # Records wait here, one list per key, and reach the bags in batches (see _hand_over).
        self._columns: list[list[bytes]] = [[] for _ in self._spec]
        self._plan = [
            (j, key, specs.is_sequence(t), encode[key], self._columns[j].append)
            for j, (key, t) in enumerate(self._spec.items())
        ]
        self._ref_column: list[bytes] = []
        self._counts = [0] * len(self._spec)  # records so far of each sequence key
        self._packer = msgpack.Packer()  # reused: msgpack.packb builds a new Packer per call
        self._buffered = 0
        self._length = 0
        self.closed = False

    def _open_bags(self, names: list[str]) -> list[BagWriter]:
        """A writer per bag; if one cannot be opened (too many open files), none is left behind."""
        bags: list[BagWriter] = []
        try:
            for name in names:
                bags.append(BagWriter(self._staging.path(name)))
        except BaseException:
            for bag in bags:
                bag.abort()
            self._staging.discard()
            raise
        return bags

    @property
    def spec(self) -> dict[str, str]:
        """The spec, keys sorted."""
        return dict(self._spec)

    @property
    def size(self) -> int:
        """Bytes the dataset's bags will take once closed."""
        self._hand_over()
        return self._refs.size + sum(bag.size for bag in self._bags)

    def __len__(self) -> int:
        return self._length

    def _encode(self, key: str, encode: Callable[..., Any] | None, value: Any) -> bytes:
        # Without an encoder a value must be bytes already; checking before writing keeps appends whole.
        try:
            record = encode_bytes(value) if encode is None else encode(value)
        except Exception as e:
            raise EncodeError(f"key {key!r} ({self._spec[key]}): {e}") from e
        if type(record) is not bytes:
            if not isinstance(record, (bytearray, memoryview)):
                raise EncodeError(
                    f"key {key!r}: the {self._spec[key]} encoder returned {type(record).__name__}, not bytes"
                )
            record = bytes(record)
        return record

    def _check_keys(self, datapoint: Any) -> None:
        if not isinstance(datapoint, Mapping) or datapoint.keys() != self._keys:
            got = sorted(datapoint) if isinstance(datapoint, Mapping) else type(datapoint).__name__
            raise SpecError(f"a datapoint must have exactly the spec's keys {sorted(self._keys)}, got {got}")

    def append(self, datapoint: Mapping[str, Any], flush: bool = False) -> int:
        """Add one datapoint and return its index.

        A value that fails to encode leaves the dataset as it was (the keys done so far are taken
        back). ``flush`` hands buffered bytes to the OS; nothing is readable before :meth:`close`
        either way.
        """
        if self.closed:
            raise BagError(f"{self.directory}: append to a closed writer")
        if type(datapoint) is not dict or len(datapoint) != len(self._plan):
            self._check_keys(datapoint)
        counts = self._counts
        index = self._length
        # A scalar key's record index is the datapoint's index: one record per datapoint.
        refs: list[Any] = [index] * len(counts)
        size = self._buffered
        j = 0
        # One plain loop over the keys: on this path, per-key Python is cheaper than building
        # tuples for C-level helpers (itemgetter, map) for a handful of keys.
        try:
            for j, key, sequence, encode, add in self._plan:
                value = datapoint[key]
                if not sequence:
                    if encode is not None or type(value) is not bytes:
                        value = self._encode(key, encode, value)
                    add(value)
                    size += len(value)
                    continue
                items = value if type(value) is list else list(value)
                if encode is not None or not set(map(type, items)) <= _BYTES:
                    items = [self._encode(key, encode, item) for item in items]
                if items:
                    self._columns[j] += items
                    refs[j] = [counts[j], len(items)]
                    counts[j] += len(items)
                    size += sum(map(len, items))
                else:
                    refs[j] = []
        except BaseException:
            self._take_back(refs[:j])
            self._check_keys(datapoint)  # a missing key surfaces here, as a SpecError
            raise
        self._ref_column.append(self._packer.pack(refs))
        self._buffered = size
        self._length = index + 1
        if flush:
            self.flush()
        elif size >= _BATCH_BYTES or len(self._ref_column) >= _BATCH_POINTS:
            self._hand_over()
        return index

    def _take_back(self, refs: list[Any]) -> None:
        """Undo the records a failed append added for its first ``len(refs)`` keys."""
        for j, ref in enumerate(refs):
            added = 1 if type(ref) is int else (ref[1] if ref else 0)
            if added:
                del self._columns[j][-added:]
            if type(ref) is list:
                self._counts[j] -= added

    def _hand_over(self) -> None:
        # Whole columns go to each bag at once, so per-record bookkeeping runs in C loops.
        for bag, column in zip(self._bags, self._columns):
            if column:
                bag.extend_bytes(column)
                column.clear()
        if self._ref_column:
            self._refs.extend_bytes(self._ref_column)
            self._ref_column.clear()
        self._buffered = 0

    def flush(self) -> None:
        """Hand every buffered record to the OS."""
        self._hand_over()
        for bag in (self._refs, *self._bags):
            bag.flush()

    def close(self) -> None:
        """Finish every bag, then write ``spec.json``: from here on the dataset is complete."""
        if self.closed:
            return
        self._hand_over()
        for bag in (self._refs, *self._bags):
            bag.close()
        write_file_atomic(self._staging.path(specs.SPEC_FILE), specs.dump_spec(self._spec))
        self.closed = True
        self._staging.publish(last=specs.SPEC_FILE)

    def abort(self) -> None:
        """Discard the dataset: remove what was written and, if this writer made it, the folder."""
        if self.closed:
            return
        for bag in (self._refs, *self._bags):
            bag.abort()
        spec_tmp = self._staging.path(specs.SPEC_FILE + TMP)
        if os.path.exists(spec_tmp):
            os.remove(spec_tmp)
        if self._created and not os.listdir(self.directory):
            os.rmdir(self.directory)
        self._staging.discard()
        self.closed = True

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.abort() if exc_type else self.close()
