"""Approximate nearest-neighbour indexes over vector fields, correct under any filter.

The index is a usearch HNSW graph keyed by datapoint id. It is chosen over FAISS and hnswlib because
it installs as one small wheel with no BLAS or compiler, serializes to one buffer (which the blob
store keeps, so every replica can load it), and searches and builds multi-threaded from numpy.

Where it lives: the index bytes are a blob (content-addressed, in the blob store beside the embedded
store or in the shared object storage of a deployment); a small pointer object per (datasource,
field) in the same storage names the current one. A replica loads an index the first time it needs
it and again only when the pointer names another.

Staleness rule: an index holds the vectors as they were when its build started (``built_at``); the
build also notes the writes it saw committed in the ``STALE_SLACK`` before that instant. A datapoint
whose log shows any other write from ``built_at − STALE_SLACK`` on is *stale*: its index entry is
ignored and its current vector is compared exactly instead. (The slack covers writes whose time was
taken before ``built_at`` but that committed after the build read the vectors; a write that stays
uncommitted longer than the slack could be missed until the next build.) So a search never misses a new vector and
never uses an old one; the index only gets slower as it ages. Once more than ``REBUILD_FRACTION`` of it
is stale, the service rebuilds it in the background (one rebuild at a time per index and process).

Filters: the search first reads the ids the view's filter keeps (current state, vector present). When
few are left (below ``EXACT_BELOW`` or ``EXACT_FRACTION`` of the index), it compares them all exactly,
with the vectors the index holds (the stored float32 values; no second read of the store).
Otherwise it asks the graph for enough neighbours that k of them should pass the filter and, while
fewer than k do, asks for more; if that still falls short it answers exactly. So a search returns k
results whenever k datapoints match. When the query selects small scalar fields only, the read of
the kept ids also reads their result rows, and the winners' rows are taken from those (no second
statement per search).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from thresher.core.types import FieldType
from thresher.core.vectors import distances, to_numpy
from thresher.services.metadata import nearest
from thresher.services.metadata.domain_errors import InvalidArgument, NotFound
from thresher.v1 import common_pb2

if TYPE_CHECKING:
    from usearch.index import BatchMatches, Index, Matches

    from thresher.services.metadata.store.interface import Store
    from thresher.services.metadata.store.records import DatasourceRecord, FieldRecord

log = logging.getLogger(__name__)

STALE_SLACK = dt.timedelta(seconds=60)  # a write's time is taken before it commits; allow this much
REBUILD_FRACTION = 0.1
EXACT_BELOW = 512
EXACT_FRACTION = 0.02
OVERSAMPLE = 2.0
POINTER_TTL = 2.0  # seconds a replica trusts the pointer it read (object storage reads cost a round trip)
# At 1M x 128-d clustered vectors (benchmarks/similarity.py): a graph built with expansion_add 64 capped
# recall@10 at 0.92-0.96 whatever expansion_search; with 128 (build 366 s instead of 289 s on 2 cores)
# and expansion_search 256 (about 1.5 ms a search) recall was 0.998 keeping 100% and 1.000 keeping 10%.
# A narrower search does not pay: 128 cost recall 0.968 where 256 gave 0.989 in another build of the
# same vectors, for 0.3 ms less a search; OVERSAMPLE 1 left a third of 10% searches short of k at first.
DEFAULTS = {"connectivity": 16, "expansion_add": 128, "expansion_search": 256}
ALLOWED_CACHE = 8  # filters whose kept ids are remembered per field, while the store sees no write
# What the result rows kept with those ids (see _Kept.rows) may take in all, per field: 1M rows of a
# path and two numbers take about 30 MB.
ROWS_CACHE_BYTES = 256 * 2**20
# Field types whose values a cached result row holds cheaply (a vector or an annotation could make
# the rows of a large view weigh gigabytes).
_ROW_CACHE_TYPES = {FieldType.INT, FieldType.FLOAT, FieldType.BOOL, FieldType.STRING, FieldType.DATETIME}
_USEARCH_METRICS = {"cosine": "cos", "l2": "l2sq", "dot": "ip"}
_ROOT = "vector-indexes"


@dataclasses.dataclass(frozen=True)
class Pointer:
    """What the pointer object of an index says."""

    field: str
    metric: str
    digest: str
    built_at: dt.datetime
    size: int
    dimension: int
    params: dict[str, int]
    known_writes: list[int] = dataclasses.field(default_factory=list)  # writes of the slack window the index holds

    def to_json(self) -> bytes:
        return json.dumps({**dataclasses.asdict(self), "built_at": self.built_at.isoformat()}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Pointer:
        raw = json.loads(data)
        return cls(**{**raw, "built_at": dt.datetime.fromisoformat(raw["built_at"])})


@dataclasses.dataclass
class _Kept:
    """What a filter keeps, as of one store marker: everything a search under it needs but the graph."""

    fresh: np.ndarray  # sorted ids the filter keeps that the index holds as they are now (not stale)
    mask: np.ndarray  # bool by datapoint id: True for the ids in `fresh` (one lookup per graph key)
    changed: np.ndarray  # sorted ids the filter keeps that are stale: compared exactly from the store
    matrix: np.ndarray | None = None  # float64 vectors of `fresh`, row by row, once an exact pass needed them
    norms: np.ndarray | None = None  # their Euclidean norms, once a cosine search needed them
    # The query's result rows (its select; no distance) of every kept id, in id order, when its
    # columns are small scalars: the k winners are then taken from here, with no second statement.
    rows: pa.Table | None = None
    # The datasource record the rows were read under: their schema carries its scan state.
    record: DatasourceRecord | None = None
    # Every kept id, fresh or stale, sorted: the ids of `rows`, row by row.
    all_ids: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, np.int64))
    # Their paths, row by row, when `rows` is not kept: the winners' rows are then read by path, which
    # the engines look up in their path index, where a list of ids is compared with every kept row.
    paths: pa.Array | None = None


@dataclasses.dataclass
class _Loaded:
    digest: str
    index: Index
    stale: np.ndarray  # sorted ids of stale datapoints, as of `checked`
    checked: int | None = None  # the store's last-write marker when `stale` was computed
    # filter and select -> (marker, what it keeps), oldest first
    kept: dict[bytes, tuple[int, _Kept]] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


# Per store (a process may open several), per (datasource, field): the loaded index.
# Keys and values: ("created", datasource id) -> creation time in µs, ("pointer", datasource id, field) ->
# (when read, Pointer | None), (datasource id, field) -> _Loaded.
_StoreCache = dict[tuple[Any, ...], Any]
_loaded: weakref.WeakKeyDictionary[Store, _StoreCache] = weakref.WeakKeyDictionary()
_rebuilding: set[tuple[int, int, str]] = set()
_rebuild_lock = threading.Lock()


def _pointer_key(store: Store, datasource_id: int, field: str) -> str:
    # Ids are never reused, so a datasource's creation time can be remembered; it keeps a pointer of a
    # deleted datasource from ever naming an index of another store sharing the storage.
    cache = _cache(store)
    created = cache.get(("created", datasource_id))
    if created is None:
        created = cache[("created", datasource_id)] = int(
            store.get_datasource(datasource_id).created_at.timestamp() * 1_000_000
        )
    # Field names may hold any character; the key uses their hex form.
    return f"{_ROOT}/{datasource_id}-{created}/{field.encode().hex()}.json"


def _read_pointer(store: Store, datasource_id: int, field: str) -> Pointer | None:
    """The field's current pointer, read at most every ``POINTER_TTL`` seconds per process: an older one
    is still correct (its index only has more stale datapoints), so caching it costs no correctness."""
    cache = _cache(store)
    cached = cache.get(("pointer", datasource_id, field))
    if cached is not None and time.monotonic() - cached[0] < POINTER_TTL:
        remembered: Pointer | None = cached[1]
        return remembered
    pointer = _fetch_pointer(store, datasource_id, field)
    cache[("pointer", datasource_id, field)] = (time.monotonic(), pointer)
    return pointer


def _fetch_pointer(store: Store, datasource_id: int, field: str) -> Pointer | None:
    storage = store._blobs.storage  # noqa: SLF001 - the index lives beside the store's blobs
    key = _pointer_key(store, datasource_id, field)
    try:
        return Pointer.from_json(storage.read(key))
    except (FileNotFoundError, KeyError):
        return None
    except Exception as error:  # a storage's own not-found error
        if "not found" in str(error).lower() or type(error).__name__.endswith("NotFoundError"):
            return None
        raise


def _field(store: Store, datasource_id: int, name: str) -> FieldRecord:
    for field in store.get_datasource(datasource_id).fields:
        if field.name == name:
            if field.type is not FieldType.VECTOR:
                raise InvalidArgument(
                    f"a vector index needs a vector field; field {name!r} has type {field.type.value}"
                )
            return field
    raise NotFound(f"field {name!r} not found in datasource {datasource_id}")


def build(
    store: Store,
    datasource_id: int,
    field: str,
    metric: str = "cosine",
    connectivity: int = 0,
    expansion_add: int = 0,
    expansion_search: int = 0,
) -> tuple[Pointer, float]:
    """Builds the index of ``field`` from its current vectors, stores it, and points replicas at it."""
    try:
        from usearch.index import Index
    except ImportError:
        raise InvalidArgument(
            "vector indexes need the usearch package on the metadata service (pip install 'thresher[vectors]')"
        ) from None

    record = _field(store, datasource_id, field)
    if metric not in _USEARCH_METRICS:
        raise InvalidArgument(f"unknown metric {metric!r}")
    params = {
        "connectivity": connectivity or DEFAULTS["connectivity"],
        "expansion_add": expansion_add or DEFAULTS["expansion_add"],
        "expansion_search": expansion_search or DEFAULTS["expansion_search"],
    }
    if min(params.values()) < 2 or max(params.values()) > 4096:
        raise InvalidArgument(f"index parameters must be between 2 and 4096, got {params}")
    started = time.perf_counter()
    built_at = dt.datetime.now(dt.UTC)  # before the read: later writes count as stale
    known_writes = sorted(
        {int(w) for w in store.changes(datasource_id, built_at - STALE_SLACK, None).column("write_id").to_pylist()}
    )
    if record.vector is None:  # a vector field's first write fixes its dimension, so it has one once it exists
        raise InvalidArgument(f"vector field {field!r} has no dimension yet: write its first values before indexing it")
    dimension = record.vector.dimension
    index = Index(
        ndim=dimension,
        metric=_USEARCH_METRICS[metric],
        dtype="f32",
        connectivity=params["connectivity"],
        expansion_add=params["expansion_add"],
        expansion_search=params["expansion_search"],
    )
    scan = common_pb2.Query(datasource_id=datasource_id, select=[common_pb2.SelectItem(field=field)])
    scan.filter.CopyFrom(nearest.has_value(field))
    _, batches = store.query(scan)
    threads = os.cpu_count() or 1
    added, reported = 0, started
    for batch in batches:
        if batch.num_rows:
            ids = batch.column(1).to_numpy(zero_copy_only=False).astype(np.uint64)
            index.add(ids, to_numpy(batch.column(2), np.float32), threads=threads)
            added += batch.num_rows
            if time.perf_counter() - reported > 10:  # a build of millions takes minutes: say how far it is
                log.info("vector index of %r: %d vectors added in %.0f s", field, added, time.perf_counter() - started)
                reported = time.perf_counter()
    saved = index.save()  # without a path: the serialized index
    if saved is None:
        raise RuntimeError(f"usearch serialized no index of field {field!r}")
    digest = store._blobs.put(bytes(saved))  # noqa: SLF001
    pointer = Pointer(field, metric, digest, built_at, len(index), dimension, params, known_writes)
    store._blobs.storage.write(_pointer_key(store, datasource_id, field), pointer.to_json())  # noqa: SLF001
    cache = _cache(store)
    cache[(datasource_id, field)] = _Loaded(digest, index, np.empty(0, np.int64))
    cache[("pointer", datasource_id, field)] = (time.monotonic(), pointer)
    return pointer, time.perf_counter() - started


def _cache(store: Store) -> _StoreCache:
    try:
        return _loaded.setdefault(store, {})
    except TypeError:  # a store that cannot be weakly referenced: cache nothing
        return {}


def _load(store: Store, datasource_id: int, field: str, pointer: Pointer) -> _Loaded:
    cache = _cache(store)
    loaded: _Loaded | None = cache.get((datasource_id, field))
    if loaded is None or loaded.digest != pointer.digest:
        from usearch.index import Index

        index = Index.restore(bytearray(store._blobs.get(pointer.digest)), view=False)  # noqa: SLF001
        if index is None:
            raise RuntimeError(f"blob {pointer.digest} named by the index pointer of {field!r} is not a usearch index")
        # usearch defines this setter apart from its getter, so mypy takes the property for read-only.
        index.expansion_search = pointer.params.get(  # type: ignore[misc]
            "expansion_search", DEFAULTS["expansion_search"]
        )
        loaded = cache[(datasource_id, field)] = _Loaded(pointer.digest, index, np.empty(0, np.int64))
    return loaded


def _stale_ids(store: Store, datasource_id: int, pointer: Pointer, loaded: _Loaded, marker: int | None) -> np.ndarray:
    """Ids of datapoints written since the build (less the slack); cached while the store has no new write."""
    with loaded.lock:
        if marker is not None and loaded.checked is not None and marker == loaded.checked:
            return loaded.stale
        changes = store.changes(datasource_id, pointer.built_at - STALE_SLACK, None)
        known = set(pointer.known_writes)
        paths = list(
            dict.fromkeys(
                path
                for path, write in zip(changes.column("path").to_pylist(), changes.column("write_id").to_pylist())
                if write not in known
            )
        )
        stale = np.empty(0, np.int64)
        if paths:
            query = common_pb2.Query(datasource_id=datasource_id, select=[common_pb2.SelectItem(field="datapoint_id")])
            query.filter.comparison.CopyFrom(
                common_pb2.Comparison(
                    field="path",
                    op=common_pb2.COMPARISON_OPERATOR_ISIN,
                    values=common_pb2.ValueList(values=[common_pb2.Value(string_value=p) for p in paths]),
                )
            )
            stale = np.sort(_ids(store, query))
        loaded.stale, loaded.checked = stale, marker
        return stale


def _ids(store: Store, query: common_pb2.Query) -> np.ndarray:
    _, batches = store.query(query)
    parts = [batch.column(1).to_numpy(zero_copy_only=False) for batch in batches if batch.num_rows]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)


def search(store: Store, search: nearest.Search) -> tuple[np.ndarray, np.ndarray] | None:
    """The k nearest (ids, distances) through the field's index; None when no index fits this search."""
    found = search_with_rows(store, search)
    return None if found is None else (found[0], found[1])


