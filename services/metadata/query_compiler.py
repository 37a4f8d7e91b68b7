"""Compiles a Query (filter tree, select, order, limit) into SQL for a store.

No user text is ever pasted into SQL: values become parameters (DuckDB) or literals rendered from
their type by ``sql_literals`` (PostgreSQL, whose driver reads results through COPY only when
nothing is bound), and fields are referred to by the store's own column names (``f<id>``), while the
result's column names are applied afterwards to the Arrow schema. Missing values satisfy no
comparison, not even ``!=``: each negation coalesces its operand's unknown to false first, which gives two-valued logic exactly (see ``_negate``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from google.protobuf import timestamp_pb2

from thresher.core.types import DATAPOINT_ID_COLUMN, PATH_COLUMN, FieldType, from_proto_value
from thresher.core.vectors import VectorSpec
from thresher.services.metadata import sql_literals
from thresher.services.metadata.annotations import measure_sql
from thresher.services.metadata.domain_errors import InvalidArgument, NotFound, TypeMismatch
from thresher.v1 import common_pb2

MAX_FILTER_DEPTH = 64
MAX_ISIN_VALUES = 1_000_000
# Paths up to this many in one ``isin`` are looked up in DuckDB's path index, each a value of an IN
# list; past 2,048 matches (its ``index_scan_max_count``) DuckDB scans anyway, and then the one list
# parameter binds cheaper than thousands.
INDEXED_ISIN_PATHS = 1000

_COMPARISONS = {
    common_pb2.COMPARISON_OPERATOR_EQ: "=",
    common_pb2.COMPARISON_OPERATOR_NE: "<>",
    common_pb2.COMPARISON_OPERATOR_LT: "<",
    common_pb2.COMPARISON_OPERATOR_LE: "<=",
    common_pb2.COMPARISON_OPERATOR_GT: ">",
    common_pb2.COMPARISON_OPERATOR_GE: ">=",
}
_ORDERING = {
    common_pb2.COMPARISON_OPERATOR_LT,
    common_pb2.COMPARISON_OPERATOR_LE,
    common_pb2.COMPARISON_OPERATOR_GT,
    common_pb2.COMPARISON_OPERATOR_GE,
}
_STRING_OPS = {
    common_pb2.COMPARISON_OPERATOR_CONTAINS,
    common_pb2.COMPARISON_OPERATOR_STARTSWITH,
    common_pb2.COMPARISON_OPERATOR_ENDSWITH,
}
_NUMERIC = {FieldType.INT, FieldType.FLOAT}
_ORDERABLE = _NUMERIC | {FieldType.STRING, FieldType.DATETIME}


@dataclass(frozen=True)
class Column:
    """A column the query may use: its SQL name in the relation and its type."""

    sql: str
    type: FieldType
    vector: VectorSpec | None = None


@dataclass(frozen=True)
class OutputColumn:
    name: str
    type: FieldType | None  # None for the datapoint's own columns (path, datapoint_id)
    vector: VectorSpec | None = None


@dataclass(frozen=True)
class Dialect:
    """What differs between stores' SQL: placeholders and the string and list functions."""

    placeholder: Callable[[int], str]
    contains: str  # format with {col} and {p}
    startswith: str
    endswith: str
    isin: str  # format with {col} and {p}; the parameter is a list
    float_type: str = "DOUBLE"  # the SQL name of a 64-bit float, for casts
    # When set (``sql_literals.POSTGRES`` / ``DUCKDB``), values are rendered as literals for that engine
    # and the SQL binds no parameters; ``placeholder`` is then unused.
    literals: str | None = None
    engine: str = "duckdb"  # for SQL written per engine elsewhere (annotation measures)


DUCKDB = Dialect(
    placeholder=lambda index: "?",
    contains="contains({col}, {p})",
    startswith="starts_with({col}, {p})",
    endswith="ends_with({col}, {p})",
    # A list lookup per row: several times faster than a semi-join on UNNEST, which hashes a subquery.
    isin="list_contains({p}, {col})",
)

# DuckDB with values as literals: the same SQL, nothing bound (the fuzzer holds it to the bound form).
DUCKDB_LITERALS = replace(DUCKDB, literals=sql_literals.DUCKDB)

# Values as literals, so ADBC's driver reads results through COPY; {p} may appear twice (endswith).
POSTGRES = Dialect(
    placeholder=lambda index: f"${index}",
    contains="strpos({col}, {p}) > 0",
    startswith="starts_with({col}, {p})",
    endswith="right({col}, length({p})) = {p}",
    isin="{col} = ANY({p})",
    float_type="DOUBLE PRECISION",
    literals=sql_literals.POSTGRES,
    engine="postgres",
)

