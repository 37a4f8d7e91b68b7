"""What every store shares: log operation codes, write validation and the shape of results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pyarrow as pa

from thresher.core.types import DATASOURCE_METADATA_KEY, SCAN_STATE_METADATA_KEY, TYPE_METADATA_KEY, FieldType
from thresher.services.metadata import vector_fields
from thresher.services.metadata.annotations import AnnotationError, from_json_text, is_json_for
from thresher.services.metadata.coercion import CoercedColumn, coerce_column, coerce_paths
from thresher.services.metadata.domain_errors import AlreadyExists, InvalidArgument, NotFound, TypeMismatch
from thresher.services.metadata.query_compiler import Column, OutputColumn, timestamp_or_none
from thresher.services.metadata.store.records import DatasourceRecord, FieldRecord
from thresher.services.metadata.validation import validate_datasource_name, validate_namespace
from thresher.v1 import common_pb2

# The ``op`` of a log row (see ``base``).
OP_UPSERT, OP_DELETE_VALUES, OP_DELETE_DATAPOINT = 0, 1, 2
LOG_OPERATIONS = {OP_UPSERT: "set", OP_DELETE_VALUES: "delete_metadata", OP_DELETE_DATAPOINT: "delete_datapoint"}


def check_same_type(name: str, existing: FieldRecord | None, kind: FieldType) -> None:
    if existing is not None and existing.type is not kind:
        raise TypeMismatch(f"field {name!r} has type {existing.type.value}; got {kind.value}")


def coerce_write(
    table: pa.Table, path_column: str, known: dict[str, FieldRecord]
) -> tuple[pa.Array, list[CoercedColumn]]:
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
        if vector_fields.is_vector_write(table[name], existing):
            column = vector_fields.coerce_vector_column(name, table[name], existing, paths)
        else:
            try:
                column = coerce_column(name, table[name], existing.type if existing else None)
            except AnnotationError as error:
                raise error.at_path(paths[error.row].as_py()) from None
        if column is not None:
            columns.append(column)
    return paths, columns


def field_id(field: FieldRecord) -> int:
    """The number in the field's column name ``f<id>``."""
    return int(field.column[1:])


def result_schema(datasource: DatasourceRecord, columns: Sequence[OutputColumn]) -> pa.Schema:
    """A query result's schema: path, datapoint_id, then the selected fields with their types."""
    arrow_fields = [pa.field("path", pa.string(), nullable=False), pa.field("datapoint_id", pa.int64(), nullable=False)]
    for column in columns[2:]:
        if column.type is None:
            raise ValueError(f"result column {column.name!r} has no field type")
        arrow_fields.append(
            pa.field(
                column.name,
                vector_fields.arrow_type(column.type, column.vector),
                metadata={TYPE_METADATA_KEY: column.type.value.encode()},
            )
        )
    return pa.schema(
        arrow_fields,
        metadata={
            SCAN_STATE_METADATA_KEY: datasource.scan.state.encode(),
            DATASOURCE_METADATA_KEY: str(datasource.id).encode(),
        },
    )


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch | pa.Table:
    """``batch`` with ``schema``'s names and types (stores return their own, e.g. int32 for a count)."""
    columns = [
        column
        if column.type == field.type
        else from_json_text(column, field.type)
        if is_json_for(column.type, field.type)
        else column.cast(field.type)
        for column, field in zip(batch.columns, schema)
    ]
    if isinstance(batch, pa.Table):
        return pa.Table.from_arrays(columns, schema=schema)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def check_new_datasource(namespace: str, name: str, source_uri: str) -> None:
    validate_namespace(namespace)
    validate_datasource_name(name)
    if not source_uri:
        raise InvalidArgument("a datasource needs a source URI")


def check_reuse(existing: DatasourceRecord, source_uri: str, revision: str, reuse: bool) -> None:
    """Raises AlreadyExists unless get-or-create may return ``existing`` for this source and revision."""
    if not reuse:
        raise AlreadyExists(f"datasource {existing.name!r} already exists in namespace {existing.namespace!r}")
    if existing.source_uri != source_uri or existing.revision != revision:
        raise AlreadyExists(
            f"datasource {existing.name!r} in namespace {existing.namespace!r} already exists with source "
            f"{existing.source_uri!r} revision {existing.revision!r}, not {source_uri!r} {revision!r}"
        )


def timed_select_items(
    query: common_pb2.Query, columns: dict[str, Column], fields_at: Callable[[dt.datetime], list[FieldRecord]]
) -> tuple[common_pb2.Query, list[tuple[str, FieldRecord, dt.datetime]]]:
    """Rewrites the select items that read their field at their own instant to read a joined column.

    Returns the rewritten query and, per such item, (joined column name, field, instant); the store
    joins each column from its log. The joined columns get names no field can have, so ``*`` skips them.
    """
    timed = [i for i, item in enumerate(query.select) if item.HasField("as_of")]
    if not timed:
        return query, []
    query = common_pb2.Query.FromString(query.SerializeToString())
    joined = []
    for i in timed:
        item = query.select[i]
        at = timestamp_or_none(item.as_of)
        known = {f.name: f for f in fields_at(at)} if at else {}
        if at is None or item.field not in known:
            raise NotFound(f"field {item.field!r} did not exist at {at.isoformat() if at else 'that time'}")
        field, name = known[item.field], f"h{i}"
        joined.append((name, field, at))
        columns[f"\x00{name}"] = Column(name, field.type, field.vector)
        item.alias = item.alias or item.field
        item.field = f"\x00{name}"
        item.ClearField("as_of")
    return query, joined
