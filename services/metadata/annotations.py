"""Annotation fields in the store: validation of written values, their SQL types, and JSON for PostgreSQL.

A write of an annotation column is conformed to its kind's Arrow type (fields matched by name,
optional ones may be left out) and checked as a whole column; the first bad value rejects the whole
write with an error naming its row and problem, which ``coerce_write`` turns into the datapoint's path.

DuckDB keeps each kind in its native nested type (STRUCT / STRUCT[]). PostgreSQL keeps it as
``jsonb``: one column type for every kind, indexable with GIN and queried with ``jsonb_array_elements``
and containment, where a composite type per kind would need DDL per datasource and has no Arrow path
through the ADBC driver. Values cross the driver as JSON text (Arrow's JSON type) and are parsed
back into the kind's Arrow type, so both engines return the same Arrow. The column types themselves
are the annotation rows of the store's ``FIELD_STORAGE``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core import labels
from thresher.core.types import FieldType
from thresher.services.metadata.domain_errors import InvalidArgument, TypeMismatch
from thresher.v1 import common_pb2

# Slack for boxes and points computed from pixel coordinates in floating point.
EDGE_TOLERANCE = 1e-6
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_DUCKDB_COMMON = "confidence DOUBLE, instance_id BIGINT, attributes VARCHAR"
DUCKDB_TYPES = {
    FieldType.CLASSIFICATION: "STRUCT(label VARCHAR, confidence DOUBLE)",
    FieldType.DETECTIONS: f"STRUCT(label VARCHAR, box DOUBLE[], {_DUCKDB_COMMON})[]",
    FieldType.POLYLINES: f"STRUCT(label VARCHAR, points DOUBLE[][], closed BOOLEAN, filled BOOLEAN, {_DUCKDB_COMMON})[]",
    FieldType.KEYPOINTS: f"STRUCT(label VARCHAR, points DOUBLE[][], {_DUCKDB_COMMON})[]",
    FieldType.SEGMENTATION: "STRUCT(mask VARCHAR, classes VARCHAR[])",
}


class AnnotationError(InvalidArgument):
    """A malformed annotation value; ``row`` is its row in the write."""

    def __init__(self, field: str, row: int, problem: str) -> None:
        super().__init__(f"field {field!r}: {problem}")
        self.field, self.row, self.problem = field, row, problem

    def at_path(self, path: str) -> InvalidArgument:
        return InvalidArgument(f"field {self.field!r} of datapoint {path!r}: {self.problem}")


def write_arrow_type(kind: FieldType) -> pa.DataType:
    """The Arrow type a write carries for ``kind`` (a segmentation may carry its mask's bytes)."""
    return labels.SEGMENTATION_WRITE_TYPE if kind is FieldType.SEGMENTATION else kind.arrow_type


def coerce(name: str, array: pa.Array, given: FieldType | None, existing: FieldType | None) -> pa.Array | None:
    """``array`` in the annotation field's write type, checked; None when it holds no values."""
    if given is None:
        return None
    target = existing or given
    if given is not target:
        raise TypeMismatch(f"field {name!r} has type {target.value}; got {given.value} values")
    if array.null_count == len(array):
        return None
    array = _conform(name, array, write_arrow_type(target))
    _CHECKS[target](name, array)
    return array


def _conform(name: str, array: pa.Array, target: pa.DataType) -> pa.Array:
    """``array`` with exactly ``target``'s struct fields, matched by name; absent optional ones are null."""
    if pa.types.is_list(target):
        if pa.types.is_large_list(array.type):
            array = array.cast(pa.list_(array.type.value_type))
        values = _conform(name, array.values, target.value_type)
        return pa.ListArray.from_arrays(array.offsets, values, type=target, mask=array.is_null())
    if pa.types.is_struct(target):
        present = {array.type.field(i).name: array.field(i) for i in range(array.type.num_fields)}
        unknown = set(present) - {target.field(i).name for i in range(target.num_fields)}
        if unknown:
            raise TypeMismatch(f"field {name!r}: unknown annotation attribute(s) {sorted(unknown)}")
        children = []
        for i in range(target.num_fields):
            spec = target.field(i)
            child = present.get(spec.name)
            children.append(pa.nulls(len(array), spec.type) if child is None else _conform(name, child, spec.type))
        return pa.StructArray.from_arrays(children, fields=list(target), mask=array.is_null())
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise TypeMismatch(
            f"field {name!r}: annotation values of type {array.type} where {target} is needed: {error}"
        ) from None


def _first(mask: pa.Array | np.ndarray) -> int | None:
    mask = np.asarray(mask.to_numpy(zero_copy_only=False) if isinstance(mask, pa.Array) else mask, dtype=bool)
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _check_labels(name: str, objects: pa.StructArray, rows: np.ndarray, what: str) -> None:
    label = objects.field("label")
    bad = _first(pc.fill_null(pc.equal(pc.utf8_length(label), 0), True))
    if bad is not None:
        raise AnnotationError(name, int(rows[bad]), f"{what} {_index(rows, bad)} has no label")
    confidence = objects.field("confidence")
    bad = _first(
        pc.fill_null(pc.invert(pc.and_(pc.greater_equal(confidence, 0.0), pc.less_equal(confidence, 1.0))), False)
    )
    if bad is not None:
        raise AnnotationError(
            name,
            int(rows[bad]),
            f"{what} {_index(rows, bad)} has confidence {confidence[bad].as_py()!r}, not in [0, 1]",
        )


def _index(rows: np.ndarray, position: int) -> int:
    """The position of object ``position`` within its own datapoint's list."""
    return int(position - np.searchsorted(rows, rows[position]))


def _check_attributes(name: str, objects: pa.StructArray, rows: np.ndarray) -> None:
    attributes = objects.field("attributes")
    if attributes.null_count == len(attributes):
        return
    for position, text in enumerate(attributes.to_pylist()):
        if text is None:
            continue
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise AnnotationError(
                name,
                int(rows[position]),
                f"object {_index(rows, position)} has attributes that are not a JSON object: {text[:60]!r}",
            )


def _objects(array: pa.ListArray) -> tuple[pa.StructArray, np.ndarray]:
    """The objects of every row, and each object's row."""
    return array.flatten(), pc.list_parent_indices(array).to_numpy()


def _coordinates(name: str, lists: pa.ListArray, per_item: int, rows: np.ndarray, what: str) -> np.ndarray:
    """The numbers of ``lists`` as an (n, per_item) array, each list checked to hold ``per_item`` numbers."""
    lengths = pc.fill_null(pc.list_value_length(lists), -1).to_numpy()
    bad = _first(lengths != per_item)
    if bad is not None:
        raise AnnotationError(
            name, int(rows[bad]), f"{what} {_index(rows, bad)} has {max(lengths[bad], 0)} coordinates, not {per_item}"
        )
    values = lists.flatten()
    numbers: np.ndarray = pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False).reshape(-1, per_item)
    bad = _first(~np.isfinite(numbers).all(axis=1))
    if bad is not None:
        raise AnnotationError(
            name, int(rows[bad]), f"{what} {_index(rows, bad)} has a missing or non-finite coordinate"
        )
    return numbers


