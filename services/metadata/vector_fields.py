"""Vector fields in the store: validating a write, the stored type names, and field records.

The store calls these few functions where a field's type is read, written or turned into a column
(the column types are the vector row of ``store.dialect.FIELD_STORAGE``); everything else about
vectors lives here and in ``nearest``. A write of vectors is checked as a whole
before anything is stored: every vector must have the field's dimension (fixed by its first write) and
finite elements, and the error names the datapoint that broke the rule.

Storage: DuckDB keeps a vector field as a ``FLOAT[d]`` ARRAY column; PostgreSQL as ``real[]``, which
ADBC's bulk ingest and its Arrow reads carry natively (a bytea would need a per-row decode on read,
and pgvector is not available to the project). Both hold 32-bit elements; float16 fields are narrowed
when results are built. PostgreSQL picks a vector's value at an earlier instant through jsonb (see
``PostgresDialect.last_by``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core.types import FieldType, arrow_kind
from thresher.core.vectors import VectorSpec, is_vector_type
from thresher.services.metadata.coercion import CoercedColumn
from thresher.services.metadata.domain_errors import InvalidArgument, TypeMismatch

if TYPE_CHECKING:  # the stores import this module, so it must not import the store package first
    from thresher.services.metadata.store.records import FieldRecord

# What ``_add_fields`` receives per new field: a plain type, or a vector spec.
FieldKind = FieldType | VectorSpec


def is_vector_write(array: pa.Array | pa.ChunkedArray, existing: FieldRecord | None) -> bool:
    """Whether a write column goes through ``coerce_vector_column`` (it holds lists, or the field is a vector)."""
    return is_vector_type(array.type) or (existing is not None and existing.type is FieldType.VECTOR)


def coerce_vector_column(
    name: str, array: pa.Array | pa.ChunkedArray, existing: FieldRecord | None, paths: pa.Array
) -> CoercedColumn | None:
    """The column's vectors as 32-bit ``FixedSizeList`` values, or the error naming the first bad datapoint.

    Returns None for a column without values (a missing vector leaves the field as it is).
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if existing is not None and existing.type is not FieldType.VECTOR:
        raise TypeMismatch(f"field {name!r} has type {existing.type.value}; got vector values")
    if not is_vector_type(array.type):
        given = arrow_kind(array.type)
        if given is None or array.null_count == len(array):
            return None
        raise TypeMismatch(f"field {name!r} has type vector; got {given.value} values")
    if array.null_count == len(array):
        return None
    valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(array.type):
        lengths = np.full(len(array), array.type.list_size, dtype=np.int64)
    else:
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    spec = existing.vector if existing is not None else None
    dimension = spec.dimension if spec else int(lengths[valid][0])
    wrong = valid & (lengths != dimension)
    if wrong.any():
        row = int(np.argmax(wrong))
        raise InvalidArgument(
            f"field {name!r} holds vectors of {dimension} elements; datapoint "
            f"{paths[row].as_py()!r} has one of {int(lengths[row])}"
        )
    if spec is None:
        element = array.type.value_type
        spec = VectorSpec(dimension, "float16" if pa.types.is_float16(element) else "float32")
    kept = array.filter(pa.array(valid))
    flat = kept.flatten()
    if flat.null_count:
        _reject(name, paths, valid, pc.is_null(flat), dimension, "a missing element")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, rejected just below
        elements = flat.to_numpy(zero_copy_only=False).astype(np.float32)
    finite = np.isfinite(elements)
    if not finite.all():
        _reject(name, paths, valid, pa.array(~finite), dimension, "a NaN or infinite element (or one beyond float32)")
    full = np.zeros((len(array), dimension), dtype=np.float32)
    full[valid] = elements.reshape(-1, dimension)
    # Built from buffers: FixedSizeListArray.from_arrays takes a null mask only from pyarrow 17.
    values = pa.Array.from_buffers(
        pa.list_(pa.float32(), dimension),
        len(array),
        [pa.array(valid).buffers()[1]],
        null_count=int(len(array) - valid.sum()),
        children=[pa.array(full.reshape(-1))],
    )
    return CoercedColumn(name, FieldType.VECTOR, values, spec)


def _reject(name: str, paths: pa.Array, valid: np.ndarray, bad: pa.Array, dimension: int, what: str) -> None:
    element = pc.index(bad, True).as_py()
    row = int(np.flatnonzero(valid)[element // dimension])
    raise InvalidArgument(
        f"field {name!r}: the vector of datapoint {paths[row].as_py()!r} holds {what} "
        f"at position {element % dimension}; nothing was written"
    )


def new_field_kind(column: CoercedColumn) -> FieldKind:
    """What a store passes to ``_add_fields`` for a new field."""
    return column.vector or column.type


def stored_type_name(kind: FieldKind) -> str:
    """The type name kept in the store's ``fields`` table."""
    return kind.stored_name if isinstance(kind, VectorSpec) else kind.value


def field_record(
    name: str, stored_type: str | FieldKind, tags: tuple[str, ...], created_at: dt.datetime, column: str
) -> FieldRecord:
    """A field record from the row of the ``fields`` table (or the kind just created)."""
    from thresher.services.metadata.store.records import FieldRecord

    if isinstance(stored_type, VectorSpec):
        return FieldRecord(name, FieldType.VECTOR, tuple(tags), created_at, column, stored_type)
    if isinstance(stored_type, FieldType):
        return FieldRecord(name, stored_type, tuple(tags), created_at, column)
    spec = VectorSpec.parse(stored_type)
    if spec is not None:
        return FieldRecord(name, FieldType.VECTOR, tuple(tags), created_at, column, spec)
    return FieldRecord(name, FieldType(stored_type), tuple(tags), created_at, column)


def arrow_type(kind: FieldType, spec: VectorSpec | None) -> pa.DataType:
    """The Arrow type of a field's values in results and history."""
    return spec.arrow_type if spec is not None else kind.arrow_type
