"""The query builder: columns, filter expressions, ordering, and the query a view sends (docs/design.md, "Queries").

``ds["x"]`` is a :class:`Column`; comparing it gives an :class:`Expression`; expressions combine with
``&``, ``|`` and ``~``. Everything is checked as it is built, so misuse fails at the line that
wrote it: Python's ``and``/``or``/``not``, ``in``, chained comparisons and a missing parenthesis all
end up calling one of the dunder methods below, which raise :class:`QueryError` with the fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from thresher import fieldcheck
from thresher.core.errors import FieldTypeMismatchError, QueryError
from thresher.core.types import FieldType, to_utc_datetime, utf8_text
from thresher.v1 import common_pb2

_Op = common_pb2.ComparisonOperator

_TRUTH_HELP = (
    "a filter has no truth value: combine filters with & (and), | (or) and ~ (not), with each "
    "comparison in parentheses, e.g. (ds['a'] > 1) & (ds['a'] < 5). Python's `and`, `or`, `not`, "
    "`if <filter>` and chained comparisons such as 1 < ds['a'] < 5 cannot work on filters"
)
_IN_HELP = (
    "`x in ds[...]` cannot build a filter: use ds['c'].isin([...]) to match one of several "
    "values, or ds['c'].contains('text') for a substring"
)
_PAREN_HELP = (
    "missing parentheses: & and | bind tighter than comparisons, so write "
    "(ds['a'] > 5) & (ds['b'] == 5), not ds['a'] > 5 & ds['b'] == 5"
)
_COLUMN_NOT_FILTER = "column {col} is not a filter: compare it, e.g. ({col} == True), ({col}.is_null()) or ({col} > 0)"

_SYMBOLS = {
    _Op.COMPARISON_OPERATOR_EQ: "==",
    _Op.COMPARISON_OPERATOR_NE: "!=",
    _Op.COMPARISON_OPERATOR_LT: "<",
    _Op.COMPARISON_OPERATOR_LE: "<=",
    _Op.COMPARISON_OPERATOR_GT: ">",
    _Op.COMPARISON_OPERATOR_GE: ">=",
}
_METHODS = {
    _Op.COMPARISON_OPERATOR_CONTAINS: "contains",
    _Op.COMPARISON_OPERATOR_STARTSWITH: "startswith",
    _Op.COMPARISON_OPERATOR_ENDSWITH: "endswith",
    _Op.COMPARISON_OPERATOR_IS_NULL: "is_null",
    _Op.COMPARISON_OPERATOR_IS_NOT_NULL: "is_not_null",
    _Op.COMPARISON_OPERATOR_ISIN: "isin",
}
_ORDERING = frozenset(
    {_Op.COMPARISON_OPERATOR_LT, _Op.COMPARISON_OPERATOR_LE, _Op.COMPARISON_OPERATOR_GT, _Op.COMPARISON_OPERATOR_GE}
)
# Types whose values have an order; bools and blob digests only compare for equality.
_ORDERED_TYPES = frozenset({FieldType.INT, FieldType.FLOAT, FieldType.STRING, FieldType.DATETIME})


class Expression:
    """A filter over a datasource's datapoints. Build it from columns; never construct it directly."""

    __slots__ = ("datasource_id",)

    def __init__(self, datasource_id: int | None) -> None:
        self.datasource_id = datasource_id

    def to_proto(self) -> common_pb2.Filter:
        raise NotImplementedError

    def __and__(self, other: Any) -> Expression:
        return AllOf.of(self, _operand(other, "&"))

    def __or__(self, other: Any) -> Expression:
        return AnyOf.of(self, _operand(other, "|"))

    # Reached only when the left operand is not a filter: `5 & ds["b"] == 5` from a missing parenthesis.
    def __rand__(self, other: Any) -> Expression:
        raise QueryError(_PAREN_HELP)

    __ror__ = __rand__

    def __invert__(self) -> Expression:
        return Negation(self)

    def __bool__(self) -> bool:
        raise QueryError(_TRUTH_HELP)

    def __contains__(self, item: Any) -> bool:
        raise QueryError(_IN_HELP)

    def __str__(self) -> str:
        """The filter in the query expression language (``thresher.expressions``), which parses back to it."""
        from thresher.expressions import to_text  # expressions builds on this module

        return to_text(self)


