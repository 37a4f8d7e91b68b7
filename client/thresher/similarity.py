"""Similarity over vector fields for a datasource view: nearest neighbours, vector uploads.

``Datasource`` delegates its similarity methods here, so the view class stays about querying and
writing. A search is restricted to the view: its filter and its ``as_of``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from thresher.core.errors import InvalidArgumentError, QueryError
from thresher.core.types import FieldType
from thresher.core.vectors import METRICS, check_query_vector, vector_array
from thresher.v1 import common_pb2

if TYPE_CHECKING:
    from thresher.results import QueryResult

_METRIC_ENUMS = {
    "cosine": common_pb2.DISTANCE_METRIC_COSINE,
    "l2": common_pb2.DISTANCE_METRIC_L2,
    "dot": common_pb2.DISTANCE_METRIC_DOT,
}


def vector_field(view: Any, field: str) -> str:
    """``field`` when the view's datasource has it as a vector field; a QueryError otherwise."""
    kind = view._shared.field_type(field)
    if kind is not FieldType.VECTOR:
        raise QueryError(f"field '{field}' has type {kind.value}; similarity needs a vector field")
    return field


def nearest_clause(
    view: Any,
    field: str,
    query: Any = None,
    path: str | None = None,
    k: int = 10,
    metric: str = "cosine",
    exact: bool = False,
) -> common_pb2.Nearest:
    """The checked Nearest message of a search."""
    vector_field(view, field)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise QueryError(f"k takes a positive int, got {k!r}")
    if metric not in METRICS:
        raise QueryError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if (query is None) == (path is None):
        raise QueryError("give either a query vector or the path of a datapoint whose vector to search with")
    clause = common_pb2.Nearest(field=field, k=int(k), metric=_METRIC_ENUMS[metric], exact=exact)
    if path is not None:
        clause.path = str(path)
    else:
        clause.vector.values.extend(check_query_vector(query).astype(np.float32).tolist())
    return clause


def nearest(
    view: Any,
    field: str,
    query: Any = None,
    *,
    path: str | None = None,
    k: int = 10,
    metric: str = "cosine",
    exact: bool = False,
) -> QueryResult:
    """The ``k`` datapoints of ``view`` nearest the query, nearest first, with a ``distance`` column."""
    if view.query.order_by:
        raise QueryError("a nearest-neighbour result is ordered by distance; drop order_by from the view")
    clause = nearest_clause(view, field, query, path, k, metric, exact)
    # The service answers min(k, limit) rows, so a limit of k changes nothing but lets the client know
    # the result is small: it comes back in one unary call (or one DoGet), not GetFlightInfo + DoGet.
    limit = clause.k if view.query.limit is None else min(clause.k, view.query.limit)
    spec = dataclasses.replace(view.query, nearest=clause, limit=limit)
    result: QueryResult = view._run(spec, stacklevel=4)
    return result


def create_vector_index(
    view: Any,
    field: str,
    metric: str = "cosine",
    connectivity: int = 0,
    expansion_add: int = 0,
    expansion_search: int = 0,
    timeout: float | None = 3600.0,
) -> dict[str, Any]:
    """Builds the ANN index of ``field`` on the service; returns what the service reports about it.

    A build takes minutes for millions of vectors, so it has its own deadline (``timeout`` seconds,
    None for none) instead of the connection's per-call one; it is never retried.
    """
    import grpc

    from thresher.core import status
    from thresher.v1 import metadata_service_pb2 as ms

    vector_field(view, field)
    if metric not in METRICS:
        raise QueryError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    request = ms.CreateVectorIndexRequest(
        datasource_id=view.id,
        field=field,
        metric=_METRIC_ENUMS[metric],
        connectivity=connectivity,
        expansion_add=expansion_add,
        expansion_search=expansion_search,
    )
    connection = view.connection
    try:
        response = connection.metadata.CreateVectorIndex(
            request,
            metadata=connection._grpc_metadata,  # noqa: SLF001
            timeout=timeout,
        )
    except grpc.RpcError as error:
        raise status.from_grpc_error(error, connection.metadata_address) from None
    return {
        "field": response.field,
        "metric": metric,
        "size": response.size,
        "built_at": response.built_at.ToDatetime(tzinfo=dt.UTC),
        "digest": response.digest,
        "build_seconds": response.build_seconds,
    }


