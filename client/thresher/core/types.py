"""The field type system (docs/design.md, "Data model"), shared by the client and the services.

A field has one of the types below: six scalar kinds, the annotation kinds, or vector. Python and
numpy/pandas scalars map to them by kind (a Python ``bool`` is a bool, never an int); ``None``, NaN
and NaT mean "no value". Arrow carries each field's type in the field metadata under
``thresher.type`` so that any Arrow reader of a query result knows it.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import numbers
from typing import Any

import numpy as np
import pyarrow as pa

from thresher.core import labels
from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError
from thresher.core.vectors import is_vector_type
from thresher.v1 import common_pb2

TYPE_METADATA_KEY = b"thresher.type"
SCAN_STATE_METADATA_KEY = b"thresher.scan_state"
DATASOURCE_METADATA_KEY = b"thresher.datasource_id"

# Columns every query result starts with; no field may take these names.
PATH_COLUMN = "path"
DATAPOINT_ID_COLUMN = "datapoint_id"
RESERVED_NAMES = frozenset({PATH_COLUMN, DATAPOINT_ID_COLUMN})


class FieldType(str, enum.Enum):
    """The type of a metadata field."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    DATETIME = "datetime"
    BLOB = "blob"
    VECTOR = "vector"  # fixed dimension, float32/float16: see ``thresher.core.vectors``
    # Annotation fields: the type is "annotation" and the kind follows the colon (see thresher.core.labels).
    CLASSIFICATION = "annotation:classification"
    DETECTIONS = "annotation:detections"
    POLYLINES = "annotation:polylines"
    KEYPOINTS = "annotation:keypoints"
    SEGMENTATION = "annotation:segmentation"

    @property
    def is_annotation(self) -> bool:
        return self.value.startswith("annotation:")

    @property
    def annotation_kind(self) -> str | None:
        """The annotation kind (``"detections"``, ...), None for a scalar type."""
        return self.value.partition(":")[2] or None

    @classmethod
    def annotation(cls, kind: str) -> FieldType:
        """The field type of an annotation kind."""
        try:
            return cls(f"annotation:{kind}")
        except ValueError:
            raise ValueError(f"unknown annotation kind {kind!r}; one of {', '.join(labels.KINDS)}") from None

    @property
    def proto(self) -> common_pb2.FieldType:
        return _TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> FieldType:
        try:
            return _FROM_PROTO[value]
        except KeyError:
            raise ValueError(f"unknown field type enum value {value}") from None

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self]


_TO_PROTO = {
    FieldType.INT: common_pb2.FIELD_TYPE_INT,
    FieldType.FLOAT: common_pb2.FIELD_TYPE_FLOAT,
    FieldType.BOOL: common_pb2.FIELD_TYPE_BOOL,
    FieldType.STRING: common_pb2.FIELD_TYPE_STRING,
    FieldType.DATETIME: common_pb2.FIELD_TYPE_DATETIME,
    FieldType.BLOB: common_pb2.FIELD_TYPE_BLOB,
    FieldType.VECTOR: common_pb2.FIELD_TYPE_VECTOR,
    FieldType.CLASSIFICATION: common_pb2.FIELD_TYPE_ANNOTATION_CLASSIFICATION,
    FieldType.DETECTIONS: common_pb2.FIELD_TYPE_ANNOTATION_DETECTIONS,
    FieldType.POLYLINES: common_pb2.FIELD_TYPE_ANNOTATION_POLYLINES,
    FieldType.KEYPOINTS: common_pb2.FIELD_TYPE_ANNOTATION_KEYPOINTS,
    FieldType.SEGMENTATION: common_pb2.FIELD_TYPE_ANNOTATION_SEGMENTATION,
}
_FROM_PROTO: dict[int, FieldType] = {v: k for k, v in _TO_PROTO.items()}

UTC = _dt.UTC
_ARROW_TYPES = {
    FieldType.INT: pa.int64(),
    FieldType.FLOAT: pa.float64(),
    FieldType.BOOL: pa.bool_(),
    FieldType.STRING: pa.string(),
    FieldType.DATETIME: pa.timestamp("us", tz="UTC"),
    # A blob field holds the sha256 hex digest of bytes kept in the blob store.
    FieldType.BLOB: pa.string(),
    # Any dimension; results use the field's own FixedSizeList type (``thresher.core.vectors.VectorSpec``).
    FieldType.VECTOR: pa.list_(pa.float32()),
    **{FieldType(f"annotation:{kind}"): arrow_type for kind, arrow_type in labels.ARROW_TYPES.items()},
}