# PostgreSQL with bound parameters (``$n``), for callers that want them.
POSTGRES_PARAMETERS = replace(POSTGRES, literals=None)

_KIND_OF_VALUE = (
    (bool, FieldType.BOOL),
    (int, FieldType.INT),
    (float, FieldType.FLOAT),
    (str, FieldType.STRING),
    (dt.datetime, FieldType.DATETIME),
)


@dataclass
class CompiledQuery:
    sql: str
    params: list[Any]
    columns: list[OutputColumn]
    count_sql: str = ""
    count_params: list[Any] = field(default_factory=list)
    # The row count alone (``count_params`` bind it too): no id bounds to aggregate.
    total_sql: str = ""
    select_sql: list[str] = field(default_factory=list)  # each output column's SQL, in order


def _operator_name(op: int) -> str:
    name: str = common_pb2.ComparisonOperator.Name(op)
    return name.removeprefix("COMPARISON_OPERATOR_").lower()


class _Compiler:
    def __init__(self, columns: Mapping[str, Column], dialect: Dialect) -> None:
        self.columns = columns
        self.dialect = dialect
        self.params: list[Any] = []

    def param(self, value: Any, list_kind: FieldType | None = None) -> str:
        """``value`` in the SQL: a literal when the dialect renders literals, else a bound parameter.
        ``list_kind`` is the element type of a list value (for isin)."""
        if self.dialect.literals is not None:
            if list_kind is not None:
                return sql_literals.list_literal(value, list_kind, self.dialect.literals)
            return sql_literals.literal(value, _kind_of(value), self.dialect.literals)
        self.params.append(value)
        return self.dialect.placeholder(len(self.params))

    def column(self, name: str) -> Column:
        try:
            return self.columns[name]
        except KeyError:
            raise NotFound(f"field {name!r} not found") from None

    def filter(self, node: common_pb2.Filter, depth: int = 0) -> str:
        if depth > MAX_FILTER_DEPTH:
            raise InvalidArgument(f"filter is nested deeper than {MAX_FILTER_DEPTH} levels")
        kind = node.WhichOneof("node")
        if kind == "comparison":
            return self.comparison(node.comparison)
        if kind in ("all_of", "any_of"):
            parts = [self.filter(child, depth + 1) for child in getattr(node, kind).filters]
            if not parts:
                raise InvalidArgument(f"an empty {kind} filter has no meaning")
            joiner = " AND " if kind == "all_of" else " OR "
            return "(" + joiner.join(parts) + ")"
        if kind == "negate":
            return self._negate(self.filter(node.negate, depth + 1))
        raise InvalidArgument("a filter node has none of comparison, all_of, any_of, negate set")

    @staticmethod
    def _negate(sql: str) -> str:
        # AND/OR are monotone, so mapping unknown to false at each negation (and at WHERE) gives the
        # same answer as treating every comparison on a missing value as false.
        return f"(NOT COALESCE({sql}, FALSE))"

    def comparison(self, comparison: common_pb2.Comparison) -> str:
        op = comparison.op
        column = self.column(comparison.field)
        if comparison.HasField("measure"):
            # The comparison's left side becomes a number computed from the field's objects.
            column = Column(
                *measure_sql(
                    comparison.field, column.sql, column.type, comparison.measure, self.dialect.engine, self.param
                )
            )
        operand = comparison.WhichOneof("operand")
        if op == common_pb2.COMPARISON_OPERATOR_IS_NULL:
            return f"({column.sql} IS NULL)"
        if op == common_pb2.COMPARISON_OPERATOR_IS_NOT_NULL:
            return f"({column.sql} IS NOT NULL)"
        if column.type is FieldType.VECTOR:
            raise InvalidArgument(f"field {comparison.field!r} is a vector: only is_null and is_not_null test it")
        if op == common_pb2.COMPARISON_OPERATOR_ISIN:
            if operand != "values":
                raise InvalidArgument(f"isin on field {comparison.field!r} needs a list of values")
            return self.isin(comparison.field, column, comparison.values.values)
        if op in _STRING_OPS:
            if column.type is not FieldType.STRING:
                raise InvalidArgument(
                    f"{_operator_name(op)} needs a string field; "
                    f"field {comparison.field!r} has type {column.type.value}"
                )
            value = self.value(comparison.field, column, comparison.value, operand)
            template = {
                common_pb2.COMPARISON_OPERATOR_CONTAINS: self.dialect.contains,
                common_pb2.COMPARISON_OPERATOR_STARTSWITH: self.dialect.startswith,
                common_pb2.COMPARISON_OPERATOR_ENDSWITH: self.dialect.endswith,
            }[op]
            return "(" + template.format(col=column.sql, p=self.param(value)) + ")"
        if op not in _COMPARISONS:
            raise InvalidArgument(f"unknown comparison operator {op} on field {comparison.field!r}")
        if op in _ORDERING and column.type not in _ORDERABLE:
            raise InvalidArgument(
                f"{_operator_name(op)} cannot order values of field {comparison.field!r} of type {column.type.value}"
            )
        if operand == "other_field":
            other = self.column(comparison.other_field)
            if not (column.type == other.type or {column.type, other.type} <= _NUMERIC):
                raise TypeMismatch(
                    f"cannot compare field {comparison.field!r} of type {column.type.value} "
                    f"with field {comparison.other_field!r} of type {other.type.value}"
                )
            return f"({column.sql} {_COMPARISONS[op]} {other.sql})"
        value = self.value(comparison.field, column, comparison.value, operand)
        return f"({column.sql} {_COMPARISONS[op]} {self.param(value)})"

    def value(self, name: str, column: Column, message: common_pb2.Value, operand: str | None) -> Any:
        if operand != "value":
            raise InvalidArgument(f"comparison on field {name!r} needs a value")
        kind, value = from_proto_value(message)
        if kind is None:
            raise InvalidArgument(f"comparison on field {name!r} has an empty value; use is_null()")
        return self.checked(name, column, kind, value)

    @staticmethod
    def checked(name: str, column: Column, kind: FieldType, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            # Neither engine's stored text holds NUL (PostgreSQL refuses it): one answer on both.
            raise InvalidArgument(f"a value for field {name!r} holds a NUL character, which no stored text can hold")
        if column.type.is_annotation or kind.is_annotation:
            raise InvalidArgument(
                f"field {name!r} of type {column.type.value} cannot be compared with a value; "
                "compare a measure of its objects (count, max_confidence, min_confidence)"
            )
        if column.type is FieldType.FLOAT and kind in _NUMERIC:
            return float(value)
        if column.type is FieldType.INT and kind in _NUMERIC:
            return value
        if column.type is FieldType.BLOB and kind is FieldType.STRING:
            return value
        if column.type is kind and kind is not FieldType.BLOB:
            return value
        shown = value if not isinstance(value, bytes) else f"<{len(value)} bytes>"
        raise TypeMismatch(f"field {name!r} has type {column.type.value}; got {kind.value} value {shown!r}")

    def isin_value(self, name: str, column: Column, message: common_pb2.Value) -> Any:
        kind, value = from_proto_value(message)
        if kind is None:
            raise InvalidArgument(f"isin on field {name!r} has an empty value; use is_null()")
        return self.checked(name, column, kind, value)

    def isin(self, name: str, column: Column, messages: Sequence[common_pb2.Value]) -> str:
        if len(messages) > MAX_ISIN_VALUES:
            raise InvalidArgument(f"isin on field {name!r} has {len(messages)} values; the limit is {MAX_ISIN_VALUES}")
        if column.type in (FieldType.STRING, FieldType.BLOB) and all(
            message.WhichOneof("kind") == "string_value" for message in messages
        ):
            # Strings for a text column (a list of paths, say) need only the NUL check of each.
            values = [self.checked(name, column, FieldType.STRING, m.string_value) for m in messages]
        else:
            values = [self.isin_value(name, column, message) for message in messages]
        if not values:
            return "FALSE"
        if column.type is FieldType.INT and any(isinstance(v, float) for v in values):
            # An int column can only equal the integral floats; compare as floats to stay exact.
            return (
                "("
                + self.dialect.isin.format(
                    col=f"CAST({column.sql} AS {self.dialect.float_type})",
                    p=self.param([float(v) for v in values], FieldType.FLOAT),
                )
                + ")"
            )
        kind = FieldType.STRING if column.type is FieldType.BLOB else column.type
        if name == PATH_COLUMN and self.dialect.engine == "duckdb" and len(values) <= INDEXED_ISIN_PATHS:
            # An IN list of single values is what DuckDB looks up in the path index (a few paths of a
            # million in a fraction of the time); the list function reads every row's path instead.
            return f"({column.sql} IN (" + ", ".join(self.param(value) for value in values) + "))"
        return "(" + self.dialect.isin.format(col=column.sql, p=self.param(values, kind)) + ")"


def _kind_of(value: object) -> FieldType:
    for python_type, kind in _KIND_OF_VALUE:  # bool before int: a bool is an int in Python
        if isinstance(value, python_type):
            return kind
    raise TypeError(f"no SQL literal for a {type(value).__name__} value")


def compile_query(
    query: common_pb2.Query,
    fields: Mapping[str, Column],
    relation: str,
    dialect: Dialect = DUCKDB,
    relation_params: list[Any] | None = None,
    row_filter: str = "",
) -> CompiledQuery:
    """Compiles ``query`` over ``relation`` whose field columns are ``fields``.

    ``relation`` is a table name or a parenthesised subquery with ``path`` and ``datapoint_id``
    columns; ``row_filter`` is a condition the store always adds (e.g. only live datapoints). A dialect
    that renders literals takes no ``relation_params``: the relation must hold its own values.
    ``count_sql`` answers (row count, smallest datapoint id, largest datapoint id) of the result;
    ``total_sql`` the row count alone.
    """
    if dialect.literals is not None and relation_params:
        raise ValueError("a dialect that renders values as literals binds no relation parameters")
    columns = {
        PATH_COLUMN: Column("path", FieldType.STRING),
        DATAPOINT_ID_COLUMN: Column("datapoint_id", FieldType.INT),
        **fields,
    }
    compiler = _Compiler(columns, dialect)
    compiler.params.extend(relation_params or [])

    output = [OutputColumn(PATH_COLUMN, None), OutputColumn(DATAPOINT_ID_COLUMN, None)]
    select_sql = ["path", "datapoint_id"]
    names = {PATH_COLUMN, DATAPOINT_ID_COLUMN}
    for name, column in _selected(query, fields):
        if name in names:
            raise InvalidArgument(f"column {name!r} is selected twice; give one an alias")
        names.add(name)
        output.append(OutputColumn(name, column.type, column.vector))
        select_sql.append(column.sql)

    conditions = [row_filter] if row_filter else []
    if query.HasField("filter"):
        conditions.append(compiler.filter(query.filter))
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    where_params = list(compiler.params)

    order = []
    for item in query.order_by:
        column = compiler.column(item.field)
        order.append(f"{column.sql} {'DESC' if item.descending else 'ASC'} NULLS LAST")
    if order:
        order.append("datapoint_id ASC")  # ties break the same way every time
    sql = f"SELECT {', '.join(select_sql)} FROM {relation}{where}"
    if order:
        sql += " ORDER BY " + ", ".join(order)
    if query.HasField("limit"):
        if query.limit < 0:
            raise InvalidArgument(f"limit must not be negative, got {query.limit}")
        sql += " LIMIT " + compiler.param(query.limit)
    counted = f"SELECT datapoint_id FROM {relation}{where}"
    count_params = list(where_params)
    if query.HasField("limit"):
        if dialect.literals is not None:
            counted += f" LIMIT {query.limit:d}"
        else:
            counted += " LIMIT " + dialect.placeholder(len(count_params) + 1)
            count_params.append(query.limit)
    count_sql = f"SELECT count(*), min(datapoint_id), max(datapoint_id) FROM ({counted})"
    total_sql = f"SELECT count(*) FROM ({counted})"
    return CompiledQuery(
        sql, compiler.params, output, count_sql, count_params, select_sql=select_sql, total_sql=total_sql
    )


def _selected(query: common_pb2.Query, fields: Mapping[str, Column]) -> Iterator[tuple[str, Column]]:
    if not query.select:
        yield from fields.items()
        return
    for item in query.select:
        if item.field == "*":
            named = {i.alias or i.field for i in query.select}
            # Names starting with NUL are the store's own joined columns, never part of "*".
            yield from ((n, c) for n, c in fields.items() if n not in named and not n.startswith("\x00"))
            continue
        if item.field in (PATH_COLUMN, DATAPOINT_ID_COLUMN) and not item.alias:
            continue  # always present
        if item.field not in fields:
            raise NotFound(f"field {item.field!r} not found")
        yield item.alias or item.field, fields[item.field]


def timestamp_or_none(message: timestamp_pb2.Timestamp) -> dt.datetime | None:
    """The datetime of a protobuf Timestamp field, or None when it is unset (all zero)."""
    if message.seconds == 0 and message.nanos == 0:
        return None
    stamp: dt.datetime = message.ToDatetime(tzinfo=dt.UTC)
    return stamp
