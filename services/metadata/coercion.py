"""Turns the columns of an incoming write into columns of their fields' types, or explains why not.

Every write, whether it came as protobuf values or as an Arrow table, is validated here before the
store touches anything, so a request with one bad value writes nothing (docs/design.md, "Types of values in writes").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core.types import FieldType, arrow_kind, from_proto_value, validate_field_name
from thresher.core.vectors import VectorSpec

# Named apart from ``from __future__ import annotations``, which the module's own name would shadow.
from thresher.services.metadata import annotations as annotation_fields
from thresher.services.metadata.domain_errors import InvalidArgument, TypeMismatch
from thresher.v1 import metadata_service_pb2

_NUMERIC = (FieldType.INT, FieldType.FLOAT)


@dataclass(frozen=True)
class CoercedColumn:
    name: str
    type: FieldType
    # Values in the field's storage type; for blob fields, the raw bytes still to be stored.
    values: pa.Array
    vector: VectorSpec | None = None  # for vector fields: the dimension and element type


def _describe_first_offender(array: pa.Array, mask: pa.Array) -> str:
    index = pc.index(mask, True).as_py()
    return f"{array[index].as_py()!r} (row {index})"


def coerce_column(name: str, array: pa.Array, existing: FieldType | None) -> CoercedColumn | None:
    """Converts one column to its field's type. Returns None for a column that holds no values."""
    try:
        validate_field_name(name)
    except ValueError as error:
        raise InvalidArgument(str(error)) from None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    try:
        given = arrow_kind(array.type)
    except TypeError as error:
        raise TypeMismatch(f"field {name!r}: {error}") from None
    if (given and given.is_annotation) or (existing and existing.is_annotation):
        values = annotation_fields.coerce(name, array, given, existing)
        # coerce gives no values where none were given (given is None)
        return None if values is None or given is None else CoercedColumn(name, existing or given, values)
    if given is None or array.null_count == len(array):
        return None
    # Floats: NaN means "no value", so it becomes null before any type decision.
    if given is FieldType.FLOAT:
        array = array.cast(pa.float64())
        nan = pc.is_nan(array)
        if pc.any(nan).as_py():  # most columns hold none: then no copy
            array = pc.if_else(nan, None, array)
        if array.null_count == len(array):
            return None
    target = existing or given
    if target is given or (target is FieldType.FLOAT and given is FieldType.INT):
        return CoercedColumn(name, target, _to_storage(array, target, name))
    if target is FieldType.INT and given is FieldType.FLOAT:
        not_integral = pc.fill_null(pc.not_equal(array, pc.floor(array)), False)
        if pc.any(not_integral).as_py():
            raise TypeMismatch(
                f"field {name!r} has type int; got non-integral float value "
                f"{_describe_first_offender(array, not_integral)}"
            )
        out_of_range = pc.fill_null(pc.or_(pc.less(array, -(2.0**63)), pc.greater_equal(array, 2.0**63)), False)
        if pc.any(out_of_range).as_py():
            raise TypeMismatch(
                f"field {name!r} has type int; got float value out of the int64 range "
                f"{_describe_first_offender(array, out_of_range)}"
            )
        return CoercedColumn(name, target, array.cast(pa.int64()))
    raise TypeMismatch(
        f"field {name!r} has type {target.value}; got {given.value} values "
        f"(first: {array.filter(pc.is_valid(array))[0].as_py()!r})"
    )


def _to_storage(array: pa.Array, kind: FieldType, name: str) -> pa.Array:
    if kind is FieldType.INT and pa.types.is_unsigned_integer(array.type) and array.type.bit_width == 64:
        too_big = pc.fill_null(pc.greater(array, 2**63 - 1), False)
        if pc.any(too_big).as_py():
            raise TypeMismatch(
                f"field {name!r} has type int; got a value above the int64 range "
                f"{_describe_first_offender(array, too_big)}"
            )
    if kind is FieldType.DATETIME:
        if pa.types.is_date(array.type):
            array = array.cast(pa.timestamp("s"))
        if array.type.tz is None:
            # Naive instants are taken as UTC (docs/design.md, "Data model": datetimes are UTC instants).
            array = pc.assume_timezone(array, "UTC")
        return array.cast(pa.timestamp("us", tz="UTC"))
    if kind is FieldType.BLOB:
        return array.cast(pa.large_binary())
    if kind is FieldType.STRING:
        return array.cast(pa.string())
    return array.cast(kind.arrow_type)