def _check_classification(name: str, array: pa.StructArray) -> None:
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    rows = np.arange(len(array))
    objects = array.filter(pa.array(valid))
    _check_labels(name, objects, rows[valid], "the classification")


def _check_detections(name: str, array: pa.ListArray) -> None:
    objects, rows = _objects(array)
    _check_labels(name, objects, rows, "object")
    boxes = _coordinates(name, objects.field("box"), 4, rows, "the box of object")
    x, y, w, h = boxes.T
    outside = (
        (x < -EDGE_TOLERANCE)
        | (y < -EDGE_TOLERANCE)
        | (w < 0)
        | (h < 0)
        | (x + w > 1 + EDGE_TOLERANCE)
        | (y + h > 1 + EDGE_TOLERANCE)
    )
    bad = _first(outside)
    if bad is not None:
        raise AnnotationError(
            name,
            int(rows[bad]),
            f"the box of object {_index(rows, bad)} "
            f"{boxes[bad].tolist()} is not a relative [x, y, w, h] "
            "inside the image",
        )
    _check_attributes(name, objects, rows)


def _check_points(name: str, array: pa.ListArray) -> None:
    objects, rows = _objects(array)
    _check_labels(name, objects, rows, "object")
    points = objects.field("points")
    # Each object's points, then each point's two coordinates.
    point_rows = rows[pc.list_parent_indices(points).to_numpy()] if len(points) else rows[:0]
    per_point = points.flatten()
    point_object = pc.list_parent_indices(points).to_numpy()
    coords = _coordinates(name, per_point, 2, point_rows, "a point of")
    outside = ((coords < -EDGE_TOLERANCE) | (coords > 1 + EDGE_TOLERANCE)).any(axis=1)
    bad = _first(outside)
    if bad is not None:
        obj = int(point_object[bad])
        raise AnnotationError(
            name, int(rows[obj]), f"object {_index(rows, obj)} has point {coords[bad].tolist()} outside the image"
        )
    _check_attributes(name, objects, rows)


def _check_segmentation(name: str, array: pa.StructArray) -> None:
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    mask, data = array.field("mask"), array.field("mask_bytes")
    has_mask = pc.is_valid(mask).to_numpy(zero_copy_only=False) & valid
    has_bytes = pc.is_valid(data).to_numpy(zero_copy_only=False) & valid
    bad = _first(valid & (has_mask == has_bytes))
    if bad is not None:
        raise AnnotationError(name, bad, "a segmentation needs exactly one of a mask digest or the mask's bytes")
    for row in np.flatnonzero(has_mask):
        if not _SHA256.match(mask[int(row)].as_py()):
            raise AnnotationError(name, int(row), f"mask {mask[int(row)].as_py()[:80]!r} is not a sha256 hex digest")
    classes = array.field("classes").flatten()
    bad = _first(pc.is_null(classes))
    if bad is not None:
        parent = int(pc.list_parent_indices(array.field("classes")).to_numpy()[bad])
        raise AnnotationError(name, parent, "a segmentation class name is missing")


