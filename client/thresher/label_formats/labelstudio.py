"""Label Studio's JSON export: a list of tasks, each with ``data.image`` and annotation ``result``s.

``rectanglelabels`` are detections, ``polygonlabels`` polylines (closed, filled), ``choices``
classifications. Coordinates are percentages of the image; with the ``original_width`` and
``original_height`` a result carries they are converted through pixels, so boxes on the pixel grid
come back exactly. A result's ``score`` is its confidence; the first annotation of a task is read,
or its first prediction when it has none.
"""

from __future__ import annotations

import json
from typing import Any

from thresher.core import labels as L
from thresher.label_formats.annotation_files import Location, write_text
from thresher.label_formats.model import AnnotatedImage, AnnotationFormatError, AnnotationSet, class_names, pixels

KINDS = (L.DETECTIONS, L.POLYLINES, L.CLASSIFICATION)
_TYPES = {L.DETECTIONS: "rectanglelabels", L.POLYLINES: "polygonlabels", L.CLASSIFICATION: "choices"}


def _image_name(data: dict[str, Any]) -> str:
    value = str(next(iter(data.values()), "")) if "image" not in data else str(data["image"])
    return value.split("?d=", 1)[1] if "?d=" in value else value


def _relative(percent: float, size: int) -> float:
    return pixels(percent * size / 100) / size if size else percent / 100


def read(location: Location, kind: str | None = None) -> AnnotationSet:
    if kind not in (None, *KINDS):
        raise AnnotationFormatError(f"Label Studio import reads {', '.join(KINDS)}, not {kind}")
    path = location.files(suffix=".json")[0] if location.is_dir() else location.root
    try:
        tasks = json.loads(location.read_text(path))
    except ValueError as error:
        raise AnnotationFormatError(f"{path} is not JSON: {error}") from None
    if not isinstance(tasks, list):
        raise AnnotationFormatError(f"{path} is not a Label Studio JSON export (a list of tasks)")
    results_of = [
        (task, ((task.get("annotations") or task.get("predictions") or [{}])[0]).get("result", [])) for task in tasks
    ]
    if kind is None:
        present = {r.get("type") for _, results in results_of for r in results}
        kind = next((k for k in KINDS if _TYPES[k] in present), L.DETECTIONS)
    result = AnnotationSet(kind)
    for task, results in results_of:
        image = AnnotatedImage(_image_name(task.get("data", {})))
        objects: list[Any] = []  # of the file's one kind: Classification, Detection or Polyline
        for item in results:
            if item.get("type") != _TYPES[kind]:
                continue
            value = item.get("value", {})
            width, height = int(item.get("original_width") or 0), int(item.get("original_height") or 0)
            image.width, image.height = width or image.width, height or image.height
            score = item.get("score")
            confidence = None if score is None else float(score)
            if kind == L.CLASSIFICATION:
                objects.append(L.Classification(value["choices"][0], confidence))
                continue
            label = value[_TYPES[kind]][0]
            if kind == L.DETECTIONS:
                box = (
                    _relative(value["x"], width),
                    _relative(value["y"], height),
                    _relative(value["width"], width),
                    _relative(value["height"], height),
                )
                objects.append(L.Detection(label, box, confidence))
            else:
                points = tuple((_relative(x, width), _relative(y, height)) for x, y in value["points"])
                objects.append(L.Polyline(label, points, True, True, confidence))
        if kind == L.CLASSIFICATION:
            image.value = objects[0] if objects else None
        else:
            image.value = (L.Detections if kind == L.DETECTIONS else L.Polylines)(objects)
        result.images.append(image)
    result.classes = class_names([i for i in result.images if i.value is not None])
    return result


def _percent(relative: float) -> float:
    return relative * 100


def write(annotations: AnnotationSet, target: str) -> list[str]:
    """Writes ``target`` (a .json file, or ``labelstudio.json`` inside a folder)."""
    kind = annotations.kind
    tasks = []
    for number, image in enumerate(annotations.images, start=1):
        results = []
        objects = [image.value] if kind == L.CLASSIFICATION else list(image.value or [])
        for index, obj in enumerate(objects):
            item: dict[str, Any] = {
                "id": f"{number}-{index}",
                "type": _TYPES[kind],
                "from_name": "label",
                "to_name": "image",
            }
            if kind == L.CLASSIFICATION:
                item["value"] = {"choices": [obj.label]}
            else:
                item.update(original_width=image.width, original_height=image.height, image_rotation=0)
                if kind == L.DETECTIONS:
                    x, y, w, h = obj.box
                    item["value"] = {
                        "x": _percent(x),
                        "y": _percent(y),
                        "width": _percent(w),
                        "height": _percent(h),
                        "rotation": 0,
                        "rectanglelabels": [obj.label],
                    }
                else:
                    item["value"] = {
                        "points": [[_percent(x), _percent(y)] for x, y in obj.points],
                        "closed": True,
                        "polygonlabels": [obj.label],
                    }
            if obj.confidence is not None:
                item["score"] = obj.confidence
            results.append(item)
        tasks.append(
            {"id": number, "data": {"image": image.file_name}, "annotations": [{"id": number, "result": results}]}
        )
    relative = "" if str(target).endswith(".json") else "labelstudio.json"
    return [write_text(target, relative, json.dumps(tasks))]
