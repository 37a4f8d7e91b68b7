"""Annotation values: classifications, detections, polylines, keypoints and segmentation masks.

A field holds labels of one kind. Each kind has one Arrow type (below), which is how its values
travel in query results and uploads, and a small dataclass for Python code. Coordinates are
relative to the image: a box is ``[x, y, w, h]`` with its top-left corner at ``(x, y)``, points are
``(x, y)`` pairs, all in [0, 1]. ``attributes`` are a JSON-able mapping kept as canonical JSON text.

The plain form of a value is what ``pyarrow``'s ``to_pylist()`` gives for the kind's Arrow type: a
dict (classification, segmentation) or a list of dicts (the object kinds).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import pyarrow as pa

from thresher.core.errors import InvalidArgumentError
from thresher.v1 import common_pb2

CLASSIFICATION = "classification"
DETECTIONS = "detections"
POLYLINES = "polylines"
KEYPOINTS = "keypoints"
SEGMENTATION = "segmentation"
KINDS = (CLASSIFICATION, DETECTIONS, POLYLINES, KEYPOINTS, SEGMENTATION)
OBJECT_KINDS = (DETECTIONS, POLYLINES, KEYPOINTS)

_POINTS = pa.list_(pa.list_(pa.float64()))
_COMMON = [
    pa.field("confidence", pa.float64()),
    pa.field("instance_id", pa.int64()),
    pa.field("attributes", pa.string()),
]
DETECTION_TYPE = pa.struct([pa.field("label", pa.string()), pa.field("box", pa.list_(pa.float64())), *_COMMON])
POLYLINE_TYPE = pa.struct(
    [
        pa.field("label", pa.string()),
        pa.field("points", _POINTS),
        pa.field("closed", pa.bool_()),
        pa.field("filled", pa.bool_()),
        *_COMMON,
    ]
)
KEYPOINT_TYPE = pa.struct([pa.field("label", pa.string()), pa.field("points", _POINTS), *_COMMON])

ARROW_TYPES: dict[str, pa.DataType] = {
    CLASSIFICATION: pa.struct([pa.field("label", pa.string()), pa.field("confidence", pa.float64())]),
    DETECTIONS: pa.list_(DETECTION_TYPE),
    POLYLINES: pa.list_(POLYLINE_TYPE),
    KEYPOINTS: pa.list_(KEYPOINT_TYPE),
    # The mask is the sha256 hex digest of its bytes in the blob store; classes name its values 0, 1, ...
    SEGMENTATION: pa.struct([pa.field("mask", pa.string()), pa.field("classes", pa.list_(pa.string()))]),
}
# What an upload sends for a segmentation: the mask's bytes (stored as a blob) or an existing digest.
SEGMENTATION_WRITE_TYPE = pa.struct(
    [
        pa.field("mask", pa.string()),
        pa.field("mask_bytes", pa.large_binary()),
        pa.field("classes", pa.list_(pa.string())),
    ]
)


def canonical_attributes(attributes: Mapping[str, Any] | None) -> str | None:
    """Attributes as canonical JSON text (sorted keys), None for none."""
    if not attributes:
        return None
    if not isinstance(attributes, Mapping):
        raise InvalidArgumentError(f"attributes must be a mapping, got {type(attributes).__name__}")
    try:
        return json.dumps(dict(attributes), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"attributes are not JSON-able: {error}") from None


def _attributes(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


@dataclass(frozen=True)
class Classification:
    """One label for the whole datapoint."""

    label: str
    confidence: float | None = None

    kind = CLASSIFICATION

    def to_plain(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence}


@dataclass(frozen=True)
class Detection:
    """An object with a relative box ``(x, y, w, h)``."""

    label: str
    box: tuple[float, float, float, float]
    confidence: float | None = None
    instance_id: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "box": [float(v) for v in self.box],
            "confidence": self.confidence,
            "instance_id": self.instance_id,
            "attributes": canonical_attributes(self.attributes),
        }


@dataclass(frozen=True)
class Polyline:
    """An object outlined by relative ``(x, y)`` points; ``closed`` for a polygon, ``filled`` for a region."""

    label: str
    points: tuple[tuple[float, float], ...]
    closed: bool = False
    filled: bool = False
    confidence: float | None = None
    instance_id: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "points": [[float(x), float(y)] for x, y in self.points],
            "closed": bool(self.closed),
            "filled": bool(self.filled),
            "confidence": self.confidence,
            "instance_id": self.instance_id,
            "attributes": canonical_attributes(self.attributes),
        }


@dataclass(frozen=True)
class Keypoint:
    """A labelled set of relative ``(x, y)`` points (e.g. one person's skeleton)."""

    label: str
    points: tuple[tuple[float, float], ...]
    confidence: float | None = None
    instance_id: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "points": [[float(x), float(y)] for x, y in self.points],
            "confidence": self.confidence,
            "instance_id": self.instance_id,
            "attributes": canonical_attributes(self.attributes),
        }