def coerce_paths(array: pa.Array | pa.ChunkedArray, column: str) -> pa.Array:
    """Checks the path column: strings, none missing or empty, no NUL."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if arrow_kind(array.type) is not FieldType.STRING:
        raise InvalidArgument(f"path column {column!r} must hold strings, not {array.type}")
    array = array.cast(pa.string())
    if array.null_count:
        raise InvalidArgument(
            f"path column {column!r} has a missing value at row {pc.index(pc.is_null(array), True).as_py()}"
        )
    if len(array) and pc.any(pc.equal(pc.binary_length(array), 0)).as_py():  # bytes: no UTF-8 decoding
        raise InvalidArgument(f"path column {column!r} has an empty path")
    if len(array) and _holds_nul(array):
        raise InvalidArgument(f"path column {column!r} has a path containing a NUL character")
    # Duplicates are found by the store, which hashes paths anyway (see ``duplicate_path_error``).
    return array


def _holds_nul(array: pa.StringArray) -> bool:
    """Whether any string of ``array`` holds a NUL byte: one scan of its character data, ten times
    faster than a substring search string by string (a NUL byte never occurs inside a UTF-8 sequence)."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    if data is None:
        return False
    return memoryview(data)[offsets[0] : offsets[-1]].tobytes().find(b"\0") >= 0


def duplicate_path_error(path: str) -> InvalidArgument:
    return InvalidArgument(f"path {path!r} appears more than once in one write")


def table_from_proto_rows(
    rows: Sequence[metadata_service_pb2.DatapointValues], field_types: Mapping[str, FieldType]
) -> pa.Table:
    """Builds the Arrow table of an UpsertMetadata request: a path column, then one column per field, in
    the order fields first appear (row by row; within a row by name)."""
    paths = [row.path for row in rows]
    columns: dict[str, list[Any]] = {}
    kinds: dict[str, set[FieldType]] = {}
    for index, row in enumerate(rows):
        # A protobuf map iterates in no fixed order (it differs from process to process): by name, so
        # the fields one write creates get the same order, on every replica and engine, every time.
        for name, message in sorted(row.values.items()):
            kind, value = from_proto_value(message)
            if kind is None:
                continue
            column = columns.setdefault(name, [None] * len(rows))
            column[index] = value
            kinds.setdefault(name, set()).add(kind)
    arrays = {"path": pa.array(paths, pa.string())}
    for name, values in columns.items():
        seen = kinds[name]
        if len(seen) == 1:
            (kind,) = seen
        elif seen <= set(_NUMERIC):
            # Ints and floats mix in one column as floats unless the field is already an int.
            kind = FieldType.INT if field_types.get(name) is FieldType.INT else FieldType.FLOAT
            values = [v if v is None else (float(v) if kind is FieldType.FLOAT else v) for v in values]
        else:
            names = ", ".join(sorted(k.value for k in seen))
            raise TypeMismatch(f"field {name!r} got values of several types in one write: {names}")
        arrays[name] = _array_of(values, kind, name)
    return pa.table(arrays)


def _array_of(values: list[Any], kind: FieldType, name: str) -> pa.Array:
    if kind is FieldType.INT and any(isinstance(v, float) for v in values):
        floats = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        return pa.array(floats, from_pandas=True)
    arrow_type = (
        pa.large_binary()
        if kind is FieldType.BLOB
        else annotation_fields.write_arrow_type(kind)
        if kind.is_annotation
        else kind.arrow_type
    )
    try:
        return pa.array(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
        raise TypeMismatch(f"field {name!r}: {error}") from None
