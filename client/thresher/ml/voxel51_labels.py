"""Annotation fields as FiftyOne labels: Classification, Detections, Polylines, Keypoints, Segmentation.

Coordinates are relative in both; ``instance_id`` becomes the label's ``index``; attributes become
label attributes (those named like a label's own fields are prefixed with ``thresher_``); a
segmentation's mask is the local path of its cached blob, its classes the dataset's mask targets.
"""

from __future__ import annotations

from typing import Any

from thresher.core import labels as L
from thresher.core.types import FieldType

_OWN = {
    "label",
    "bounding_box",
    "confidence",
    "index",
    "points",
    "closed",
    "filled",
    "mask",
    "mask_path",
    "id",
    "tags",
    "attributes",
    "instance",
}


def document_type(fo: Any, kind: FieldType) -> Any:
    return {
        FieldType.CLASSIFICATION: fo.Classification,
        FieldType.DETECTIONS: fo.Detections,
        FieldType.POLYLINES: fo.Polylines,
        FieldType.KEYPOINTS: fo.Keypoints,
        FieldType.SEGMENTATION: fo.Segmentation,
    }[kind]


def add_field(fo: Any, dataset: Any, name: str, kind: FieldType, values: list[Any]) -> None:
    """Declares the sample field of an annotation field (and a segmentation's mask targets)."""
    dataset.add_sample_field(name, fo.EmbeddedDocumentField, embedded_doc_type=document_type(fo, kind))
    if kind is FieldType.SEGMENTATION:
        classes = next((v["classes"] for v in values if v and v.get("classes")), None)
        if classes:
            dataset.mask_targets = {**dataset.mask_targets, name: dict(enumerate(classes))}


def mask_digests(kinds: dict[str, FieldType], columns: dict[str, list[Any]]) -> list[str]:
    return [v["mask"] for field, kind in kinds.items() if kind is FieldType.SEGMENTATION for v in columns[field] if v]


def _common(fo_label: Any, obj: Any) -> Any:
    if obj.instance_id is not None:
        fo_label.index = obj.instance_id
    for key, value in obj.attributes.items():
        fo_label[f"thresher_{key}" if key in _OWN else key] = value
    return fo_label


def sample_value(fo: Any, kind: FieldType, plain: Any, cached: dict[str, Any]) -> Any:
    """The FiftyOne label of one plain annotation value (None stays None)."""
    value = L.from_plain(kind.annotation_kind or "", plain)  # (a scalar kind is refused there)
    if value is None:
        return None
    # from_plain made the class of `kind`'s annotations; dispatching on it lets the checker see which.
    if isinstance(value, L.Classification):
        return fo.Classification(label=value.label, confidence=value.confidence)
    if isinstance(value, L.Segmentation):
        return fo.Segmentation(mask_path=str(cached[value.digest]))  # read back, the mask is its digest
    if isinstance(value, L.Detections):
        return fo.Detections(
            detections=[
                _common(fo.Detection(label=o.label, bounding_box=list(o.box), confidence=o.confidence), o)
                for o in value
            ]
        )
    if isinstance(value, L.Polylines):
        return fo.Polylines(
            polylines=[
                _common(
                    fo.Polyline(
                        label=o.label,
                        points=[[list(p) for p in o.points]],
                        closed=o.closed,
                        filled=o.filled,
                        confidence=o.confidence,
                    ),
                    o,
                )
                for o in value
            ]
        )
    return fo.Keypoints(
        keypoints=[
            _common(fo.Keypoint(label=o.label, points=[list(p) for p in o.points], confidence=o.confidence), o)
            for o in value
        ]
    )