def _operand(other: Any, symbol: str) -> Expression:
    if isinstance(other, Expression):
        return other
    if isinstance(other, Column):
        raise QueryError(_COLUMN_NOT_FILTER.format(col=repr(other)))
    raise QueryError(f"{_PAREN_HELP} (the right side of {symbol} is {other!r}, not a filter)")


def _same_datasource(parts: Iterable[Expression | Column]) -> int | None:
    ids = {part.datasource_id for part in parts if part.datasource_id is not None}
    if len(ids) > 1:
        raise QueryError(f"a filter cannot mix columns of different datasources (ids {sorted(ids)})")
    return next(iter(ids), None)


class Comparison(Expression):
    """``field op operand``: the operand is a value, another column, a list of values, or nothing."""

    __slots__ = ("field", "op", "operand", "measure")

    def __init__(self, column: Column, op: common_pb2.ComparisonOperator, operand: Any = None) -> None:
        parts = [column, operand] if isinstance(operand, Column) else [column]
        super().__init__(_same_datasource(parts))
        self.field = column.name
        self.op = op
        self.operand = operand
        self.measure = column.measure if isinstance(column, Measure) else None

    def to_proto(self) -> common_pb2.Filter:
        comparison = common_pb2.Comparison(field=self.field, op=self.op, measure=self.measure)
        if isinstance(self.operand, Column):
            comparison.other_field = self.operand.name
        elif isinstance(self.operand, common_pb2.ValueList):
            comparison.values.CopyFrom(self.operand)
        elif isinstance(self.operand, common_pb2.Value):
            comparison.value.CopyFrom(self.operand)
        return common_pb2.Filter(comparison=comparison)

    def __repr__(self) -> str:
        column = f"ds[{self.field!r}]"
        if self.measure is not None:
            column = Measure.describe(column, self.measure)
        if self.op in _SYMBOLS:
            return f"({column} {_SYMBOLS[self.op]} {_operand_repr(self.operand)})"
        argument = "" if self.operand is None else _operand_repr(self.operand)
        return f"{column}.{_METHODS[self.op]}({argument})"


def _operand_repr(operand: Any) -> str:
    if isinstance(operand, Column):
        return repr(operand)
    if isinstance(operand, common_pb2.ValueList):
        return "[" + ", ".join(_value_repr(v) for v in operand.values) + "]"
    return _value_repr(operand)


