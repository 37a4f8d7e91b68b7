"""The part of a SQL statement's WHERE clause the store can apply itself, as a query filter.

The sandbox still runs the whole statement, WHERE included; the store only leaves out rows the WHERE
would drop, so it reads and sends those rows' columns no more. That is exact only where the WHERE
filters the rows of one table before anything else happens, so a filter is pushed down only for a
single SELECT over a single table (no joins, set operations, CTEs, samples or other table anywhere
in it), and only its AND-ed conjuncts of a known shape: a column compared with a constant or a bound
parameter of the column's own type, or ``starts_with`` / ``contains`` / ``ends_with`` of a text
column. Anything else stays in the sandbox alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from thresher.core.types import FieldType
from thresher.services.metadata.sql.sandbox import nodes
from thresher.services.server_extra import require
from thresher.v1 import common_pb2

if TYPE_CHECKING:
    import duckdb
else:  # imported through require, so that a missing server extra is named (the checker reads the stubs)
    duckdb = require("duckdb")

_Op = common_pb2.ComparisonOperator
_COMPARISONS = {
    "COMPARE_EQUAL": (_Op.COMPARISON_OPERATOR_EQ, _Op.COMPARISON_OPERATOR_EQ),
    "COMPARE_NOTEQUAL": (_Op.COMPARISON_OPERATOR_NE, _Op.COMPARISON_OPERATOR_NE),
    "COMPARE_LESSTHAN": (_Op.COMPARISON_OPERATOR_LT, _Op.COMPARISON_OPERATOR_GT),
    "COMPARE_GREATERTHAN": (_Op.COMPARISON_OPERATOR_GT, _Op.COMPARISON_OPERATOR_LT),
    "COMPARE_LESSTHANOREQUALTO": (_Op.COMPARISON_OPERATOR_LE, _Op.COMPARISON_OPERATOR_GE),
    "COMPARE_GREATERTHANOREQUALTO": (_Op.COMPARISON_OPERATOR_GE, _Op.COMPARISON_OPERATOR_LE),
}
_TEXT_FUNCTIONS = {
    "starts_with": _Op.COMPARISON_OPERATOR_STARTSWITH,
    "contains": _Op.COMPARISON_OPERATOR_CONTAINS,
    "ends_with": _Op.COMPARISON_OPERATOR_ENDSWITH,
    "suffix": _Op.COMPARISON_OPERATOR_ENDSWITH,
}
_ORDERED = {FieldType.INT, FieldType.FLOAT, FieldType.STRING}
_UNSET = object()


def pushed_filter(
    connection: duckdb.DuckDBPyConnection, sql: str, columns: Mapping[str, FieldType], parameters: Sequence[Any]
) -> common_pb2.Filter | None:
    """The filter the store may apply for ``sql``'s one table, whose ``columns`` are name -> type; None if none."""
    try:
        tree = json.loads(connection.sql("SELECT json_serialize_sql(?::VARCHAR)", params=[sql]).fetchall()[0][0])
    except (duckdb.Error, ValueError, IndexError):
        return None
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return None
    node = statements[0].get("node") or {}
    source = node.get("from_table") or {}
    if (
        node.get("type") != "SELECT_NODE"
        or (node.get("cte_map") or {}).get("map")
        or node.get("sample")
        or source.get("type") != "BASE_TABLE"
        or source.get("sample")
        or source.get("at_clause")
        or sum(1 for item in nodes(tree) if item.get("type") == "BASE_TABLE") != 1
    ):
        return None
    by_name: dict[str, tuple[str, FieldType]] = {}
    for name, kind in columns.items():
        if name.lower() in by_name:
            return None  # names differing in case only: leave it to the sandbox
        by_name[name.lower()] = (name, kind)
    qualifiers = {source.get("table_name", "").lower(), (source.get("alias") or "").lower()} - {""}
    translate = _Translator(by_name, qualifiers, parameters)
    kept = [f for f in (translate.conjunct(c) for c in _conjuncts(node.get("where_clause"))) if f is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else common_pb2.Filter(all_of=common_pb2.FilterList(filters=kept))


class _Translator:
    def __init__(
        self, columns: Mapping[str, tuple[str, FieldType]], qualifiers: set[str], parameters: Sequence[Any]
    ) -> None:
        self._columns = columns
        self._qualifiers = qualifiers
        self._parameters = parameters

    def conjunct(self, expression: dict[str, Any]) -> common_pb2.Filter | None:
        kind = expression.get("type")
        if expression.get("class") == "COMPARISON" and kind in _COMPARISONS:
            left, right = expression.get("left") or {}, expression.get("right") or {}
            operator, flipped = _COMPARISONS[kind]
            if self.column(right) is not None and self.column(left) is None:
                left, right, operator = right, left, flipped
            column = self.column(left)
            if column is None:
                return None
            name, field_type = column
            if operator not in (_Op.COMPARISON_OPERATOR_EQ, _Op.COMPARISON_OPERATOR_NE) and field_type not in _ORDERED:
                return None
            value = self.value(right, field_type)
            return None if value is None else _comparison(name, operator, value)
        if expression.get("class") == "FUNCTION" and not expression.get("filter") and not expression.get("distinct"):
            text_operator = _TEXT_FUNCTIONS.get((expression.get("function_name") or "").lower())
            arguments = [a.get("expression") or {} for a in expression.get("arguments") or ()]
            if text_operator is None or len(arguments) != 2 or any(a.get("name") for a in expression["arguments"]):
                return None
            column = self.column(arguments[0])
            if column is None or column[1] is not FieldType.STRING:
                return None
            value = self.value(arguments[1], FieldType.STRING)
            return None if value is None else _comparison(column[0], text_operator, value)
        return None

    def column(self, expression: dict[str, Any]) -> tuple[str, FieldType] | None:
        if expression.get("class") != "COLUMN_REF":
            return None
        names = [n.lower() for n in expression.get("column_names") or ()]
        if len(names) == 2 and names[0] in self._qualifiers:
            names = names[1:]
        return self._columns.get(names[0]) if len(names) == 1 else None

    def value(self, expression: dict[str, Any], field_type: FieldType) -> common_pb2.Value | None:
        raw = _UNSET
        if expression.get("class") == "CONSTANT":
            literal = expression.get("literal") or {}
            raw = _literal(literal.get("kind", ""), literal.get("text"))
        elif expression.get("class") == "PARAMETER":
            identifier = expression.get("identifier", "")
            if identifier.isdigit() and 0 < int(identifier) <= len(self._parameters):
                raw = self._parameters[int(identifier) - 1]
        if raw is _UNSET or raw is None:
            return None
        if (
            field_type is FieldType.INT
            and isinstance(raw, int)
            and not isinstance(raw, bool)
            and -(2**63) <= raw < 2**63
        ):
            return common_pb2.Value(int_value=raw)
        if field_type is FieldType.FLOAT and isinstance(raw, int | float) and not isinstance(raw, bool):
            return common_pb2.Value(float_value=float(raw))
        if field_type is FieldType.STRING and isinstance(raw, str):
            return common_pb2.Value(string_value=raw)
        if field_type is FieldType.BOOL and isinstance(raw, bool):
            return common_pb2.Value(bool_value=raw)
        return None


def _literal(kind: str, text: object) -> object:
    if not isinstance(text, str):
        return _UNSET
    try:
        if kind in ("INTEGER", "BIGINT", "HUGEINT", "SMALLINT", "TINYINT"):
            return int(text)
        if kind in ("NUMERIC", "DECIMAL", "DOUBLE", "FLOAT"):
            return float(text)
    except ValueError:
        return _UNSET
    if kind in ("STRING", "VARCHAR"):
        return text
    if kind == "BOOLEAN" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return _UNSET


def _comparison(name: str, operator: common_pb2.ComparisonOperator, value: common_pb2.Value) -> common_pb2.Filter:
    return common_pb2.Filter(comparison=common_pb2.Comparison(field=name, op=operator, value=value))


def _conjuncts(expression: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    if not expression:
        return
    if expression.get("class") == "CONJUNCTION" and expression.get("type") == "CONJUNCTION_AND":
        for child in expression.get("children") or ():
            yield from _conjuncts(child)
    else:
        yield expression