def search_with_rows(store: Store, search: nearest.Search) -> tuple[np.ndarray, np.ndarray, nearest.Known] | None:
    """``search``'s (ids, distances), and what is known of them: the result rows of those ids in that
    order (the query's columns, no distance) when the filter's kept rows are cached, or else their paths,
    to read the rows by; None when no index fits this search."""
    if search.exact or search.base.HasField("as_of") or any(i.HasField("as_of") for i in search.base.select):
        return None
    datasource_id = search.base.datasource_id
    pointer = _read_pointer(store, datasource_id, search.field)
    if pointer is None or pointer.metric != search.metric or pointer.dimension != len(search.vector):
        return None
    try:
        import usearch.index  # noqa: F401
    except ImportError:  # a replica without usearch answers exactly, which is only slower
        return None
    loaded = _load(store, datasource_id, search.field, pointer)
    marker = nearest.write_marker(store, datasource_id)  # one read per search: stale ids and kept ids both key on it
    stale = _stale_ids(store, datasource_id, pointer, loaded, marker)
    if len(stale) > REBUILD_FRACTION * max(pointer.size, 1):
        _rebuild_in_background(store, datasource_id, pointer)
    kept = _kept(store, search, loaded, stale, marker)
    few = max(EXACT_BELOW, EXACT_FRACTION * pointer.size, search.k)
    found = None
    if len(kept.fresh) <= few:
        found = _exact_from_index(loaded, search, kept)
    if found is None:
        found = _graph_search(loaded, search, kept, pointer.size)
    if found is None:  # the graph could not give k of them: compare them all
        found = _exact_from_index(loaded, search, kept)
    ids, dists = found
    if len(kept.changed):
        exact_ids, exact_dists = nearest.exact(store, search, among=nearest.ids_in(kept.changed))
        ids, dists = nearest.top_k(np.concatenate([ids, exact_ids]), np.concatenate([dists, exact_dists]), search.k)
    rows = _rows_of(kept, ids)
    if rows is not None:
        return ids, dists, nearest.Known(rows=rows)
    return ids, dists, nearest.Known(paths=_paths_of(kept, ids), marker=marker)


