"""Reading one dataset, in the seed layout (``refs.bag``, sequences) or the split one (``.idx``).

A datapoint is located through its ``refs.bag`` record (seed layout) or is simply record ``i`` of
every key (split layout). Every structural fact is checked before it is used, so a damaged dataset
raises :class:`~thresher.core.bag.bag_errors.CorruptBagError` naming the file instead of returning wrong
values.
"""

from __future__ import annotations

import concurrent.futures
import operator
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgpack

from thresher.core.bag import files
from thresher.core.bag import refs as refs_runs
from thresher.core.bag import spec as specs
from thresher.core.bag.bag import BagReader
from thresher.core.bag.bag_errors import CorruptBagError, DecodeError, IncompleteDatasetError, MaskError, SpecError


class _Field:
    """One key of the spec with what reading it needs."""

    __slots__ = ("key", "dtype", "position", "sequence", "bag", "count", "decode")

    def __init__(self, key: str, dtype: str, position: int, bag: BagReader, decode: Callable[..., Any] | None):
        self.key, self.dtype, self.position = key, dtype, position
        self.sequence = specs.is_sequence(dtype)
        self.bag, self.count, self.decode = bag, len(bag), decode


class DatasetReader:
    """Random access to a dataset's datapoints.

    - ``reader[i]``: datapoint ``i`` as a dict; ``reader[i, mask]``: only the keys the mask names,
      a mask value being True or, for a sequence key, a ``range`` of it (fetched in one read).
    - ``reader[a:b]`` / ``reader[a:b, mask]``: dict of key -> list of values.
    - ``cache_index`` holds index tables in memory; ``cache_keys`` holds whole bags (``"refs"``
      included); ``parallel`` fetches the keys of a datapoint on threads (for remote storage);
      ``verify`` checks records against Thresher's checksums when present.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        decoders: Mapping[str, Callable[..., Any]] | None,
        cache_index: bool = True,
        cache_keys: Iterable[str] = (),
        parallel: bool = False,
        verify: bool = True,
    ):
        self.directory = files.normpath(directory)
        self._spec = specs.load_spec(self.directory)
        self.cache_keys = tuple(cache_keys)
        unknown = set(self.cache_keys) - set(self._spec) - {specs.REFS}
        if unknown:
            raise SpecError(f"cache_keys {sorted(unknown)} are not keys of {self._spec}")
        decode = specs.codecs(self._spec, decoders, "decoder")
        options = dict(cache_index=cache_index, verify=verify)
        self._refs: BagReader | None = None
        self._fields: list[_Field] = []
        try:
            self._refs = self._open_refs(options)
            self.split = self._refs is None
            for position, (key, dtype) in enumerate(self._spec.items()):
                self._fields.append(_Field(key, dtype, position, self._bag(f"{key}.bag", key, options), decode[key]))
            self._length = self._check_lengths()
        except BaseException:
            self.close()
            raise
        self.parallel = bool(parallel)
        # Per key, the record of datapoint 0 when the references count up through the whole dataset, or
        # False when they do not; found on the first block read, and only when index tables are cached.
        self._counting: dict[str, int] | bool | None = None if cache_index else False
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _open_refs(self, options: dict[str, Any]) -> BagReader | None:
        """``refs.bag``, or None where there is none: the split layout (tried, not first looked up)."""
        try:
            return BagReader(self._refs_path, cache_data=specs.REFS in self.cache_keys, split=False, **options)
        except FileNotFoundError:
            return None

    @property
    def _refs_path(self) -> str:
        return files.join(self.directory, specs.REFS_BAG)

    def _bag(self, name: str, key: str, options: dict[str, Any]) -> BagReader:
        path = files.join(self.directory, name)
        try:
            return BagReader(path, cache_data=key in self.cache_keys, split=self.split, **options)
        except FileNotFoundError as error:
            missing = error.filename or path
            what = f"{self._refs_path} and {missing} are" if self.split else f"{missing} is"
            raise IncompleteDatasetError(f"{what} missing: the dataset is incomplete") from None

    def _check_lengths(self) -> int:
        refs = self._refs
        if refs is None:  # the split layout
            for field in self._fields:
                if field.sequence:
                    raise CorruptBagError(
                        f"{self.directory}: the split layout has no sequences, but {field.key!r} is {field.dtype}"
                    )
            lengths = {field.bag.path: len(field.bag) for field in self._fields}
            if len(set(lengths.values())) > 1:
                raise CorruptBagError(f"{self.directory}: keys hold different numbers of records {lengths}")
            return min(lengths.values())
        length = len(refs)
        for field in self._fields:
            # Each datapoint adds exactly one record to every scalar key's bag.
            if not field.sequence and len(field.bag) != length:
                raise CorruptBagError(
                    f"{field.bag.path}: {len(field.bag)} records, but {refs.path} has {length} datapoints"
                )
        return length

    @property
    def spec(self) -> dict[str, str]:
        """The spec, keys sorted."""
        return dict(self._spec)

    @property
    def size(self) -> int:
        """Bytes of the dataset's bags."""
        return sum(field.bag.size for field in self._fields) + (self._refs.size if self._refs else 0)

    def __len__(self) -> int:
        return self._length

    # -- locating datapoints -------------------------------------------------------------------

    def _index(self, index: Any) -> int:
        i = operator.index(index)
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError(f"{self.directory}: datapoint {index} out of range for {self._length}")
        return i

    def _refs_of(self, i: int) -> list[Any]:
        if self._refs is None:
            return [i] * len(self._fields)
        return self._decode_refs(i, self._refs.read(i))

    def _decode_refs(self, i: int, raw: bytes | memoryview) -> list[Any]:
        try:
            refs = msgpack.unpackb(raw)
        except Exception:
            refs = None
        if type(refs) is not list or len(refs) != len(self._fields):
            raise self._bad_refs(i)
        return refs

    def _bad_refs(self, i: int) -> CorruptBagError:
        path = self._refs.path if self._refs is not None else self._refs_path
        return CorruptBagError(f"{path}: record {i} is not a valid reference list for {self._spec}")

    def _scalar(self, field: _Field, ref: Any, i: int) -> int:
        if type(ref) is not int or not 0 <= ref < field.count:
            raise self._bad_refs(i)
        return ref

    def _sequence(self, field: _Field, ref: Any, i: int) -> tuple[int, int]:
        """(first record, count) of a sequence reference: ``[start, count]``, or ``[]`` when empty."""
        if type(ref) is list:
            if not ref:
                return 0, 0
            if len(ref) == 2:
                begin, count = ref
                if (
                    type(begin) is int
                    and type(count) is int
                    and 0 <= begin
                    and 0 <= count
                    and begin + count <= field.count
                ):
                    return begin, count
        raise self._bad_refs(i)

    def available(self, index: int) -> dict[str, bool | range]:
        """Per key: True for a scalar, ``range(len)`` of the sequence for a sequence key."""
        i = self._index(index)
        refs = self._refs_of(i)
        return {f.key: range(self._sequence(f, refs[f.position], i)[1]) if f.sequence else True for f in self._fields}

    # -- reading -------------------------------------------------------------------------------

    def __getitem__(self, index: Any) -> dict[str, Any]:
        mask = None
        if type(index) is tuple:
            if len(index) != 2:
                raise MaskError(f"index a dataset with i, (i, mask), a:b or (a:b, mask), got {index!r}")
            index, mask = index
            mask = self._check_mask(mask)
        if isinstance(index, (slice, range)):
            return self._read_slice(index, mask)
        return self._read_point(self._index(index), mask)

    def _check_mask(self, mask: Any) -> Mapping[str, Any]:
        if isinstance(mask, (list, tuple, set, frozenset)):  # the newer granular API: a list of keys
            mask = dict.fromkeys(mask, True)
        if not isinstance(mask, Mapping):
            raise MaskError(f"a mask is a dict of key -> True/False/range, got {type(mask).__name__}")
        for key, value in mask.items():
            dtype = self._spec.get(key)
            if dtype is None:
                raise MaskError(f"mask key {key!r} is not in the spec {self._spec}")
            if isinstance(value, bool):
                continue
            if not specs.is_sequence(dtype) or not isinstance(value, (range, slice)):
                allowed = "True, False or a range" if specs.is_sequence(dtype) else "True or False"
                raise MaskError(f"mask value for {key!r} ({dtype}) must be {allowed}, got {value!r}")
            start = 0 if value.start is None else value.start
            if value.step not in (None, 1) or start < 0 or value.stop is not None and value.stop < start:
                raise MaskError(f"mask range for {key!r} must be a contiguous, non-negative range, got {value!r}")
        return mask

    def _span(self, field: _Field, ref: Any, want: Any, i: int) -> tuple[int, int]:
        """Absolute record range of a sequence reference, cut to the mask's range."""
        begin, count = self._sequence(field, ref, i)
        if want is True:
            return begin, begin + count
        start = min(want.start or 0, count)
        stop = count if want.stop is None else min(want.stop, count)
        return begin + start, begin + max(start, stop)

    def _fetch(self, field: _Field, ref: Any, want: Any, i: int) -> Any:
        if field.sequence:
            records = field.bag.read_range(*self._span(field, ref, want, i))
            return records if field.decode is None else [self._decode(field, r, i) for r in records]
        record = field.bag.read(self._scalar(field, ref, i))
        return record if field.decode is None else self._decode(field, record, i)

    def _decode(self, field: _Field, record: bytes, i: int) -> Any:
        decode = field.decode
        assert decode is not None, "called only for keys with a decoder"
        try:
            return decode(record)
        except Exception as e:
            raise self._decode_error(field, i, e) from e

    def _decode_error(self, field: _Field, i: int, error: Exception) -> DecodeError:
        return DecodeError(f"{field.bag.path}: datapoint {i}, key {field.key!r} ({field.dtype}): {error}")

    def _wanted(self, mask: Mapping[str, Any] | None) -> list[tuple[_Field, Any]]:
        if mask is None:
            return [(f, True) for f in self._fields]
        return [(f, mask[f.key]) for f in self._fields if mask.get(f.key, False) is not False]

    def _read_point(self, i: int, mask: Mapping[str, Any] | None) -> dict[str, Any]:
        refs = self._refs_of(i)
        fetch = self._fetch
        if mask is None and not self.parallel:
            return self._read_whole_point(i, refs)
        wanted = self._wanted(mask)
        values: Iterable[Any]
        if self.parallel and len(wanted) > 1:
            values = self._pool_get().map(lambda fw: fetch(fw[0], refs[fw[0].position], fw[1], i), wanted)
        else:
            values = [fetch(f, refs[f.position], want, i) for f, want in wanted]
        return {f.key: value for (f, _), value in zip(wanted, values)}

    def _read_whole_point(self, i: int, refs: list[Any]) -> dict[str, Any]:
        # The common case, kept free of per-key calls: every key, scalars read inline.
        point: dict[str, Any] = {}
        for f in self._fields:
            ref = refs[f.position]
            if f.sequence:
                point[f.key] = self._fetch(f, ref, True, i)
                continue
            if type(ref) is not int or not 0 <= ref < f.count:
                raise self._bad_refs(i)
            record = f.bag.read(ref)
            if f.decode is None:
                point[f.key] = record
                continue
            try:
                point[f.key] = f.decode(record)
            except Exception as e:
                raise self._decode_error(f, i, e) from e
        return point

    def _read_slice(self, index: slice | range, mask: Mapping[str, Any] | None) -> dict[str, list[Any]]:
        if index.step not in (None, 1):
            raise MaskError(f"only contiguous slices can be read, got step {index.step}")
        start, stop, _ = slice(index.start, index.stop).indices(self._length)
        stop = max(start, stop)
        if self._refs is None:
            all_refs = [[i] * len(self._fields) for i in range(start, stop)]
        else:
            all_refs = [self._decode_refs(i, raw) for i, raw in enumerate(self._refs.read_range(start, stop), start)]
        wanted = self._wanted(mask)
        return {f.key: self._fetch_many(f, [r[f.position] for r in all_refs], want, start) for f, want in wanted}

    def _fetch_many(self, field: _Field, refs: list[Any], want: Any, first: int) -> list[Any]:
        if field.sequence:
            spans = [self._span(field, ref, want, i) for i, ref in enumerate(refs, first)]
        else:
            spans = [(r, r + 1) for r in (self._scalar(field, ref, i) for i, ref in enumerate(refs, first))]
        groups = self._records(field.bag, spans)
        if field.sequence:
            if field.decode is None:
                return groups
            return [[self._decode(field, r, i) for r in group] for i, group in enumerate(groups, first)]
        records = [group[0] for group in groups]
        return records if field.decode is None else [self._decode(field, r, i) for i, r in enumerate(records, first)]

    @staticmethod
    def _records(bag: BagReader, spans: list[tuple[int, int]]) -> list[list[bytes]]:
        """Records of each span; one read when the spans follow each other, as a writer lays them."""
        runs = [s for s in spans if s[0] < s[1]]
        if not all(a[1] == b[0] for a, b in zip(runs, runs[1:])):
            return [bag.read_range(lo, hi) for lo, hi in spans]
        records = bag.read_range(runs[0][0], runs[-1][1]) if runs else []
        out, pos = [], 0
        for lo, hi in spans:
            n = max(0, hi - lo)
            out.append(records[pos : pos + n])
            pos += n
        return out

    def read_blocks(
        self, start: int, stop: int, keys: Iterable[str]
    ) -> dict[str, tuple[Any, Any, list[int] | None] | None]:
        """Per key, its encoded records for datapoints ``start..stop-1`` as one buffer: (buffer, record
        bounds relative to it, records per datapoint for a sequence key else None), or None when those
        records do not lie back to back in the bag (a writer always lays them so). Nothing is decoded:
        this is for callers that hand the bytes on whole, e.g. as Arrow arrays."""
        start, stop, _ = slice(start, stop).indices(self._length)
        stop = max(start, stop)
        fields = {f.key: f for f in self._fields}
        unknown = [key for key in keys if key not in fields]
        if unknown:
            raise SpecError(f"{unknown} are not keys of {self._spec}")
        if self._refs is None:
            return {key: (*fields[key].bag.read_block(start, stop), None) for key in keys}
        if self._counting is None:
            self._counting = self._counting_refs(*self._refs.read_block(0, self._length), 0, self._length) or False
        counting = self._counting
        firsts: dict[str, int] | None
        if isinstance(counting, dict) and counting:
            firsts = {key: base + start for key, base in counting.items()}
        else:
            buffer, bounds = self._refs.read_block(start, stop)
            firsts = self._counting_refs(buffer, bounds, start, stop)
        if firsts is not None:
            return {key: (*fields[key].bag.read_block(firsts[key], firsts[key] + stop - start), None) for key in keys}
        view, ends = memoryview(buffer), bounds.tolist()
        refs = [self._decode_refs(i, view[ends[i - start] : ends[i - start + 1]]) for i in range(start, stop)]
        return {key: self._block(fields[key], [r[fields[key].position] for r in refs], start) for key in keys}

    def _counting_refs(self, buffer: Any, bounds: Any, start: int, stop: int) -> dict[str, int] | None:
        """Per key, the record of datapoint ``start`` when every key is scalar and the references of
        ``start..stop-1`` count up by one from there (as writers lay them), checked in one compare; else None."""
        if stop <= start or any(f.sequence for f in self._fields):
            return None
        first = self._decode_refs(start, memoryview(buffer)[: int(bounds[1])])
        bases = [self._scalar(f, first[f.position], start) for f in self._fields]
        if any(base + stop - start > f.count for base, f in zip(bases, self._fields)):
            return None
        if not refs_runs.is_counting_run(buffer, bounds, bases):
            return None
        return {f.key: base for f, base in zip(self._fields, bases)}

    def _block(
        self, field: _Field, refs: list[Any], first: int
    ) -> tuple[bytes | memoryview, Any, list[int] | None] | None:
        if field.sequence:
            spans = [self._span(field, ref, True, i) for i, ref in enumerate(refs, first)]
        else:
            spans = [(r, r + 1) for r in (self._scalar(field, ref, i) for i, ref in enumerate(refs, first))]
        runs = [span for span in spans if span[0] < span[1]]
        if not all(a[1] == b[0] for a, b in zip(runs, runs[1:])):
            return None
        buffer, bounds = field.bag.read_block(*((runs[0][0], runs[-1][1]) if runs else (0, 0)))
        return buffer, bounds, [hi - lo for lo, hi in spans] if field.sequence else None

    # -- lifecycle -----------------------------------------------------------------------------

    def _pool_get(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(len(self._fields))
        return self._pool

    def copy(self) -> DatasetReader:
        """An independent reader of the same dataset."""
        copy: DatasetReader = pickle.loads(pickle.dumps(self))
        return copy

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    def close(self) -> None:
        """Release open files and threads."""
        pool = getattr(self, "_pool", None)  # absent when __init__ failed early
        if pool is not None:
            pool.shutdown(wait=False)
            self._pool = None
        for bag in [self._refs, *(f.bag for f in self._fields)]:
            if bag is not None:
                bag.close()

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