class _Objects:
    kind: str
    item: type[Any]

    def __init__(self, objects: Iterable[Any] = ()) -> None:
        self.objects = tuple(objects)
        for obj in self.objects:
            if not isinstance(obj, self.item):
                raise InvalidArgumentError(
                    f"{type(self).__name__} holds {self.item.__name__} objects, not {type(obj).__name__}"
                )

    def __iter__(self) -> Iterator[Any]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.objects == self.objects

    def __hash__(self) -> int:
        return hash((type(self), self.objects))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.objects)!r})"

    @property
    def labels(self) -> list[str]:
        return [obj.label for obj in self.objects]

    def to_plain(self) -> list[dict[str, Any]]:
        return [obj.to_plain() for obj in self.objects]


class Detections(_Objects):
    """The detections of one datapoint."""

    kind, item = DETECTIONS, Detection


class Polylines(_Objects):
    """The polylines and polygons of one datapoint."""

    kind, item = POLYLINES, Polyline


class Keypoints(_Objects):
    """The keypoint sets of one datapoint."""

    kind, item = KEYPOINTS, Keypoint


@dataclass(frozen=True)
class Segmentation:
    """A mask. Give its encoded bytes (e.g. a PNG) to write it; values read back hold the digest."""

    mask: str | bytes
    classes: tuple[str, ...] = ()

    kind = SEGMENTATION

    @property
    def digest(self) -> str:
        """The mask's sha256 hex digest, as the field stores it."""
        return self.mask if isinstance(self.mask, str) else hashlib.sha256(self.mask).hexdigest()

    def to_plain(self) -> dict[str, Any]:
        return {"mask": self.digest, "classes": list(self.classes)}


Label = Classification | Detections | Polylines | Keypoints | Segmentation
LABEL_TYPES = (Classification, Detections, Polylines, Keypoints, Segmentation)


def is_label(value: Any) -> TypeGuard[Label]:
    return isinstance(value, LABEL_TYPES)


def from_plain(kind: str, value: Any) -> Label | None:
    """The dataclass of a plain value of ``kind`` (None stays None)."""
    if value is None:
        return None
    if kind == CLASSIFICATION:
        return Classification(value["label"], value.get("confidence"))
    if kind == SEGMENTATION:
        return Segmentation(value["mask"], tuple(value.get("classes") or ()))

    def common(obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "confidence": obj.get("confidence"),
            "instance_id": obj.get("instance_id"),
            "attributes": _attributes(obj.get("attributes")),
        }

    if kind == DETECTIONS:
        return Detections(Detection(o["label"], tuple(o["box"]), **common(o)) for o in value)
    if kind == POLYLINES:
        return Polylines(
            Polyline(
                o["label"],
                tuple(tuple(p) for p in o["points"]),
                bool(o.get("closed")),
                bool(o.get("filled")),
                **common(o),
            )
            for o in value
        )
    if kind == KEYPOINTS:
        return Keypoints(Keypoint(o["label"], tuple(tuple(p) for p in o["points"]), **common(o)) for o in value)
    raise InvalidArgumentError(f"unknown annotation kind {kind!r}")