def _value_repr(value: common_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "datetime_value":
        return repr(value.datetime_value.ToDatetime(tzinfo=dt.UTC).isoformat())
    return repr(getattr(value, kind)) if kind else "None"


class _Junction(Expression):
    __slots__ = ("parts",)
    _symbol = ""

    def __init__(self, parts: tuple[Expression, ...]) -> None:
        super().__init__(_same_datasource(parts))
        self.parts = parts

    @classmethod
    def of(cls, left: Expression, right: Expression) -> Expression:
        # Flatten a & b & c into one node so the compiled tree stays shallow.
        parts = tuple(p for side in (left, right) for p in (side.parts if type(side) is cls else (side,)))
        return cls(parts)

    def _list(self) -> common_pb2.FilterList:
        return common_pb2.FilterList(filters=[part.to_proto() for part in self.parts])

    def __repr__(self) -> str:
        return "(" + f" {self._symbol} ".join(repr(p) for p in self.parts) + ")"


class AllOf(_Junction):
    """Every part holds (``a & b``)."""

    __slots__ = ()
    _symbol = "&"

    def to_proto(self) -> common_pb2.Filter:
        return common_pb2.Filter(all_of=self._list())


class AnyOf(_Junction):
    """At least one part holds (``a | b``)."""

    __slots__ = ()
    _symbol = "|"

    def to_proto(self) -> common_pb2.Filter:
        return common_pb2.Filter(any_of=self._list())


class Negation(Expression):
    """``~a``: two-valued, so it also holds where ``a`` failed for a missing value."""

    __slots__ = ("inner",)

    def __init__(self, inner: Expression) -> None:
        super().__init__(inner.datasource_id)
        self.inner = inner

    def to_proto(self) -> common_pb2.Filter:
        return common_pb2.Filter(negate=self.inner.to_proto())

    def __repr__(self) -> str:
        return f"~{self.inner!r}"


class SavedFilter(Expression):
    """A filter that arrived as a proto (a saved dataset's); it combines like any other."""

    __slots__ = ("proto",)

    def __init__(self, proto: common_pb2.Filter, datasource_id: int | None) -> None:
        super().__init__(datasource_id)
        self.proto = proto

    def to_proto(self) -> common_pb2.Filter:
        copy = common_pb2.Filter()
        copy.CopyFrom(self.proto)
        return copy

    def __repr__(self) -> str:
        return f"<saved filter {self.proto.WhichOneof('node')}>"


@dataclasses.dataclass(frozen=True)
class Order:
    """One ``order_by`` key: a field and a direction."""

    field: str
    descending: bool = False

    def to_proto(self) -> common_pb2.OrderBy:
        return common_pb2.OrderBy(field=self.field, descending=self.descending)


class Column:
    """A reference to one field of a datasource, typed, so comparisons are checked as they are built."""

    __slots__ = ("name", "type", "datasource_id")

    def __init__(self, name: str, field_type: FieldType, datasource_id: int | None = None) -> None:
        self.name = name
        self.type = field_type
        self.datasource_id = datasource_id

    def __repr__(self) -> str:
        return f"ds[{self.name!r}]"

    # Comparisons. Python reflects `5 < col` into `col > 5` by itself.
    def __eq__(self, other: Any) -> Expression:  # type: ignore[override]
        return self._compare(_Op.COMPARISON_OPERATOR_EQ, other)

    def __ne__(self, other: Any) -> Expression:  # type: ignore[override]
        return self._compare(_Op.COMPARISON_OPERATOR_NE, other)

    def __lt__(self, other: Any) -> Expression:
        return self._compare(_Op.COMPARISON_OPERATOR_LT, other)

    def __le__(self, other: Any) -> Expression:
        return self._compare(_Op.COMPARISON_OPERATOR_LE, other)

    def __gt__(self, other: Any) -> Expression:
        return self._compare(_Op.COMPARISON_OPERATOR_GT, other)

    def __ge__(self, other: Any) -> Expression:
        return self._compare(_Op.COMPARISON_OPERATOR_GE, other)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Iterable[Any]) -> Expression:
        """Holds where the field's value equals one of ``values``."""
        if isinstance(values, str | bytes | Column | Expression) or not isinstance(values, Iterable):
            raise QueryError(f"{self!r}.isin() takes a list of values, got {type(values).__name__}")
        listed = values if isinstance(values, list) else list(values)
        if self.type is FieldType.STRING and all(type(v) is str for v in listed):
            # Plain str values of a string field (paths, say) need only the UTF-8 check of each: the
            # general check below costs a path lookup of a hundred paths more than its answer.
            checked = [common_pb2.Value(string_value=utf8_text(v, "a string value")) for v in listed]
        else:
            checked = [self._value(_Op.COMPARISON_OPERATOR_ISIN, v) for v in listed]
        return Comparison(self, _Op.COMPARISON_OPERATOR_ISIN, common_pb2.ValueList(values=checked))

    def contains(self, text: str) -> Expression:
        """Holds where the string field contains ``text``."""
        return self._text(_Op.COMPARISON_OPERATOR_CONTAINS, text)

    def startswith(self, prefix: str) -> Expression:
        """Holds where the string field starts with ``prefix``."""
        return self._text(_Op.COMPARISON_OPERATOR_STARTSWITH, prefix)

    def endswith(self, suffix: str) -> Expression:
        """Holds where the string field ends with ``suffix``."""
        return self._text(_Op.COMPARISON_OPERATOR_ENDSWITH, suffix)

    def is_null(self) -> Expression:
        """Holds where the datapoint has no value for this field."""
        return Comparison(self, _Op.COMPARISON_OPERATOR_IS_NULL)

    def is_not_null(self) -> Expression:
        """Holds where the datapoint has a value for this field."""
        return Comparison(self, _Op.COMPARISON_OPERATOR_IS_NOT_NULL)

    # Annotation fields: numbers computed from a datapoint's objects (missing where the field is).
    def count(self, label: str | None = None) -> Measure:
        """How many objects (labelled ``label``, if given) the annotation field holds: compare it."""
        return self._measure(common_pb2.OBJECT_MEASURE_KIND_COUNT, label, FieldType.INT)

    def max_confidence(self, label: str | None = None) -> Measure:
        """The highest confidence among the objects (labelled ``label``); missing when there are none."""
        return self._measure(common_pb2.OBJECT_MEASURE_KIND_MAX_CONFIDENCE, label, FieldType.FLOAT)

    def min_confidence(self, label: str | None = None) -> Measure:
        """The lowest confidence among the objects (labelled ``label``); missing when there are none."""
        return self._measure(common_pb2.OBJECT_MEASURE_KIND_MIN_CONFIDENCE, label, FieldType.FLOAT)

    @property
    def labels(self) -> Labels:
        """The labels of the annotation field's objects: ``ds["gt"].labels.contains("car")``."""
        self._measure(common_pb2.OBJECT_MEASURE_KIND_COUNT, None, FieldType.INT)
        return Labels(self)

    def _measure(self, kind: common_pb2.ObjectMeasureKind, label: str | None, result: FieldType) -> Measure:
        if not self.type.is_annotation or self.type is FieldType.SEGMENTATION:
            raise QueryError(
                f"{self!r} has type {self.type.value}: only classification, detections, polylines "
                "and keypoints fields have objects to count or measure"
            )
        if label is not None and not isinstance(label, str):
            raise QueryError(f"a label is a string, got {type(label).__name__}")
        measure = common_pb2.ObjectMeasure(kind=kind, label=label)
        return Measure(self.name, result, self.datasource_id, measure)

    def asc(self) -> Order:
        """Ascending order by this field, for ``order_by``."""
        return Order(self.name, descending=False)

    def desc(self) -> Order:
        """Descending order by this field, for ``order_by``."""
        return Order(self.name, descending=True)

    # Misuse: each of these is what Python calls for a construct that cannot build a filter.
    def __bool__(self) -> bool:
        raise QueryError(_TRUTH_HELP)

    def __contains__(self, item: Any) -> bool:
        raise QueryError(_IN_HELP)

    def __and__(self, other: Any) -> Expression:
        raise QueryError(_COLUMN_NOT_FILTER.format(col=repr(self)))

    __or__ = __and__

    def __rand__(self, other: Any) -> Expression:
        raise QueryError(_PAREN_HELP)

    __ror__ = __rand__

    def __invert__(self) -> Expression:
        raise QueryError(_COLUMN_NOT_FILTER.format(col=repr(self)))

    def __iter__(self) -> Any:
        raise QueryError(f"{self!r} is a column reference, not its values; run a query to get values")

    def _compare(self, op: common_pb2.ComparisonOperator, other: Any) -> Expression:
        self._check_not_annotation()
        if isinstance(other, Column):
            if not fieldcheck.comparable(self.type, other.type):
                raise fieldcheck.mismatch(
                    self.name, self.type, other.type, detail=f"cannot compare with field '{other.name}'"
                )
            self._check_ordering(op)
            return Comparison(self, op, other)
        return Comparison(self, op, self._value(op, other))

    def _text(self, op: common_pb2.ComparisonOperator, text: Any) -> Expression:
        name = _METHODS[op]
        if self.type is not FieldType.STRING:
            raise QueryError(f"{self!r}.{name}() needs a string field; '{self.name}' has type {self.type.value}")
        if not isinstance(text, str):
            raise fieldcheck.mismatch(
                self.name, self.type, type(text).__name__, text, detail=f"{name}() takes a string"
            )
        return Comparison(self, op, common_pb2.Value(string_value=text))

    def _check_ordering(self, op: common_pb2.ComparisonOperator) -> None:
        if op in _ORDERING and self.type not in _ORDERED_TYPES:
            raise QueryError(
                f"{self!r} {_SYMBOLS[op]} ...: a {self.type.value} field has no order; use == or != or isin"
            )

    def _check_not_annotation(self) -> None:
        if self.type.is_annotation:
            raise QueryError(
                f"{self!r} holds {self.type.annotation_kind}: compare a measure of its objects, e.g. "
                f"{self!r}.count('car') >= 1, {self!r}.labels.contains('car'), "
                f"{self!r}.max_confidence() < 0.5"
            )

    def _value(self, op: common_pb2.ComparisonOperator, value: Any) -> common_pb2.Value:
        self._check_not_annotation()
        if isinstance(value, Expression):
            raise QueryError(f"cannot compare {self!r} with a filter ({value!r}); {_PAREN_HELP}")
        if self.type is FieldType.VECTOR:
            raise QueryError(
                f"{self!r}: a vector field can only be tested with is_null()/is_not_null(); search it with ds.nearest()"
            )
        given = fieldcheck.kind_of(self.name, value)
        if given is None:
            raise QueryError(
                f"comparing {self!r} with {value!r} matches nothing (a missing value satisfies "
                f"no comparison): use {self!r}.is_null() or .is_not_null()"
            )
        self._check_ordering(op)
        if self.type is FieldType.BLOB:
            # A blob field holds the sha256 hex digest of its bytes: compare digests.
            if given is FieldType.BLOB:
                return common_pb2.Value(string_value=hashlib.sha256(bytes(value)).hexdigest())
            if given is FieldType.STRING:
                return common_pb2.Value(string_value=value)
        if not fieldcheck.comparable(self.type, given):
            raise fieldcheck.mismatch(self.name, self.type, given, value)
        return fieldcheck.write_value(self.name, None, value)


