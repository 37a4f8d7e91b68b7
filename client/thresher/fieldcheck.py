"""Client-side type checks of values against field types, so misuse fails before any request.

The rules are those of docs/design.md, "Types of values in writes": a bool is never an int; ints and floats compare with each other; an int
field takes a float only when it is integral (never truncated). Mismatch messages use the metadata
service's phrasing ("field 'x' has type int; got float value 1.5") so both read the same.
"""

from __future__ import annotations

import math
from typing import Any

from thresher.core.errors import FieldTypeMismatchError
from thresher.core.types import FieldType, infer_type, to_proto_value
from thresher.v1 import common_pb2

NUMERIC = frozenset({FieldType.INT, FieldType.FLOAT})


def mismatch(
    field: str, expected: FieldType, given: FieldType | str, value: Any = None, detail: str = ""
) -> FieldTypeMismatchError:
    given_name = given.value if isinstance(given, FieldType) else given
    shown = "" if value is None else f" value {_short_repr(value)}"
    extra = f" ({detail})" if detail else ""
    return FieldTypeMismatchError(f"field '{field}' has type {expected.value}; got {given_name}{shown}{extra}")


def comparable(a: FieldType, b: FieldType) -> bool:
    """Whether values of types ``a`` and ``b`` may be compared (ints with floats, otherwise equal types)."""
    return a == b or (a in NUMERIC and b in NUMERIC)


def kind_of(field: str, value: Any) -> FieldType | None:
    """``infer_type`` with the field named in the error for values no field can hold."""
    try:
        return infer_type(value)
    except FieldTypeMismatchError as error:
        raise FieldTypeMismatchError(f"field '{field}': {error}") from None


def write_value(field: str, expected: FieldType | None, value: Any) -> common_pb2.Value:
    """The protobuf Value to write ``value`` into a field of type ``expected`` (None: a new field).

    A missing value gives an empty Value. Ints are widened to floats for a float field and integral
    floats narrowed to ints for an int field, so the service sees the field's own type.
    """
    given = kind_of(field, value)
    if given is None or expected is None or given == expected:
        return to_proto_value(value)
    if expected is FieldType.FLOAT and given is FieldType.INT:
        return to_proto_value(float(value))
    if expected is FieldType.INT and given is FieldType.FLOAT:
        as_float = float(value)
        if math.isfinite(as_float) and as_float.is_integer():
            return to_proto_value(int(as_float))
        raise mismatch(field, expected, given, value, "not an integral number")
    raise mismatch(field, expected, given, value)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