def to_arrow(kind: str, values: Sequence[Label | None]) -> pa.Array:
    """An Arrow array of ``kind``'s write type from dataclass values (None: no value)."""
    if kind == SEGMENTATION:
        return pa.array([_segmentation_row(v) for v in values], SEGMENTATION_WRITE_TYPE)
    for value in values:
        if value is not None and getattr(value, "kind", None) != kind:
            raise InvalidArgumentError(f"a {kind} column got a {type(value).__name__} value")
    return pa.array([None if v is None else v.to_plain() for v in values], ARROW_TYPES[kind])


def _segmentation_row(value: Label | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Segmentation):
        raise InvalidArgumentError(f"a {SEGMENTATION} column got a {type(value).__name__} value")
    mask = value.mask
    return {
        "mask": mask if isinstance(mask, str) else None,
        "mask_bytes": mask if isinstance(mask, bytes) else None,
        "classes": list(value.classes),
    }


def from_arrow(kind: str, array: pa.Array | pa.ChunkedArray) -> list[Label | None]:
    """The dataclass values of an Arrow column of ``kind``."""
    return [from_plain(kind, value) for value in array.to_pylist()]


def kind_of_arrow_type(data_type: pa.DataType) -> str | None:
    """The annotation kind an Arrow type carries, by its shape; None when it is not one."""
    if pa.types.is_struct(data_type):
        names = {data_type.field(i).name for i in range(data_type.num_fields)}
        if "mask" in names or "mask_bytes" in names:
            return SEGMENTATION
        if "label" in names:
            return CLASSIFICATION
        return None
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        item = data_type.value_type
        if not pa.types.is_struct(item):
            return None
        names = {item.field(i).name for i in range(item.num_fields)}
        if "label" not in names:
            return None
        if "box" in names:
            return DETECTIONS
        if "closed" in names or "filled" in names:
            return POLYLINES
        if "points" in names:
            return KEYPOINTS
    return None


def to_proto(value: Label, field_type: common_pb2.FieldType) -> common_pb2.Annotation:
    """The protobuf form of a value; ``field_type`` is its FIELD_TYPE_ANNOTATION_* number."""
    message = common_pb2.Annotation(type=field_type)
    if isinstance(value, Segmentation):
        if isinstance(value.mask, str):
            message.mask = value.mask
        else:
            message.mask_bytes = bytes(value.mask)
        message.classes.extend(value.classes)
        return message
    plain = [value.to_plain()] if isinstance(value, Classification) else value.to_plain()
    for obj in plain:
        item = message.objects.add(label=obj["label"])
        if obj.get("confidence") is not None:
            item.confidence = obj["confidence"]
        if obj.get("instance_id") is not None:
            item.instance_id = obj["instance_id"]
        item.box.extend(obj.get("box") or ())
        item.points.extend(c for point in obj.get("points") or () for c in point)
        item.closed = bool(obj.get("closed"))
        item.filled = bool(obj.get("filled"))
        item.attributes = obj.get("attributes") or ""
    return message


def plain_from_proto(kind: str, message: common_pb2.Annotation) -> Any:
    """The plain value (a write value: segmentation carries ``mask_bytes``) of a protobuf Annotation."""
    if kind == SEGMENTATION:
        return {
            "mask": message.mask or None,
            "mask_bytes": message.mask_bytes or None,
            "classes": list(message.classes),
        }
    objects = []
    for item in message.objects:
        obj: dict[str, Any] = {
            "label": item.label,
            "confidence": item.confidence if item.HasField("confidence") else None,
        }
        if kind != CLASSIFICATION:
            obj["instance_id"] = item.instance_id if item.HasField("instance_id") else None
            obj["attributes"] = item.attributes or None
        if kind == DETECTIONS:
            obj["box"] = list(item.box)
        elif kind in (POLYLINES, KEYPOINTS):
            coords = list(item.points)
            obj["points"] = [coords[i : i + 2] for i in range(0, len(coords), 2)]
            if kind == POLYLINES:
                obj["closed"], obj["filled"] = item.closed, item.filled
        objects.append(obj)
    if kind == CLASSIFICATION:
        if len(objects) != 1:
            raise InvalidArgumentError(f"a classification holds exactly one label, got {len(objects)}")
        return objects[0]
    return objects
