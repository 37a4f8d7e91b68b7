"""Turns a DataFrame (or Arrow table) into the table a metadata upload sends: a string path column,
then one column per field in the field's canonical Arrow type.

Checks run on whole columns (no per-row Python): each column must map to one field type and match
the type the field already has. Lossless conversions are made here so the service sees one type per
field: ints widen to float fields, integral floats (pandas' ints-with-NaN) narrow to int fields,
dictionaries are decoded, timestamps become UTC microseconds and dates midnight UTC.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from thresher import fieldcheck
from thresher.core import labels
from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError
from thresher.core.types import DATAPOINT_ID_COLUMN, FieldType, arrow_kind, validate_field_name

# Arrow types written per field type; a blob column carries the bytes, the service stores the digest.
_WRITE_TYPES = {kind: kind.arrow_type for kind in FieldType} | {
    FieldType.BLOB: pa.binary(),
    FieldType.SEGMENTATION: labels.SEGMENTATION_WRITE_TYPE,
}
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


ACCEPTED = (
    "a pandas DataFrame, a pyarrow Table, RecordBatch or RecordBatchReader, a polars DataFrame or "
    "LazyFrame, a DuckDB relation, a Hugging Face Dataset or IterableDataset, or any object with "
    "__arrow_c_stream__ (the Arrow PyCapsule stream interface)"
)


def to_arrow(data: Any) -> pa.Table | pa.RecordBatchReader:
    """The Arrow form of ``data``: a table for what is in memory already, a RecordBatchReader for a
    stream (a reader, a DuckDB relation, any other ``__arrow_c_stream__`` producer), read batch by batch.

    Raises TypeError naming what is accepted for anything else.
    """
    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.partition(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        return _from_pandas(data)
    if module == "polars" and hasattr(data, "collect"):  # a LazyFrame: run it
        data = data.collect()
    if module == "polars" and hasattr(data, "to_arrow"):
        return data.to_arrow()  # zero-copy for most column types
    if module == "datasets" and type(data).__name__ == "IterableDataset":
        return _iterable_dataset_stream(data)
    if module == "datasets" and hasattr(data, "with_format"):
        # Memory-mapped, zero-copy unless the dataset holds an indices mapping (after a shuffle or select).
        return data.with_format("arrow")[:]
    if hasattr(data, "__arrow_c_stream__"):
        return _reader_of_stream(data)
    raise TypeError(f"cannot upload a {type(data).__module__}.{type(data).__qualname__}: pass {ACCEPTED}")


def _reader_of_stream(data: Any) -> pa.RecordBatchReader:
    if hasattr(pa.RecordBatchReader, "from_stream"):  # pyarrow >= 15
        return pa.RecordBatchReader.from_stream(data)
    if hasattr(data, "to_arrow_reader"):  # a DuckDB relation, on an older pyarrow
        return data.to_arrow_reader()
    raise TypeError(
        f"uploading a {type(data).__module__}.{type(data).__qualname__} through the Arrow PyCapsule "
        f"interface needs pyarrow >= 15 (installed: {pa.__version__}); pass a pyarrow Table instead"
    )


def _iterable_dataset_stream(data: Any, batch_rows: int = 10_000) -> pa.Table | pa.RecordBatchReader:
    # A streaming Hugging Face dataset: its schema is known once its first batch is read.
    tables = iter(data.with_format("arrow").iter(batch_size=batch_rows))
    first = next(tables, None)
    if first is None:
        return pa.table({})
    batches = (batch for table in itertools.chain([first], tables) for batch in table.to_batches())
    return pa.RecordBatchReader.from_batches(first.schema, batches)


def _from_pandas(data: Any) -> pa.Table:
    label_columns = _label_columns(data)
    if label_columns:
        rest = _from_pandas(data.drop(columns=list(label_columns)))
        columns = {name: label_columns[name] if name in label_columns else rest[name] for name in data.columns}
        return pa.table(columns)
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except _ARROW_ERRORS as error:
        raise _conversion_error(data, error) from None
    except UnicodeEncodeError as error:  # a str holding lone surrogates, as from undecodable file names
        raise InvalidArgumentError(f"the dataframe holds text that is not valid UTF-8: {error}") from None
    except ValueError as error:  # duplicate column names, for one
        raise InvalidArgumentError(str(error)) from None


def _label_columns(frame: Any) -> dict[str, pa.Array]:
    """The columns of a DataFrame that hold ``thresher.core.labels`` values, as Arrow arrays of their kind."""
    found = {}
    for name in getattr(frame, "columns", ()):
        column = frame[name]
        if getattr(column, "dtype", None) != object:  # noqa: E721 - a dtype equals object for object columns
            continue
        values = [None if v is None or (isinstance(v, float) and v != v) else v for v in column.tolist()]
        first = next((v for v in values if v is not None), None)
        if labels.is_label(first):
            found[name] = labels.to_arrow(first.kind, values)
    return found


def _conversion_error(frame: Any, error: Exception) -> FieldTypeMismatchError:
    # Arrow's message names the column only in passing; find it so the error leads with it.
    for name in getattr(frame, "columns", ()):
        try:
            pa.array(frame[name], from_pandas=True)
        except _ARROW_ERRORS as column_error:
            return FieldTypeMismatchError(
                f"column '{name}' holds values of more than one type or of a type no field can hold: {column_error}"
            )
    return FieldTypeMismatchError(f"the dataframe cannot be converted to Arrow: {error}")


def path_column_name(table: pa.Table | pa.Schema, path_column: str | int | None) -> str:
    """The name of the path column: given by name, by position, or the first column by default."""
    names: list[str] = table.names if isinstance(table, pa.Schema) else table.column_names
    if not names:
        raise InvalidArgumentError("the dataframe has no columns; the first column must hold datapoint paths")
    if path_column is None:
        return names[0]
    if isinstance(path_column, int) and not isinstance(path_column, bool):
        if not -len(names) <= path_column < len(names):
            raise InvalidArgumentError(f"path column index {path_column} is out of range for {len(names)} columns")
        return names[path_column]
    if not isinstance(path_column, str) or path_column not in names:
        raise InvalidArgumentError(f"no column named {path_column!r} for the paths; columns are {names}")
    return path_column


def prepare(
    data: Any, path_column: str | int | None, field_types: Callable[[list[str]], Mapping[str, FieldType]]
) -> tuple[pa.Table | pa.RecordBatchReader, str]:
    """The table (or, for a stream, the reader) to upload and its path column's name; ``field_types(names)``
    gives the known types.

    A ``datapoint_id`` column (as in a query result's dataframe) is dropped: it is the datapoint's own
    id, not a field. All-null columns of a table are dropped: they give no value to write. A stream is
    converted batch by batch as it is read; a bad batch raises then, which aborts the upload.
    """
    source = to_arrow(data)
    if isinstance(source, pa.RecordBatchReader):
        return _prepare_stream(source, path_column, field_types)
    table = source
    path_name = path_column_name(table, path_column)
    _check_names(table.column_names)
    columns, names = [_path_column(path_name, table.column(path_name))], [path_name]
    known = field_types([name for name in table.column_names if name != path_name])
    for name, column in zip(table.column_names, table.columns):
        if name in (path_name, DATAPOINT_ID_COLUMN):
            continue
        _check_name(name)
        converted = _field_column(name, column, known.get(name))
        if converted is not None:
            columns.append(converted)
            names.append(name)
    return pa.Table.from_arrays(columns, names=names), path_name


def _check_names(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"duplicate column names in {names}")


def _check_name(name: str) -> None:
    try:
        validate_field_name(name)
    except ValueError as error:
        raise InvalidArgumentError(f"column {name!r}: {error}") from None


def _prepare_stream(
    reader: pa.RecordBatchReader,
    path_column: str | int | None,
    field_types: Callable[[list[str]], Mapping[str, FieldType]],
) -> tuple[pa.RecordBatchReader, str]:
    # The upload's schema is fixed before its first batch, so it comes from the stream's schema:
    # a column of the null type is dropped, every other one is sent (a null in it writes nothing).
    schema = reader.schema
    path_name = path_column_name(schema, path_column)
    _check_names(schema.names)
    known = field_types([name for name in schema.names if name != path_name])

    def convert(batch: pa.RecordBatch) -> pa.RecordBatch:
        columns, names = [_path_column(path_name, pa.chunked_array([batch.column(path_name)]))], [path_name]
        for name, column in zip(batch.schema.names, batch.columns):
            if name in (path_name, DATAPOINT_ID_COLUMN):
                continue
            converted = _field_column(name, pa.chunked_array([column]), known.get(name), keep_empty=True)
            if converted is not None:
                columns.append(converted)
                names.append(name)
        return pa.RecordBatch.from_arrays([column.combine_chunks() for column in columns], names=names)

    for name in schema.names:
        if name not in (path_name, DATAPOINT_ID_COLUMN):
            _check_name(name)
    # Converting an empty batch checks every column's type against its field before anything is sent.
    target = convert(pa.RecordBatch.from_pylist([], schema=schema)).schema
    batches = (convert(batch) for batch in reader if batch.num_rows)
    return pa.RecordBatchReader.from_batches(target, batches), path_name


def _path_column(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_null(column.type) and len(column) == 0:
        # An empty object column (pandas < 3 has no string dtype by default) carries no type.
        return pa.chunked_array([], pa.string())
    if arrow_kind(column.type) is not FieldType.STRING:
        raise InvalidArgumentError(f"path column '{name}' must hold strings, not {column.type}")
    if column.null_count:
        missing = "a missing path" if column.null_count == 1 else f"{column.null_count} missing paths"
        raise InvalidArgumentError(f"path column '{name}' has {missing}")
    return _cast(name, column, pa.string())


def _field_column(
    name: str, column: pa.ChunkedArray, expected: FieldType | None, keep_empty: bool = False
) -> pa.ChunkedArray | None:
    try:
        given = arrow_kind(column.type)
    except FieldTypeMismatchError as error:
        raise FieldTypeMismatchError(f"column '{name}': {error}") from None
    if given is None or (column.null_count == len(column) and not keep_empty):
        return None
    if given is FieldType.VECTOR and expected in (None, FieldType.VECTOR):
        return column  # the service checks dimensions and elements, naming the datapoint at fault
    if given.is_annotation and expected in (None, given):
        return column  # the service conforms and checks annotation columns, optional parts left out included
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
    if pa.types.is_float16(column.type):
        # pyarrow < 16 cannot cast half floats; numpy can, and its NaN for a null is "no value" here.
        column = pa.chunked_array(
            [
                pa.array(chunk.to_numpy(zero_copy_only=False).astype("float64"), from_pandas=True)
                for chunk in column.chunks
            ],
            pa.float64(),
        )
    # Sub-microsecond timestamp digits and float precision beyond 2**53 are dropped, not errors.
    safe = not (pa.types.is_timestamp(target) or pa.types.is_floating(target))
    try:
        column = column.cast(target, safe=safe)
    except _ARROW_ERRORS as error:
        raise FieldTypeMismatchError(f"column '{name}' cannot be stored as {target}: {error}") from None
    return _nan_to_null(column) if pa.types.is_floating(target) else column


def _nan_to_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # NaN means "no value" (docs/design.md, "Missing values"); pandas input already has it as null, Arrow input may not.
    nan = pc.is_nan(column)
    return pc.if_else(nan, pa.scalar(None, column.type), column) if pc.any(nan).as_py() else column