class Measure(Column):
    """A number computed from an annotation field's objects (``count``, ``max_confidence``): compare it."""

    __slots__ = ("measure",)

    def __init__(
        self, name: str, field_type: FieldType, datasource_id: int | None, measure: common_pb2.ObjectMeasure
    ) -> None:
        super().__init__(name, field_type, datasource_id)
        self.measure = measure

    def __repr__(self) -> str:
        return self.describe(f"ds[{self.name!r}]", self.measure)

    @staticmethod
    def describe(column: str, measure: common_pb2.ObjectMeasure) -> str:
        name = common_pb2.ObjectMeasureKind.Name(measure.kind).removeprefix("OBJECT_MEASURE_KIND_").lower()
        return f"{column}.{name}({measure.label!r})" if measure.HasField("label") else f"{column}.{name}()"

    def asc(self) -> Order:
        raise QueryError(f"{self!r} cannot order a query; order by a field")

    desc = asc

    def _measure(self, kind: common_pb2.ObjectMeasureKind, label: str | None, result: FieldType) -> Measure:
        raise QueryError(f"{self!r} is a number, not an annotation field")

    def _compare(self, op: common_pb2.ComparisonOperator, other: Any) -> Expression:
        if isinstance(other, Column):
            raise QueryError(f"{self!r} compares with values, not with columns")
        return super()._compare(op, other)


