"""Annotation fields as training targets: numpy arrays in the layout torchvision's detection models take.

Detections become ``{"boxes": float32 [N, 4] absolute XYXY, "labels": int64 [N], "scores": float32 [N]}``
(NaN where an object has no confidence); polylines and keypoints ``{"points": float32 [total, 2]
absolute, "lengths": int64 [N], "labels": int64 [N]}``; a classification its int64 label. Labels are
numbered by a class map, by default the field's label names over the whole result in sorted order
from 1 (0 is left for the background, as torchvision's detectors expect), so the same labels give
the same numbers in every run. Absolute coordinates need the ``width`` and ``height`` fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from thresher.core import labels as L
from thresher.core.errors import InvalidArgumentError

WIDTH, HEIGHT = "width", "height"


def class_map(values: Sequence[Any]) -> dict[str, int]:
    """Each label name in ``values`` numbered from 1 in sorted order."""
    names: set[str] = set()
    for value in values:
        if value is None:
            continue
        names.update([value.label] if isinstance(value, L.Classification) else value.labels)
    return {name: number for number, name in enumerate(sorted(names), start=1)}


class Targets:
    """Turns one datapoint's annotation value into its target arrays (picklable, for worker processes)."""

    def __init__(self, field: str, kind: str, classes: Mapping[str, int]) -> None:
        self.field, self.kind, self.classes = field, kind, dict(classes)

    def _number(self, label: str) -> int:
        try:
            return self.classes[label]
        except KeyError:
            raise InvalidArgumentError(f"label {label!r} of field {self.field!r} is not in the class map") from None

    def __call__(self, entry: tuple[Any, int | None, int | None]) -> Any:
        value, width, height = entry
        if self.kind == L.CLASSIFICATION:
            return np.int64(self._number(value.label))
        objects = list(value or [])
        numbers = np.array([self._number(o.label) for o in objects], np.int64)
        if self.kind not in (L.DETECTIONS, L.POLYLINES, L.KEYPOINTS):
            raise InvalidArgumentError(
                f"field {self.field!r} of kind {self.kind} is not a target: "
                "name a segmentation field in file_columns to get its mask"
            )
        if objects and not (width and height):
            raise InvalidArgumentError(
                f"field {self.field!r}: absolute coordinates need the image size; select the width and height fields"
            )
        scale = np.array([width or 0, height or 0], np.float64)
        if self.kind == L.DETECTIONS:
            boxes = np.array([o.box for o in objects], np.float64).reshape(-1, 4)
            xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1) * np.tile(scale, 2)
            scores = np.array([np.nan if o.confidence is None else o.confidence for o in objects], np.float32)
            return {"boxes": xyxy.astype(np.float32), "labels": numbers, "scores": scores}
        points = [np.array(o.points, np.float64).reshape(-1, 2) * scale for o in objects]
        return {
            "points": (np.concatenate(points) if points else np.zeros((0, 2))).astype(np.float32),
            "lengths": np.array([len(p) for p in points], np.int64),
            "labels": numbers,
        }


def mask(path: Any) -> np.ndarray:
    """A segmentation mask file (e.g. a PNG of class numbers) as an H×W array, its values unchanged."""
    from PIL import Image

    with Image.open(path) as picture:
        return np.array(picture)
