"""Large query results split into partitions by datapoint id range, one Flight endpoint each.

A partition's ticket is a ``QueryTicket`` with its ``id_range`` set, self-describing, so any flight
replica serves it: DoGet runs the query with ``start <= datapoint_id < stop`` added to its filter.
Partitions are listed in id order; fetched in parallel and concatenated in that order they hold the
unpartitioned result's rows. A query with ``order_by`` or ``limit`` is never partitioned: its order
and its cut are the whole result's, which id ranges would break; it is served as one endpoint.
"""

from __future__ import annotations

import math

from thresher.core.settings import Settings, env_name, setting_named
from thresher.core.types import DATAPOINT_ID_COLUMN, to_proto_value
from thresher.v1 import common_pb2, flight_pb2

PARTITION_ROWS_ENV = env_name("flight_partition_rows")
# About one core's worth of work per partition; a result up to this size is one endpoint.
DEFAULT_PARTITION_ROWS: int = setting_named("flight_partition_rows").default


def partition_rows(configured: int | None = None) -> int:
    """Rows per partition: ``configured``, else ``$THRESHER_FLIGHT_PARTITION_ROWS``, else the default; 0 never splits."""
    if configured is None:
        configured = Settings.read("flight_partition_rows")
    if configured < 0:
        raise ValueError(f"rows per partition must not be negative, got {configured}")
    return configured


def may_split(query: common_pb2.Query, rows_per_partition: int) -> bool:
    """Whether ``query``'s result could be split at all: not when splitting is off, nor when it is
    ordered, limited or a nearest-neighbour result (see ``id_ranges``)."""
    return not (rows_per_partition <= 0 or query.order_by or query.HasField("limit") or query.HasField("nearest"))


def id_ranges(
    query: common_pb2.Query, total_rows: int, min_id: int, max_id: int, rows_per_partition: int
) -> list[flight_pb2.DatapointIdRange | None]:
    """The partitions of ``query``'s result (``total_rows`` rows, ids ``min_id``..``max_id``): id ranges
    of equal width, about ``rows_per_partition`` rows each where ids are evenly spread; ``[None]`` (one
    endpoint, the whole result) when it is small, ordered or limited, or is a nearest-neighbour result
    (the k nearest of the whole filter, ordered by distance)."""
    if not may_split(query, rows_per_partition) or total_rows <= rows_per_partition or max_id < min_id:
        return [None]
    span = max_id - min_id + 1
    count = min(math.ceil(total_rows / rows_per_partition), span)
    if count < 2:  # e.g. a store that could not tell its ids (both 0)
        return [None]
    bounds = [min_id + span * i // count for i in range(count)] + [max_id + 1]
    return [flight_pb2.DatapointIdRange(start=bounds[i], stop=bounds[i + 1]) for i in range(count)]


def restricted(query: common_pb2.Query, id_range: flight_pb2.DatapointIdRange) -> common_pb2.Query:
    """``query`` keeping only rows with ``id_range.start <= datapoint_id < id_range.stop``."""
    bounds = [
        common_pb2.Filter(
            comparison=common_pb2.Comparison(field=DATAPOINT_ID_COLUMN, op=op, value=to_proto_value(int(value)))
        )
        for op, value in (
            (common_pb2.COMPARISON_OPERATOR_GE, id_range.start),
            (common_pb2.COMPARISON_OPERATOR_LT, id_range.stop),
        )
    ]
    narrowed = common_pb2.Query()
    narrowed.CopyFrom(query)
    if query.HasField("filter"):
        bounds.insert(0, query.filter)
    narrowed.filter.CopyFrom(common_pb2.Filter(all_of=common_pb2.FilterList(filters=bounds)))
    return narrowed


def ticket(query: common_pb2.Query, id_range: flight_pb2.DatapointIdRange | None) -> bytes:
    """The ticket of one partition (``id_range``) of ``query``'s result, or of the whole result (None)."""
    message = flight_pb2.QueryTicket(query=query)
    if id_range is not None:
        message.id_range.CopyFrom(id_range)
    serialized: bytes = flight_pb2.FlightTicket(query=message).SerializeToString()
    return serialized
