"""Nearest-neighbour queries: the k datapoints a query keeps whose vectors are nearest a query vector.

Works over any store through its own ``query``: a first pass reads (datapoint id, vector) for the rows
the filter keeps at the query's instant and keeps the k nearest; a second reads the selected fields of
those k rows and orders them by distance, adding a ``distance`` column. Without a vector index the
answer is exact (every kept vector is compared, in float64); ties break by datapoint id. With one
(``vector_index``), the graph answers and an exact pass covers what it cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from thresher.core.types import TYPE_METADATA_KEY, FieldType
from thresher.core.vectors import check_query_vector, distances, to_numpy
from thresher.services.metadata.domain_errors import InvalidArgument, NotFound
from thresher.v1 import common_pb2

if TYPE_CHECKING:
    from thresher.services.metadata.store.interface import Store

DISTANCE_COLUMN = "distance"
MAX_K = 100_000
METRICS = {
    common_pb2.DISTANCE_METRIC_UNSPECIFIED: "cosine",
    common_pb2.DISTANCE_METRIC_COSINE: "cosine",
    common_pb2.DISTANCE_METRIC_L2: "l2",
    common_pb2.DISTANCE_METRIC_DOT: "dot",
}


@dataclass(frozen=True)
class Search:
    """A checked nearest clause: what to compare, how, and the query without the clause."""

    field: str
    vector: np.ndarray
    k: int
    metric: str
    exact: bool
    base: common_pb2.Query  # the query with no nearest clause and no limit


def is_nearest(query: common_pb2.Query) -> bool:
    return bool(query.HasField("nearest"))


def plan(store: Store, query: common_pb2.Query) -> Search:
    """Checks the clause and finds the query vector (reading the datapoint's when given a path)."""
    clause = query.nearest
    if not clause.field:
        raise InvalidArgument("a nearest-neighbour query needs a vector field")
    if not 0 < clause.k <= MAX_K:
        raise InvalidArgument(f"k must be between 1 and {MAX_K}, got {clause.k}")
    if clause.metric not in METRICS:
        raise InvalidArgument(f"unknown distance metric {clause.metric}")
    if query.order_by:
        raise InvalidArgument("a nearest-neighbour result is ordered by distance; it cannot also have order_by")
    base = common_pb2.Query()
    base.CopyFrom(query)
    base.ClearField("nearest")
    base.ClearField("limit")
    k = min(clause.k, query.limit) if query.HasField("limit") else clause.k
    dimension = _dimension(store, base, clause.field)
    target = clause.WhichOneof("target")
    if target == "vector":
        try:
            vector = check_query_vector(list(clause.vector.values), dimension)
        except ValueError as error:
            raise InvalidArgument(str(error)) from None
    elif target == "path":
        vector = _vector_at(store, base, clause.field, clause.path)
    else:
        raise InvalidArgument("a nearest-neighbour query needs a query vector or the path of a datapoint")
    return Search(clause.field, vector, k, METRICS[clause.metric], clause.exact, base)


def _dimension(store: Store, base: common_pb2.Query, field: str) -> int:
    if not base.HasField("as_of"):  # the current fields are at hand; an earlier instant needs a read
        for record in store.get_datasource(base.datasource_id).fields:
            if record.name == field and record.vector is not None:
                return record.vector.dimension
    probe = common_pb2.Query(datasource_id=base.datasource_id, select=[common_pb2.SelectItem(field=field)], limit=0)
    if base.HasField("as_of"):
        probe.as_of.CopyFrom(base.as_of)
    schema, batches = store.query(probe)
    for _ in batches:
        pass
    arrow_field = schema.field(field)
    if (arrow_field.metadata or {}).get(TYPE_METADATA_KEY) != FieldType.VECTOR.value.encode():
        kind = (arrow_field.metadata or {}).get(TYPE_METADATA_KEY, b"?").decode()
        raise InvalidArgument(f"nearest needs a vector field; field {field!r} has type {kind}")
    size: int = arrow_field.type.list_size
    return size


def _vector_at(store: Store, base: common_pb2.Query, field: str, path: str) -> np.ndarray:
    lookup = common_pb2.Query(datasource_id=base.datasource_id, select=[common_pb2.SelectItem(field=field)], limit=1)
    lookup.filter.comparison.CopyFrom(
        common_pb2.Comparison(
            field="path", op=common_pb2.COMPARISON_OPERATOR_EQ, value=common_pb2.Value(string_value=path)
        )
    )
    if base.HasField("as_of"):
        lookup.as_of.CopyFrom(base.as_of)
    schema, batches = store.query(lookup)
    rows = pa.Table.from_batches(list(batches), schema=schema)
    if rows.num_rows == 0:
        raise NotFound(f"datapoint {path!r} not found")
    if not rows.column(2)[0].is_valid:
        raise InvalidArgument(f"datapoint {path!r} has no value for field {field!r} to search with")
    vector: np.ndarray = to_numpy(rows.column(2), np.float64)[0]
    return vector


def with_condition(query: common_pb2.Query, condition: common_pb2.Filter) -> common_pb2.Query:
    """``query`` with ``condition`` ANDed to its filter."""
    combined = common_pb2.Query()
    combined.CopyFrom(query)
    if query.HasField("filter"):
        combined.filter.CopyFrom(common_pb2.Filter(all_of=common_pb2.FilterList(filters=[query.filter, condition])))
    else:
        combined.filter.CopyFrom(condition)
    return combined


def has_value(field: str) -> common_pb2.Filter:
    return common_pb2.Filter(
        comparison=common_pb2.Comparison(field=field, op=common_pb2.COMPARISON_OPERATOR_IS_NOT_NULL)
    )


def ids_in(ids: Iterable[int | np.integer[Any]]) -> common_pb2.Filter:
    values = common_pb2.ValueList(values=[common_pb2.Value(int_value=int(i)) for i in ids])
    return common_pb2.Filter(
        comparison=common_pb2.Comparison(field="datapoint_id", op=common_pb2.COMPARISON_OPERATOR_ISIN, values=values)
    )


def paths_in(paths: Iterable[str]) -> common_pb2.Filter:
    values = common_pb2.ValueList(values=[common_pb2.Value(string_value=path) for path in paths])
    return common_pb2.Filter(
        comparison=common_pb2.Comparison(field="path", op=common_pb2.COMPARISON_OPERATOR_ISIN, values=values)
    )


def exact(store: Store, search: Search, among: common_pb2.Filter | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ids and distances of the k nearest vectors the query keeps (and ``among``, when given), nearest first."""
    scan = with_condition(search.base, has_value(search.field))
    if among is not None:
        scan = with_condition(scan, among)
    del scan.select[:]
    scan.select.append(common_pb2.SelectItem(field=search.field))
    _, batches = store.query(scan)
    best_ids, best = np.empty(0, np.int64), np.empty(0, np.float64)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        ids = batch.column(1).to_numpy(zero_copy_only=False)
        found = distances(to_numpy(batch.column(2), np.float32), search.vector, search.metric)
        best_ids, best = top_k(np.concatenate([best_ids, ids]), np.concatenate([best, found]), search.k)
    return best_ids, best


def top_k(ids: np.ndarray, found: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest distances with their ids, sorted by (distance, id)."""
    if len(found) > k:
        # Keep every row tied with the k-th distance so the id tie-break is exact.
        kth = np.partition(found, k - 1)[k - 1]
        keep = found <= kth
        ids, found = ids[keep], found[keep]
    order = np.lexsort((ids, found))[:k]
    return ids[order], found[order]


@dataclass(frozen=True)
class Known:
    """What an index search knows of its winners beyond their ids: their result rows, or else their
    paths, which hold while the datapoint's write marker is still ``marker``."""

    rows: pa.Table | None = None
    paths: list[str] | None = None
    marker: int | None = None


def result(
    store: Store, search: Search, ids: np.ndarray, found: np.ndarray, max_batch_rows: int = 0, known: Known = Known()
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The selected fields of datapoints ``ids`` in that order, with their distances.

    With their ``known`` paths the rows are read by path alone, a seek in the path index each, where
    the filter and a list of ids compare every row the filter keeps (an engine with no index on ids);
    the filter is not applied again only while nothing was written since the search chose them."""
    rows = None
    if known.paths is not None and known.marker is not None and len(ids):
        by_path = common_pb2.Query(datasource_id=search.base.datasource_id)
        by_path.select.extend(search.base.select)
        rows = _bounded(store, with_condition(by_path, paths_in(known.paths)), len(ids))
        if write_marker(store, search.base.datasource_id) != known.marker:
            rows = None  # written meanwhile: read again under the filter
    if rows is None:
        rows = _bounded(store, with_condition(search.base, ids_in(ids)), len(ids))
    schema = _with_distance(rows.schema)
    position = {int(i): n for n, i in enumerate(rows.column(1).to_numpy(zero_copy_only=False))}
    order = [position[int(i)] for i in ids if int(i) in position]
    ordered = rows.take(pa.array(order, pa.int64())) if order else rows.slice(0, 0)
    kept = np.array([d for i, d in zip(ids, found) if int(i) in position], dtype=np.float64)
    table = pa.Table.from_arrays([*ordered.columns, pa.array(kept, pa.float64())], schema=schema)
    return schema, iter(table.to_batches(max_chunksize=max_batch_rows or None))


def write_marker(store: Store, datasource_id: int) -> int | None:
    """The store's write marker for the datasource (a count in memory for a single writer, else its latest
    write id, one index lookup): while it stays the same, nothing was written, so ids computed under it
    still hold. None for a store that cannot tell."""
    read = getattr(store, "write_marker", None) or getattr(store, "last_write_id", None)
    marker: int | None = read(datasource_id) if read is not None else None
    return marker


def _bounded(store: Store, query: common_pb2.Query, max_rows: int) -> pa.Table:
    """``query``'s rows, read as a bounded read: k rows come back as Python values in the caller's
    session where the engine does that cheaper than its Arrow export (DuckDB's hands even ten rows
    to its worker threads and back, about 5 ms on a busy machine: most of a filtered search)."""
    bounded = store.query_bounded(query, max_rows) if max_rows else None
    if bounded is not None:
        schema, kept_batches = bounded
        return pa.Table.from_batches(kept_batches, schema=schema)
    schema, batches = store.query(query)
    return pa.Table.from_batches(list(batches), schema=schema)


def _with_distance(schema: pa.Schema) -> pa.Schema:
    if DISTANCE_COLUMN in schema.names:
        raise InvalidArgument(
            f"a nearest-neighbour result adds a {DISTANCE_COLUMN!r} column; select the field "
            f"named {DISTANCE_COLUMN!r} under another name"
        )
    return schema.append(pa.field(DISTANCE_COLUMN, pa.float64(), nullable=False))


def query(store: Store, query: common_pb2.Query, max_batch_rows: int = 0) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Runs a query with a nearest clause over ``store`` (its ``query`` answers the clause-free parts)."""
    search = plan(store, query)
    ids, found, known = _search(store, search)
    rows = known.rows
    if rows is not None:  # the index's cache of the filter's rows had them: no second statement
        schema = _with_distance(rows.schema)
        table = pa.Table.from_arrays([*rows.columns, pa.array(found, pa.float64())], schema=schema)
        return schema, iter(table.to_batches(max_chunksize=max_batch_rows or None))
    return result(store, search, ids, found, max_batch_rows, known)


def describe(store: Store, query: common_pb2.Query) -> tuple[pa.Schema, int]:
    """The result schema and row count of a query with a nearest clause."""
    search = plan(store, query)
    schema, _ = store.describe(with_condition(search.base, ids_in([])))
    _, candidates = store.describe(with_condition(search.base, has_value(search.field)))
    return _with_distance(schema), min(search.k, candidates)


def _search(store: Store, search: Search) -> tuple[np.ndarray, np.ndarray, Known]:
    """(ids, distances, what the index knows of their rows) of the k nearest."""
    from thresher.services.metadata import vector_index  # it builds on this module

    found = vector_index.search_with_rows(store, search)
    return found if found is not None else (*exact(store, search), Known())
