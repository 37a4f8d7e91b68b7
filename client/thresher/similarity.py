"""Similarity over vector fields for a datasource view: nearest neighbours, vector uploads.

``Datasource`` delegates its similarity methods here, so the view class stays about querying and
writing. A search is restricted to the view: its filter and its ``as_of``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa

from thresher.errors import InvalidArgumentError, QueryError
from thresher.types import FieldType
from thresher.v1 import common_pb2
from thresher.vectors import METRICS, check_query_vector, vector_array

_METRIC_ENUMS = {"cosine": common_pb2.DISTANCE_METRIC_COSINE, "l2": common_pb2.DISTANCE_METRIC_L2,
                 "dot": common_pb2.DISTANCE_METRIC_DOT}


def vector_field(view: Any, field: str) -> str:
    """``field`` when the view's datasource has it as a vector field; a QueryError otherwise."""
    kind = view._shared.field_type(field)
    if kind is not FieldType.VECTOR:
        raise QueryError(f"field '{field}' has type {kind.value}; similarity needs a vector field")
    return field


def nearest_clause(view: Any, field: str, query: Any = None, path: str | None = None, k: int = 10,
                   metric: str = "cosine", exact: bool = False) -> common_pb2.Nearest:
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


def nearest(view: Any, field: str, query: Any = None, *, path: str | None = None, k: int = 10,
            metric: str = "cosine", exact: bool = False) -> Any:
    """The ``k`` datapoints of ``view`` nearest the query, nearest first, with a ``distance`` column."""
    if view.query.order_by:
        raise QueryError("a nearest-neighbour result is ordered by distance; drop order_by from the view")
    clause = nearest_clause(view, field, query, path, k, metric, exact)
    return view._run(dataclasses.replace(view.query, nearest=clause), stacklevel=4)


def create_vector_index(view: Any, field: str, metric: str = "cosine", connectivity: int = 0,
                        expansion_add: int = 0, expansion_search: int = 0) -> dict[str, Any]:
    """Builds the ANN index of ``field`` on the service; returns what the service reports about it."""
    from thresher.v1 import metadata_service_pb2 as ms

    vector_field(view, field)
    if metric not in METRICS:
        raise QueryError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    response = view.connection.call_metadata("CreateVectorIndex", ms.CreateVectorIndexRequest(
        datasource_id=view.id, field=field, metric=_METRIC_ENUMS[metric], connectivity=connectivity,
        expansion_add=expansion_add, expansion_search=expansion_search))
    return {"field": response.field, "metric": metric, "size": response.size,
            "built_at": response.built_at.ToDatetime(tzinfo=dt.timezone.utc), "digest": response.digest,
            "build_seconds": response.build_seconds}


def upload_vectors(view: Any, field: str, paths: Any, vectors: Any, dtype: str | None = None) -> Any:
    """Writes one vector per path (rows of a 2-D array) into ``field``, atomically, through Flight."""
    from thresher.results import paths_of

    names = paths_of(paths)
    array = vector_array(vectors, dtype)
    if len(names) != len(array):
        raise InvalidArgumentError(f"{len(names)} paths but {len(array)} vectors")
    return view.upload_metadata_from_dataframe(pa.table({"path": pa.array(names, pa.string()), field: array}))
