"""Turns a DataFrame (or Arrow table) into the table a metadata upload sends: a string path column,
then one column per field in the field's canonical Arrow type.

Checks run on whole columns (no per-row Python): each column must map to one field type and match
the type the field already has. Lossless conversions are made here so the service sees one type per
field: ints widen to float fields, integral floats (pandas' ints-with-NaN) narrow to int fields,
dictionaries are decoded, timestamps become UTC microseconds and dates midnight UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from thresher import fieldcheck
from thresher.errors import FieldTypeMismatchError, InvalidArgumentError
from thresher.types import DATAPOINT_ID_COLUMN, FieldType, arrow_kind, validate_field_name

# Arrow types written per field type; a blob column carries the bytes, the service stores the digest.
_WRITE_TYPES = {kind: kind.arrow_type for kind in FieldType} | {FieldType.BLOB: pa.binary()}
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def to_arrow(data: Any) -> pa.Table:
    """An Arrow table from a pandas DataFrame, Arrow table or record batch (the index is not kept)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except _ARROW_ERRORS as error:
        raise _conversion_error(data, error) from None
    except UnicodeEncodeError as error:  # a str holding lone surrogates, as from undecodable file names
        raise InvalidArgumentError(f"the dataframe holds text that is not valid UTF-8: {error}") from None
    except ValueError as error:  # duplicate column names, for one
        raise InvalidArgumentError(str(error)) from None


def _conversion_error(frame: Any, error: Exception) -> FieldTypeMismatchError:
    # Arrow's message names the column only in passing; find it so the error leads with it.
    for name in getattr(frame, "columns", ()):
        try:
            pa.array(frame[name], from_pandas=True)
        except _ARROW_ERRORS as column_error:
            return FieldTypeMismatchError(f"column '{name}' holds values of more than one type or of a type "
                                          f"no field can hold: {column_error}")
    return FieldTypeMismatchError(f"the dataframe cannot be converted to Arrow: {error}")


def path_column_name(table: pa.Table, path_column: str | int | None) -> str:
    """The name of the path column: given by name, by position, or the first column by default."""
    names = table.column_names
    if not names:
        raise InvalidArgumentError("the dataframe has no columns; the first column must hold datapoint paths")
    if path_column is None:
        return names[0]
    if isinstance(path_column, int) and not isinstance(path_column, bool):
        if not -len(names) <= path_column < len(names):
            raise InvalidArgumentError(f"path column index {path_column} is out of range for {len(names)} columns")
        return names[path_column]
    if path_column not in names:
        raise InvalidArgumentError(f"no column named {path_column!r} for the paths; columns are {names}")
    return path_column


def prepare(data: Any, path_column: str | int | None,
            field_types: Callable[[list[str]], Mapping[str, FieldType]]) -> tuple[pa.Table, str]:
    """The table to upload and its path column's name; ``field_types(names)`` gives the known types.

    A ``datapoint_id`` column (as in a query result's dataframe) is dropped: it is the datapoint's own
    id, not a field. All-null columns are dropped: they give no value to write.
    """
    table = to_arrow(data)
    path_name = path_column_name(table, path_column)
    if len(set(table.column_names)) != len(table.column_names):
        raise InvalidArgumentError(f"duplicate column names in {table.column_names}")
    columns, names = [_path_column(path_name, table.column(path_name))], [path_name]
    known = field_types([name for name in table.column_names if name != path_name])
    for name, column in zip(table.column_names, table.columns):
        if name in (path_name, DATAPOINT_ID_COLUMN):
            continue
        try:
            validate_field_name(name)
        except ValueError as error:
            raise InvalidArgumentError(f"column {name!r}: {error}") from None
        converted = _field_column(name, column, known.get(name))
        if converted is not None:
            columns.append(converted)
            names.append(name)
    return pa.Table.from_arrays(columns, names=names), path_name


def _path_column(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    if arrow_kind(column.type) is not FieldType.STRING:
        raise InvalidArgumentError(f"path column '{name}' must hold strings, not {column.type}")
    if column.null_count:
        raise InvalidArgumentError(f"path column '{name}' has {column.null_count} missing paths")
    return _cast(name, column, pa.string())


def _field_column(name: str, column: pa.ChunkedArray, expected: FieldType | None) -> pa.ChunkedArray | None:
    try:
        given = arrow_kind(column.type)
    except FieldTypeMismatchError as error:
        raise FieldTypeMismatchError(f"column '{name}': {error}") from None
    if given is None or column.null_count == len(column):
        return None
    if given is FieldType.VECTOR and expected in (None, FieldType.VECTOR):
        return column  # the service checks dimensions and elements, naming the datapoint at fault
    if expected is None or expected == given or (expected is FieldType.FLOAT and given is FieldType.INT):
        return _cast(name, column, _WRITE_TYPES[expected or given])
    if expected is FieldType.INT and given is FieldType.FLOAT:
        try:
            return column.cast(pa.int64(), safe=True)
        except _ARROW_ERRORS:
            raise fieldcheck.mismatch(name, expected, given, detail="the column has non-integral values") from None
    raise fieldcheck.mismatch(name, expected, given, detail=f"column '{name}' is {column.type}")


def _cast(name: str, column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if column.type == target:
        return _nan_to_null(column) if pa.types.is_floating(target) else column
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    # Sub-microsecond timestamp digits and float precision beyond 2**53 are dropped, not errors.
    safe = not (pa.types.is_timestamp(target) or pa.types.is_floating(target))
    try:
        column = column.cast(target, safe=safe)
    except _ARROW_ERRORS as error:
        raise FieldTypeMismatchError(f"column '{name}' cannot be stored as {target}: {error}") from None
    return _nan_to_null(column) if pa.types.is_floating(target) else column


def _nan_to_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # NaN means "no value" (DESIGN §3); pandas input already has it as null, Arrow input may not.
    nan = pc.is_nan(column)
    return pc.if_else(nan, pa.scalar(None, column.type), column) if pc.any(nan).as_py() else column