class Labels:
    """The labels of an annotation field's objects, for ``ds["gt"].labels.contains("car")``."""

    __slots__ = ("column",)

    def __init__(self, column: Column) -> None:
        self.column = column

    def contains(self, label: str) -> Expression:
        """Holds where at least one object has ``label``."""
        if not isinstance(label, str):
            raise QueryError(f"a label is a string, got {type(label).__name__}")
        return self.column.count(label) >= 1


@dataclasses.dataclass(frozen=True)
class QuerySpec:
    """What a datasource view asks for: filter, selected fields, order, limit and read instant."""

    filter: Expression | None = None
    select: tuple[Field, ...] = ()
    order_by: tuple[Order, ...] = ()
    limit: int | None = None
    as_of: dt.datetime | None = None
    nearest: common_pb2.Nearest | None = None  # a nearest-neighbour search (``thresher.similarity``)

    def and_filter(self, expression: Expression) -> QuerySpec:
        combined = expression if self.filter is None else self.filter & expression
        return dataclasses.replace(self, filter=combined)

    def to_proto(self, datasource_id: int) -> common_pb2.Query:
        query = common_pb2.Query(datasource_id=datasource_id)
        if self.filter is not None:
            query.filter.CopyFrom(self.filter.to_proto())
        query.select.extend((item if isinstance(item, Field) else Field(item)).to_proto() for item in self.select)
        query.order_by.extend(order.to_proto() for order in self.order_by)
        if self.limit is not None:
            query.limit = self.limit
        if self.as_of is not None:
            query.as_of.FromDatetime(self.as_of)
        if self.nearest is not None:
            query.nearest.CopyFrom(self.nearest)
        return query

    @classmethod
    def from_proto(cls, query: common_pb2.Query) -> QuerySpec:
        """The spec of a saved query."""
        return cls(
            filter=SavedFilter(query.filter, query.datasource_id) if query.HasField("filter") else None,
            select=tuple(Field.from_proto(item) for item in query.select),
            order_by=tuple(Order(o.field, o.descending) for o in query.order_by),
            limit=query.limit if query.HasField("limit") else None,
            as_of=query.as_of.ToDatetime(tzinfo=dt.UTC) if query.HasField("as_of") else None,
            nearest=query.nearest if query.HasField("nearest") else None,
        )