_CHECKS: dict[FieldType, Callable[[str, pa.Array], None]] = {
    FieldType.CLASSIFICATION: _check_classification,
    FieldType.DETECTIONS: _check_detections,
    FieldType.POLYLINES: _check_points,
    FieldType.KEYPOINTS: _check_points,
    FieldType.SEGMENTATION: _check_segmentation,
}


def store_masks(array: pa.StructArray, put_many: Callable[[list[bytes]], Sequence[str | None]]) -> pa.Array:
    """A segmentation column in its stored type: mask bytes go to the blob store, the value keeps the digest."""
    data = array.field("mask_bytes")
    digests = array.field("mask").to_pylist()
    given = [(i, value) for i, value in enumerate(data.to_pylist()) if value is not None]
    for (i, _), digest in zip(given, put_many([value for _, value in given])):
        digests[i] = digest
    return pa.StructArray.from_arrays(
        [pa.array(digests, pa.string()), array.field("classes")],
        fields=list(FieldType.SEGMENTATION.arrow_type),
        mask=array.is_null(),
    )


def stored_values(
    kind: FieldType, array: pa.Array, put_many: Callable[[list[bytes]], Sequence[str | None]]
) -> pa.Array:
    """An annotation column as a store keeps it (segmentation masks moved to the blob store)."""
    return store_masks(array, put_many) if kind is FieldType.SEGMENTATION else array


def to_json_text(array: pa.Array) -> pa.Array:
    """Each value as JSON text (null stays null), for PostgreSQL's jsonb."""
    return pa.array(
        [
            None if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)
            for value in array.to_pylist()
        ],
        pa.string(),
    )


def from_json_text(array: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """The annotation values of a column of JSON text (as PostgreSQL returns jsonb) in ``target``."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array, pa.ExtensionArray):  # Arrow's JSON type, as the PostgreSQL driver returns jsonb
        array = array.storage
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    return pa.array([None if text is None else json.loads(text) for text in array.to_pylist()], target)


def is_json_for(column_type: pa.DataType, target: pa.DataType) -> bool:
    """Whether a store returned ``target``'s annotation values as JSON text (PostgreSQL)."""
    return labels.kind_of_arrow_type(target) is not None and not pa.types.is_nested(column_type)


# Queries -----------------------------------------------------------------------------------------

_MEASURE_TYPES = {
    common_pb2.OBJECT_MEASURE_KIND_COUNT: FieldType.INT,
    common_pb2.OBJECT_MEASURE_KIND_MAX_CONFIDENCE: FieldType.FLOAT,
    common_pb2.OBJECT_MEASURE_KIND_MIN_CONFIDENCE: FieldType.FLOAT,
}


def measure_sql(
    field: str,
    column_sql: str,
    kind: FieldType,
    measure: common_pb2.ObjectMeasure,
    engine: str,
    param: Callable[[object], str],
) -> tuple[str, FieldType]:
    """SQL for a number computed from an annotation column's objects, and its type.

    ``engine`` is ``"duckdb"`` or ``"postgres"``; ``param`` turns a value into a placeholder. The
    result is NULL where the field has no value, so a missing annotation satisfies no comparison.
    """
    if not kind.is_annotation or kind is FieldType.SEGMENTATION:
        raise InvalidArgument(f"field {field!r} of type {kind.value} has no objects to count or measure")
    if measure.kind not in _MEASURE_TYPES:
        raise InvalidArgument(f"unknown object measure {measure.kind} on field {field!r}")
    label = param(measure.label) if measure.HasField("label") else None
    if engine == "duckdb":
        objects = f"[{column_sql}]" if kind is FieldType.CLASSIFICATION else column_sql
        if label is not None:
            objects = f"list_filter({objects}, lambda o: o.label = {label})"
        if measure.kind == common_pb2.OBJECT_MEASURE_KIND_COUNT:
            sql = f"CAST(len({objects}) AS BIGINT)"
        else:
            aggregate = "list_max" if measure.kind == common_pb2.OBJECT_MEASURE_KIND_MAX_CONFIDENCE else "list_min"
            sql = f"{aggregate}(list_transform({objects}, lambda o: o.confidence))"
        return f"(CASE WHEN {column_sql} IS NULL THEN NULL ELSE {sql} END)", _MEASURE_TYPES[measure.kind]
    listed = f"jsonb_build_array({column_sql})" if kind is FieldType.CLASSIFICATION else column_sql
    objects = f"jsonb_array_elements({listed}) AS e(o)"
    where = f" WHERE o->>'label' = {label}" if label is not None else ""
    if measure.kind == common_pb2.OBJECT_MEASURE_KIND_COUNT:
        value = "count(*)"
    else:
        aggregate = "max" if measure.kind == common_pb2.OBJECT_MEASURE_KIND_MAX_CONFIDENCE else "min"
        value = f"{aggregate}((o->>'confidence')::double precision)"
    sql = f"(SELECT {value} FROM {objects}{where})"
    return f"(CASE WHEN {column_sql} IS NULL THEN NULL ELSE {sql} END)", _MEASURE_TYPES[measure.kind]