def upload_vectors(
    view: Any, field: str, paths: Any, vectors: Any, dtype: str | None = None, create_missing: bool = False
) -> Any:
    """Writes one vector per path (rows of a 2-D array) into ``field``, atomically, through Flight;
    paths that are not datapoints are refused unless ``create_missing``."""
    from thresher.results import paths_of

    names = paths_of(paths)
    array = vector_array(vectors, dtype)
    if len(names) != len(array):
        raise InvalidArgumentError(f"{len(names)} paths but {len(array)} vectors")
    return view.upload_metadata_from_dataframe(
        pa.table({"path": pa.array(names, pa.string()), field: array}), create_missing=create_missing
    )


@dataclasses.dataclass(frozen=True)
class Duplicates:
    """Groups of near-duplicate datapoints (paths), each in the view's order; the first of a group is its
    representative. ``ds[ds["path"].isin(d.duplicates)]`` selects the rest; ``~`` of that drops them."""

    groups: list[list[str]]

    @property
    def duplicates(self) -> list[str]:
        """Every path but the first of its group: what to drop to keep one of each."""
        return [path for group in self.groups for path in group[1:]]

    @property
    def paths(self) -> list[str]:
        """Every path in any group."""
        return [path for group in self.groups for path in group]

    def __len__(self) -> int:
        return len(self.groups)

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.groups)


def _view_vectors(view: Any, field: str) -> tuple[list[str], np.ndarray]:
    """The paths and vectors (float32, n × d) of the view's datapoints that have a vector."""
    vector_field(view, field)
    result = view[view[field].is_not_null()].select(field).all()
    return result.paths, result.vectors(field, np.float32)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _block_distances(left: np.ndarray, right: np.ndarray, metric: str, right_sq: np.ndarray) -> np.ndarray:
    distances: np.ndarray
    if metric in ("cosine", "dot"):  # for cosine both sides are already unit rows
        distances = 1.0 - left @ right.T
    else:
        squared = (left * left).sum(axis=1)[:, None] - 2.0 * (left @ right.T) + right_sq[None, :]
        distances = np.sqrt(np.maximum(squared, 0.0))
    return distances


def find_duplicates(view: Any, field: str, threshold: float, metric: str = "cosine", block: int = 2048) -> Duplicates:
    """Groups the view's datapoints whose vectors lie within ``threshold`` of each other (linked in chains).

    Exact: every pair is compared, a block of rows at a time, so it suits up to some 10⁵ datapoints.
    """
    if metric not in METRICS:
        raise QueryError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if not isinstance(threshold, int | float) or threshold < 0 or threshold != threshold:
        raise QueryError(f"threshold takes a non-negative number, got {threshold!r}")
    paths, vectors = _view_vectors(view, field)
    vectors = vectors.astype(np.float64)
    if metric == "cosine":
        vectors = _unit_rows(vectors)
    squared = (vectors * vectors).sum(axis=1)
    parent = np.arange(len(paths))
    block = max(1, min(block, (1 << 24) // max(len(paths), 1)))  # a block of distances stays near 128 MiB

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, len(paths), block):
        rows = vectors[start : start + block]
        found = _block_distances(rows, vectors[start:], metric, squared[start:])
        pairs = np.argwhere(found <= threshold)
        for i, j in pairs:
            a, b = root(start + int(i)), root(start + int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[str]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(root(i), []).append(path)
    return Duplicates([members for members in groups.values() if len(members) > 1])


def sample_diverse(view: Any, field: str, n: int, metric: str = "l2", seed: int = 0) -> list[str]:
    """``n`` paths of the view spread over its vectors: greedy farthest-point sampling (k-centres).

    The first pick is chosen at random (``seed``); each next one is the datapoint farthest from all
    picked so far. Deterministic for a given seed and view.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise QueryError(f"n takes a non-negative int, got {n!r}")
    if metric not in METRICS:
        raise QueryError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    paths, vectors = _view_vectors(view, field)
    if n >= len(paths):
        return list(paths)
    vectors = vectors.astype(np.float64)
    if metric == "cosine":
        vectors = _unit_rows(vectors)
    squared = (vectors * vectors).sum(axis=1)
    first = int(np.random.default_rng(seed).integers(len(paths)))
    picked = [first]
    nearest_picked = _block_distances(vectors[first : first + 1], vectors, metric, squared)[0]
    for _ in range(1, n):
        nearest_picked[picked] = -np.inf
        chosen = int(np.argmax(nearest_picked))
        picked.append(chosen)
        nearest_picked = np.minimum(
            nearest_picked, _block_distances(vectors[chosen : chosen + 1], vectors, metric, squared)[0]
        )
    return [paths[i] for i in picked]