@dataclasses.dataclass(frozen=True)
class Field:
    """A selected field, optionally read at another instant and renamed.

    ``ds.select(Field("label", as_of=t, alias="label_then"), "*")`` returns the label as it was at
    ``t`` beside every current field. ``"*"`` stands for every field.
    """

    name: str
    as_of: dt.datetime | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise QueryError(f"a field name must be a non-empty string, got {self.name!r}")
        if self.as_of is not None:
            object.__setattr__(self, "as_of", as_instant(self.as_of))
        if self.alias is not None and (not isinstance(self.alias, str) or not self.alias):
            raise QueryError(f"an alias must be a non-empty string, got {self.alias!r}")

    @property
    def output_name(self) -> str:
        return self.alias or self.name

    def to_proto(self) -> common_pb2.SelectItem:
        item = common_pb2.SelectItem(field=self.name, alias=self.alias or "")
        if self.as_of is not None:
            item.as_of.FromDatetime(self.as_of)
        return item

    @classmethod
    def from_proto(cls, item: common_pb2.SelectItem) -> Field:
        as_of = item.as_of.ToDatetime(tzinfo=dt.UTC) if item.HasField("as_of") else None
        return cls(item.field, as_of, item.alias or None)


def as_instant(value: Any) -> dt.datetime:
    """A UTC datetime for ``as_of``: a datetime (naive means UTC) or a Unix time in seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise QueryError(f"as_of got {value!r}, which is not a Unix time in seconds") from None
    try:
        return to_utc_datetime(value)
    except FieldTypeMismatchError:
        raise QueryError(f"as_of takes a datetime, got {value!r}") from None
