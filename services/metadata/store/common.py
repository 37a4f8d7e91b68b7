"""What every store shares: log operation codes, write validation and the shape of results."""

from __future__ import annotations

import pyarrow as pa

from thresher.types import DATASOURCE_METADATA_KEY, SCAN_STATE_METADATA_KEY, TYPE_METADATA_KEY, FieldType

from ..coercion import CoercedColumn, coerce_column, coerce_paths
from ..errors import InvalidArgument, TypeMismatch
from .records import DatasourceRecord, FieldRecord

# The ``op`` of a log row (see ``base``).
OP_UPSERT, OP_DELETE_VALUES, OP_DELETE_DATAPOINT = 0, 1, 2
LOG_OPERATIONS = {OP_UPSERT: "set", OP_DELETE_VALUES: "delete_metadata", OP_DELETE_DATAPOINT: "delete_datapoint"}


def check_same_type(name: str, existing: FieldRecord | None, kind: FieldType) -> None:
    if existing is not None and existing.type is not kind:
        raise TypeMismatch(f"field {name!r} has type {existing.type.value}; got {kind.value}")


def coerce_write(table: pa.Table, path_column: str,
                 known: dict[str, FieldRecord]) -> tuple[pa.Array, list[CoercedColumn]]:
    """The paths and the field columns of a write, each in its field's type (new fields: as given)."""
    if path_column not in table.column_names:
        raise InvalidArgument(f"path column {path_column!r} is not among the columns {table.column_names}")
    if len(set(table.column_names)) != len(table.column_names):
        raise InvalidArgument(f"column names repeat: {table.column_names}")
    paths = coerce_paths(table[path_column], path_column)
    columns = []
    for name in table.column_names:
        if name == path_column:
            continue
        existing = known.get(name)
        column = coerce_column(name, table[name], existing.type if existing else None)
        if column is not None:
            columns.append(column)
    return paths, columns


def field_id(field: FieldRecord) -> int:
    """The number in the field's column name ``f<id>``."""
    return int(field.column[1:])


def result_schema(datasource: DatasourceRecord, columns) -> pa.Schema:
    """A query result's schema: path, datapoint_id, then the selected fields with their types."""
    arrow_fields = [pa.field("path", pa.string(), nullable=False), pa.field("datapoint_id", pa.int64(), nullable=False)]
    for column in columns[2:]:
        arrow_fields.append(pa.field(column.name, column.type.arrow_type,
                                     metadata={TYPE_METADATA_KEY: column.type.value.encode()}))
    return pa.schema(arrow_fields, metadata={SCAN_STATE_METADATA_KEY: datasource.scan.state.encode(),
                                             DATASOURCE_METADATA_KEY: str(datasource.id).encode()})


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema):
    """``batch`` with ``schema``'s names and types (stores return their own, e.g. int32 for a count)."""
    columns = [column if column.type == field.type else column.cast(field.type)
               for column, field in zip(batch.columns, schema)]
    if isinstance(batch, pa.Table):
        return pa.Table.from_arrays(columns, schema=schema)
    return pa.RecordBatch.from_arrays(columns, schema=schema)