def _rows_of(kept: _Kept, ids: np.ndarray) -> pa.Table | None:
    """The cached result rows of ``ids`` (all kept by the filter), in that order; None when not cached."""
    if kept.rows is None:
        return None
    at = _positions(kept, ids)
    return None if at is None else kept.rows.take(at)


def _paths_of(kept: _Kept, ids: np.ndarray) -> list[str] | None:
    """The paths of ``ids`` (all kept by the filter), in that order; None when they are not kept."""
    if kept.paths is None:
        return None
    at = _positions(kept, ids)
    return None if at is None else [str(path) for path in kept.paths.take(at).to_pylist()]


def _positions(kept: _Kept, ids: np.ndarray) -> pa.Array | None:
    """Where ``ids`` stand among every kept id (the rows of ``kept.rows`` and ``kept.paths``); None when
    one is not there, which cannot happen (the winners are kept ids): the statement by ids answers then."""
    at = np.searchsorted(kept.all_ids, ids)
    if np.any(at >= len(kept.all_ids)) or not np.array_equal(kept.all_ids[np.minimum(at, len(kept.all_ids) - 1)], ids):
        return None
    return pa.array(at, pa.int64())


def _exact_from_index(loaded: _Loaded, search: nearest.Search, kept: _Kept) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances to the fresh ids (all held by the index) from the vectors the index keeps, which
    are the stored float32 values: no read of the store. The vectors are gathered once per filter and
    store marker, into one contiguous matrix, so repeated searches of a selective view cost one product."""
    ids = kept.fresh
    if len(ids) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    matrix = kept.matrix
    if matrix is None:
        # usearch types get() for one key and for many at once (None for a missing one); these ids are all held.
        gathered = loaded.index.get(ids.astype(np.uint64))
        matrix = kept.matrix = np.ascontiguousarray(np.stack(gathered), dtype=np.float64)  # type: ignore[arg-type]
    if search.metric == "cosine" and kept.norms is None:
        kept.norms = np.linalg.norm(matrix, axis=1)  # half the work of a cosine search, kept with the matrix
    found = distances(matrix, search.vector, search.metric, row_norms=kept.norms)
    return nearest.top_k(ids, found, search.k)


def _kept(store: Store, search: nearest.Search, loaded: _Loaded, stale: np.ndarray, marker: int | None) -> _Kept:
    """What the search's filter keeps now (vector present; no filter keeps every datapoint with one),
    split into ids the index holds as they are and stale ones. A view is usually searched many times
    over; while the datasource's latest write id stays the same (any replica, any engine), the answer
    is remembered for the next search with the same filter and select. Deleted datapoints drop out
    here too, as the read is of the current state.

    When the select is of small scalar fields, the same statement reads the result rows of every kept
    id, kept with them, so that a search's winners need no second statement: a lookup of k ids by a
    list scans the whole table in an engine without an index on them (DuckDB), about as long as this
    read, on every search."""
    query = nearest.with_condition(search.base, nearest.has_value(search.field))
    record = store.get_datasource(search.base.datasource_id)
    with_rows = marker is not None and _rows_cacheable(record, search.base)
    if not with_rows:
        del query.select[:]
        query.select.append(common_pb2.SelectItem(field="datapoint_id"))
    key: bytes = query.SerializeToString(deterministic=True)
    if marker is not None:
        with loaded.lock:
            hit = loaded.kept.get(key)
            # The record too: its scan state is in the rows' schema, and may change with no write.
            if hit is not None and hit[0] == marker and (hit[1].rows is None or hit[1].record == record):
                return hit[1]
    schema, batches = store.query(query)
    table = pa.Table.from_batches(list(batches), schema=schema)
    allowed = table.column(1).to_numpy(zero_copy_only=False).astype(np.int64)
    if np.any(np.diff(allowed) < 0):  # the engine's order is not promised; the cached rows follow the ids
        order = np.argsort(allowed, kind="stable")
        allowed, table = allowed[order], table.take(pa.array(order, pa.int64()))
    # One chunk: a take of k rows then touches k rows, where over many chunks it may join them first.
    rows = table.combine_chunks() if with_rows and table.nbytes <= ROWS_CACHE_BYTES else None
    paths = table.column(0).combine_chunks() if rows is None else None  # every result leads with the path
    if len(stale):
        fresh = np.setdiff1d(allowed, stale, assume_unique=True)
        changed = np.intersect1d(stale, allowed, assume_unique=True)
    else:
        fresh, changed = allowed, stale
    mask = np.zeros(int(fresh[-1]) + 1 if len(fresh) else 0, dtype=bool)
    mask[fresh] = True
    kept = _Kept(
        fresh, mask, changed, rows=rows, record=record if rows is not None else None, all_ids=allowed, paths=paths
    )
    if marker is not None:
        with loaded.lock:
            loaded.kept.pop(key, None)
            loaded.kept[key] = (marker, kept)
            while len(loaded.kept) > ALLOWED_CACHE or (len(loaded.kept) > 1 and _rows_bytes(loaded) > ROWS_CACHE_BYTES):
                loaded.kept.pop(next(iter(loaded.kept)))
    return kept


def _rows_bytes(loaded: _Loaded) -> int:
    return sum(
        (kept.rows.nbytes if kept.rows is not None else 0) + (kept.paths.nbytes if kept.paths is not None else 0)
        for _, kept in loaded.kept.values()
    )


def _rows_cacheable(record: DatasourceRecord, base: common_pb2.Query) -> bool:
    """Whether the result rows of every datapoint ``base`` keeps are cheap to keep: each selected field
    (every field, when it selects none or "*") is a small scalar."""
    types = {field.name: field.type for field in record.fields}
    if not base.select or any(item.field == "*" for item in base.select):
        return all(kind in _ROW_CACHE_TYPES for kind in types.values())
    return all(
        item.field in ("path", "datapoint_id") or types.get(item.field) in _ROW_CACHE_TYPES for item in base.select
    )


def _graph_search(
    loaded: _Loaded, search: nearest.Search, kept: _Kept, size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The k nearest of the graph among the filter's fresh ids, or None when the graph cannot give k of them.

    It over-fetches (``OVERSAMPLE`` times what the filter's share of the index should yield) and keeps
    the keys the filter's id mask allows; while fewer than k pass it asks for four times as many."""
    query = search.vector.astype(np.float32)
    if len(kept.fresh) < search.k:
        return None
    count = min(size, int(math.ceil(search.k * OVERSAMPLE * size / max(len(kept.fresh), 1))) + 16)
    mask = kept.mask
    while True:
        index = loaded.index
        breadth = max(index.expansion_search, count)
        matches = (
            index.search(query, count, exact=False)
            if breadth == index.expansion_search
            else _search_wider(loaded, query, count, breadth)
        )
        keys = np.asarray(matches.keys, dtype=np.int64)
        dists = np.asarray(matches.distances, dtype=np.float64)
        inside = (keys >= 0) & (keys < len(mask))
        keep = np.zeros(len(keys), dtype=bool)
        keep[inside] = mask[keys[inside]]
        if keep.sum() >= search.k:
            keys, dists = keys[keep], dists[keep]
            if search.metric == "l2":
                dists = np.sqrt(np.maximum(dists, 0.0))
            return nearest.top_k(keys, dists, search.k)
        if count >= size:
            return None
        count = min(size, count * 4)


def _search_wider(loaded: _Loaded, query: np.ndarray, count: int, breadth: int) -> Matches | BatchMatches:
    # HNSW finds `count` neighbours well only when it explores at least that many candidates.
    with loaded.lock:
        saved = loaded.index.expansion_search
        # usearch defines this setter apart from its getter, so mypy takes the property for read-only.
        loaded.index.expansion_search = breadth  # type: ignore[misc]
        try:
            return loaded.index.search(query, count, exact=False)
        finally:
            loaded.index.expansion_search = saved  # type: ignore[misc]


def _rebuild_in_background(store: Store, datasource_id: int, pointer: Pointer) -> None:
    key = (id(store), datasource_id, pointer.field)
    with _rebuild_lock:
        if key in _rebuilding:
            return
        _rebuilding.add(key)

    def work() -> None:
        try:
            build(store, datasource_id, pointer.field, pointer.metric, **pointer.params)
        except Exception:  # noqa: BLE001 - a failed rebuild leaves the old index, still correct
            log.exception("background rebuild of the vector index of %r failed", pointer.field)
        finally:
            with _rebuild_lock:
                _rebuilding.discard(key)

    threading.Thread(target=work, name=f"vector-index-{datasource_id}-{pointer.field}", daemon=True).start()