def is_missing(value: Any) -> bool:
    """True for the values that mean "no value": None, NaN, NaT and pandas' NA."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    # pandas' NA and NaT without importing pandas at module import time.
    return type(value).__name__ in ("NAType", "NaTType")


def infer_type(value: Any) -> FieldType | None:
    """The field type a Python, numpy or pandas scalar maps to; None for a missing value."""
    if is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return FieldType.BOOL
    if isinstance(value, numbers.Integral):
        return FieldType.INT
    if isinstance(value, numbers.Real):
        return FieldType.FLOAT
    if isinstance(value, str):
        return FieldType.STRING
    if isinstance(value, _dt.datetime | np.datetime64) or type(value).__name__ == "Timestamp":
        return FieldType.DATETIME
    if isinstance(value, _dt.date):
        return FieldType.DATETIME
    if isinstance(value, bytes | bytearray | memoryview):
        return FieldType.BLOB
    if labels.is_label(value):
        return FieldType.annotation(value.kind)
    if _is_vector_value(value):
        return FieldType.VECTOR
    raise FieldTypeMismatchError(
        f"values of Python type {type(value).__name__} cannot be stored; "
        "use int, float, bool, str, datetime, bytes, a thresher.core.labels value or a 1-D array of numbers (a vector)"
    )


def _is_vector_value(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "fiu"
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in value)
    )


def to_utc_datetime(value: Any) -> _dt.datetime:
    """A timezone-aware UTC datetime; naive values are taken as UTC."""
    if isinstance(value, np.datetime64):
        micros = value.astype("datetime64[us]").astype(np.int64)
        return _dt.datetime(1970, 1, 1, tzinfo=UTC) + _dt.timedelta(microseconds=int(micros))
    if type(value).__name__ == "Timestamp":
        value = value.to_pydatetime()
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise FieldTypeMismatchError(f"{value!r} is not a datetime")


def utf8_text(text: str, what: str) -> str:
    """``text`` when it can be encoded as UTF-8 (no lone surrogates, as from undecodable file names)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidArgumentError(
            f"{what} is not valid UTF-8 ({error.reason} at position {error.start}): {text[:60]!r}"
        ) from None
    return text


def to_proto_value(value: Any) -> common_pb2.Value:
    """Encodes one scalar as a protobuf Value (an empty Value for a missing one)."""
    kind = infer_type(value)
    message = common_pb2.Value()
    if kind is None:
        return message
    if kind is FieldType.BOOL:
        message.bool_value = bool(value)
    elif kind is FieldType.INT:
        as_int = int(value)
        if not -(2**63) <= as_int < 2**63:
            raise FieldTypeMismatchError(f"integer {as_int} does not fit in 64 bits")
        message.int_value = as_int
    elif kind is FieldType.FLOAT:
        message.float_value = float(value)
    elif kind is FieldType.STRING:
        message.string_value = utf8_text(value, "a string value")
    elif kind is FieldType.DATETIME:
        message.datetime_value.FromDatetime(to_utc_datetime(value))
    elif kind is FieldType.VECTOR:
        elements = np.asarray(value, dtype=np.float64)
        if not np.isfinite(elements).all():
            raise InvalidArgumentError("a vector value holds NaN or infinite elements")
        message.vector_value.values.extend(elements.astype(np.float32).tolist())
    elif kind.is_annotation:
        message.annotation_value.CopyFrom(labels.to_proto(value, kind.proto))
    else:
        message.blob_value = bytes(value)
    return message


_PROTO_KINDS = {
    "int_value": FieldType.INT,
    "float_value": FieldType.FLOAT,
    "bool_value": FieldType.BOOL,
    "string_value": FieldType.STRING,
    "datetime_value": FieldType.DATETIME,
    "blob_value": FieldType.BLOB,
    "vector_value": FieldType.VECTOR,
}


def from_proto_value(message: common_pb2.Value) -> tuple[FieldType | None, Any]:
    """Decodes a protobuf Value into (its type, a Python value); (None, None) when empty."""
    kind = message.WhichOneof("kind")
    if kind is None:
        return None, None
    if kind == "datetime_value":
        return FieldType.DATETIME, message.datetime_value.ToDatetime(tzinfo=UTC)
    if kind == "vector_value":
        return FieldType.VECTOR, list(message.vector_value.values)
    if kind == "annotation_value":
        try:
            field_type = FieldType.from_proto(message.annotation_value.type)
        except ValueError:
            field_type = None
        annotation_kind = field_type.annotation_kind if field_type is not None else None
        if field_type is None or annotation_kind is None:
            raise InvalidArgumentError(
                f"an annotation value has type {message.annotation_value.type}, not one of the annotation kinds"
            )
        return field_type, labels.plain_from_proto(annotation_kind, message.annotation_value)
    return _PROTO_KINDS[kind], getattr(message, kind)


def arrow_kind(data_type: pa.DataType) -> FieldType | None:
    """The field type an Arrow column of this type carries; None for an all-null column."""
    if pa.types.is_dictionary(data_type):
        return arrow_kind(data_type.value_type)
    if pa.types.is_null(data_type):
        return None
    if is_vector_type(data_type):
        return FieldType.VECTOR
    if pa.types.is_boolean(data_type):
        return FieldType.BOOL
    if pa.types.is_integer(data_type):
        return FieldType.INT
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return FieldType.FLOAT
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or _is_view("is_string_view", data_type):
        return FieldType.STRING
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return FieldType.DATETIME
    if (kind := labels.kind_of_arrow_type(data_type)) is not None:
        return FieldType.annotation(kind)
    if (
        pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
        or pa.types.is_fixed_size_binary(data_type)
        or _is_view("is_binary_view", data_type)
    ):
        return FieldType.BLOB
    raise FieldTypeMismatchError(f"Arrow type {data_type} cannot be stored")


def _is_view(predicate: str, data_type: pa.DataType) -> bool:
    # String and binary views arrived in pyarrow 16; an older pyarrow has no such types to meet.
    check = getattr(pa.types, predicate, None)
    return check is not None and check(data_type)


def field_type_of(arrow_field: pa.Field) -> FieldType | None:
    """The Thresher type recorded in an Arrow field's metadata, if any."""
    metadata = arrow_field.metadata or {}
    raw = metadata.get(TYPE_METADATA_KEY)
    return FieldType(raw.decode()) if raw else None


def validate_field_name(name: str) -> None:
    """Rejects names no field may have."""
    if not isinstance(name, str) or not name:
        raise ValueError("a field name must be a non-empty string")
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved for the datapoint's own column and cannot be a field name")
    if "\x00" in name:
        raise ValueError(f"field name {name!r} contains a NUL character")
