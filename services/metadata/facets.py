"""Facets: value counts or an equal-width histogram of one field over a query's result, in SQL.

The store runs these over the compiled query as a subquery, so a facet of a million rows is one
GROUP BY in the engine, never a loop in Python. Both engines read the same SQL apart from placeholders.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thresher.core.types import FieldType
from thresher.v1 import common_pb2

if TYPE_CHECKING:
    import pyarrow as pa

from thresher.services.metadata.domain_errors import InvalidArgument
from thresher.services.metadata.query_compiler import CompiledQuery, Dialect

DEFAULT_MAX_VALUES = 20
MAX_BINS = 1000
MAX_VALUES = 10_000
HISTOGRAM_TYPES = {FieldType.INT, FieldType.FLOAT}
COUNTABLE_TYPES = HISTOGRAM_TYPES | {FieldType.STRING, FieldType.BOOL, FieldType.DATETIME}


@dataclass(frozen=True)
class FacetRequest:
    field: str
    bins: int
    max_values: int


def facet_query(
    query: common_pb2.Query, field: str, bins: int, max_values: int
) -> tuple[common_pb2.Query, FacetRequest]:
    """The query to compile for a facet (only ``field`` selected, no order) and the checked request."""
    if not field:
        raise InvalidArgument("a facet needs a field")
    if bins < 0 or bins > MAX_BINS:
        raise InvalidArgument(f"bins must be between 0 and {MAX_BINS}, got {bins}")
    if max_values < 0 or max_values > MAX_VALUES:
        raise InvalidArgument(f"max_values must be between 0 and {MAX_VALUES}, got {max_values}")
    narrowed = common_pb2.Query()
    narrowed.CopyFrom(query)
    del narrowed.select[:]
    del narrowed.order_by[:]
    narrowed.select.add(field=field)
    return narrowed, FacetRequest(field, bins, max_values or DEFAULT_MAX_VALUES)


def value_column(compiled: CompiledQuery, field: str) -> tuple[str, FieldType]:
    """The facet field's output name in the compiled SELECT (path, datapoint_id, then the field) and type."""
    if len(compiled.columns) < 3:  # asking for path or datapoint_id
        raise InvalidArgument(f"{field!r} is not a field that can be counted")
    column = compiled.columns[2]
    if column.type is None:  # cannot happen: the columns after path and datapoint_id are fields
        raise InvalidArgument(f"{field!r} is not a field that can be counted")
    if column.type not in COUNTABLE_TYPES:
        raise InvalidArgument(
            f"field {field!r} is a {column.type.value} field; facets count int, float, string, bool and datetime fields"
        )
    return compiled.select_sql[2], column.type


def summary_sql(compiled: CompiledQuery, column: str, numeric: bool) -> tuple[str, list[Any]]:
    """One row: total rows, rows without a value, and (numeric only) min and max as doubles of ``column``."""
    bounds = (
        f"min(CAST(f.{column} AS DOUBLE PRECISION)) AS low, max(CAST(f.{column} AS DOUBLE PRECISION)) AS high"
        if numeric
        else "NULL AS low, NULL AS high"
    )
    return (
        f"SELECT count(*) AS total, count(*) - count(f.{column}) AS missing, {bounds} FROM ({compiled.sql}) AS f",
        list(compiled.params),
    )


def counts_sql(compiled: CompiledQuery, column: str, max_values: int, dialect: Dialect) -> tuple[str, list[Any]]:
    """(value, count) of the most frequent values, ties by value."""
    params = list(compiled.params) + [max_values]
    return (
        f"SELECT f.{column} AS value, count(*) AS count FROM ({compiled.sql}) AS f "
        f"WHERE f.{column} IS NOT NULL GROUP BY f.{column} ORDER BY count(*) DESC, f.{column} "
        f"LIMIT {dialect.placeholder(len(params))}",
        params,
    )


def histogram_sql(compiled: CompiledQuery, column: str, low: float, high: float, bins: int) -> tuple[str, list[Any]]:
    """(bin, count) for ``bins`` equal-width bins over [low, high]; the maximum falls in the last bin.

    The bounds are the store's own finite numbers, written into the SQL as literals: they sit before
    the subquery, where a positional placeholder would take one of the subquery's parameters.
    """
    width = (high - low) / bins if high > low else 1.0
    bucket = (
        f"LEAST(CAST(floor((CAST(f.{column} AS DOUBLE PRECISION) - ({low!r})) / ({width!r})) AS BIGINT), "
        f"{int(bins) - 1})"
    )
    return (
        f"SELECT {bucket} AS bin, count(*) AS count FROM ({compiled.sql}) AS f "
        f"WHERE f.{column} IS NOT NULL GROUP BY 1 ORDER BY 1",
        list(compiled.params),
    )


def histogram_edges(low: float, high: float, bins: int) -> list[tuple[float, float]]:
    """The [low, high) edges of each bin (one bin of width 1 when every value is equal)."""
    width = (high - low) / bins if high > low else 1.0
    return [(low + i * width, low + (i + 1) * width) for i in range(bins)]


@dataclass(frozen=True)
class Facet:
    counts: pa.Table
    total_rows: int
    missing: int


def count_values(
    compiled: CompiledQuery, request: FacetRequest, dialect: Dialect, run: Callable[[str, list[Any]], pa.Table]
) -> Facet:
    """Runs the facet's SQL through ``run`` (the store's: SQL and parameters → Arrow table)."""
    import pyarrow as pa

    column, kind = value_column(compiled, request.field)
    histogram = bool(request.bins) and kind in HISTOGRAM_TYPES
    summary = run(*summary_sql(compiled, column, histogram)).to_pylist()[0]
    total, missing, low, high = summary["total"], summary["missing"], summary["low"], summary["high"]
    if histogram:
        finite = low is not None and math.isfinite(low) and math.isfinite(high) and math.isfinite(high - low)
        edges = histogram_edges(low, high, request.bins) if finite else []
        found = {}
        if edges:
            table = run(*histogram_sql(compiled, column, low, high, request.bins))
            found = dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist()))
        counts = pa.table(
            {
                "low": pa.array([e[0] for e in edges], pa.float64()),
                "high": pa.array([e[1] for e in edges], pa.float64()),
                "count": pa.array([int(found.get(i, 0)) for i in range(len(edges))], pa.int64()),
            }
        )
    else:
        table = run(*counts_sql(compiled, column, request.max_values, dialect))
        counts = pa.table({"value": table.column(0), "count": table.column(1).cast(pa.int64())})
    return Facet(counts, int(total), int(missing))
