"""COCO detection and segmentation JSON: boxes as detections, polygons as filled closed polylines.

Boxes are ``[x, y, w, h]`` in pixels and polygons flat ``[x0, y0, x1, y1, ...]`` lists in pixels;
``score`` is the confidence. Keys of an annotation beyond COCO's own become its attributes (and
attributes are written back as keys), ``instance_id`` as ``thresher_instance_id``. RLE masks (crowd regions) are not
polygons: they are reported as skipped.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from thresher.core import labels as L
from thresher.label_formats.annotation_files import Location, write_text
from thresher.label_formats.model import (
    AnnotatedImage,
    AnnotationFormatError,
    AnnotationSet,
    class_names,
    need_size,
    pixels,
)

# FiftyOne reserves ``instance_id`` on its labels, so it is written under a key of its own.
INSTANCE_KEY = "thresher_instance_id"
_OWN_KEYS = {
    "id",
    "image_id",
    "category_id",
    "bbox",
    "segmentation",
    "area",
    "iscrowd",
    "score",
    "instance_id",
    INSTANCE_KEY,
}
KINDS = (L.DETECTIONS, L.POLYLINES)


def read(location: Location, kind: str | None = None) -> AnnotationSet:
    kind = kind or L.DETECTIONS
    if kind not in KINDS:
        raise AnnotationFormatError(f"COCO holds detections and polylines (polygons), not {kind}")
    path = location.files(suffix=".json")[0] if location.is_dir() else location.root
    try:
        data = json.loads(location.read_text(path))
        categories = {c["id"]: c["name"] for c in data.get("categories", [])}
        images = {
            i["id"]: AnnotatedImage(i["file_name"], int(i.get("width") or 0), int(i.get("height") or 0), [])
            for i in data["images"]
        }
    except (ValueError, KeyError, TypeError) as error:
        raise AnnotationFormatError(f"{path} is not a COCO file: {error!r}") from None
    result = AnnotationSet(kind, list(images.values()), list(categories.values()))
    if kind == L.DETECTIONS:
        result.arrow = _detections(path, data.get("annotations", []), images, categories)
        for image in result.images:
            image.value = None  # the values are in result.arrow
        return result
    for number, ann in enumerate(data.get("annotations", [])):
        try:
            image = images[ann["image_id"]]
            label = categories[ann["category_id"]]
        except KeyError as error:
            raise AnnotationFormatError(f"{path}: annotation {number} refers to unknown {error}") from None
        need_size(image, "COCO")
        common = _common(ann)
        if kind == L.DETECTIONS:
            x, y, w, h = (float(v) for v in ann["bbox"])
            image.value.append(
                L.Detection(label, (x / image.width, y / image.height, w / image.width, h / image.height), **common)
            )
            continue
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, dict):
            result.skipped.append((image.file_name, f"annotation {ann.get('id', number)} is an RLE mask"))
            continue
        for polygon in segmentation or []:
            points = tuple(
                (float(polygon[i]) / image.width, float(polygon[i + 1]) / image.height)
                for i in range(0, len(polygon) - 1, 2)
            )
            image.value.append(L.Polyline(label, points, closed=True, filled=True, **common))
    wrap = L.Detections if kind == L.DETECTIONS else L.Polylines
    for image in result.images:
        image.value = wrap(image.value)
    return result


def _detections(
    path: str, anns: list[dict[str, Any]], images: dict[Any, AnnotatedImage], categories: dict[Any, str]
) -> pa.Array:
    """The detections of every image as one Arrow column, built column-wise: COCO files run to millions of boxes."""
    row_of = {image_id: row for row, image_id in enumerate(images)}
    names = list(categories.values())
    name_index = {category_id: i for i, category_id in enumerate(categories)}
    count = len(anns)
    rows, label = np.empty(count, np.int64), np.empty(count, np.int64)
    boxes = np.empty((count, 4), np.float64)
    scores: list[Any] = [None] * count
    instances: list[int | None] = [None] * count
    attributes: list[str | None] = [None] * count
    for k, ann in enumerate(anns):
        try:
            rows[k] = row_of[ann["image_id"]]
            label[k] = name_index[ann["category_id"]]
            boxes[k] = ann["bbox"]
        except KeyError as error:
            raise AnnotationFormatError(f"{path}: annotation {k} refers to unknown {error}") from None
        except (ValueError, TypeError):
            raise AnnotationFormatError(
                f"{path}: annotation {k} has bbox {ann.get('bbox')!r}, not [x, y, w, h]"
            ) from None
        scores[k] = ann.get("score")
        if not ann.keys() <= _OWN_KEYS or ann.get("iscrowd") or INSTANCE_KEY in ann or "instance_id" in ann:
            common = _common(ann)
            instances[k] = common["instance_id"]
            attributes[k] = L.canonical_attributes(common["attributes"])
    sizes = np.array([(image.width, image.height) for image in images.values()], np.float64).reshape(-1, 2)
    if count and (sizes[rows] <= 0).any():
        missing = list(images.values())[int(rows[np.flatnonzero((sizes[rows] <= 0).any(axis=1))[0]])]
        need_size(missing, "COCO")
    boxes /= np.tile(sizes[rows], 2) if count else 1
    order = np.argsort(rows, kind="stable")  # images in file order, each image's boxes in annotation order
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(images)))]).astype(np.int32)
    objects = pa.StructArray.from_arrays(
        [
            pa.array(names, pa.string()).take(pa.array(label[order])),
            pa.ListArray.from_arrays(
                pa.array(np.arange(0, 4 * count + 1, 4, dtype=np.int32)), pa.array(boxes[order].ravel())
            ),
            pa.array([float(v) if v is not None else None for v in scores], pa.float64()).take(pa.array(order)),
            pa.array(instances, pa.int64()).take(pa.array(order)),
            pa.array(attributes, pa.string()).take(pa.array(order)),
        ],
        fields=list(L.DETECTION_TYPE),
    )
    return pa.ListArray.from_arrays(pa.array(offsets), objects, type=L.ARROW_TYPES[L.DETECTIONS])


def _common(ann: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in ann.items() if k not in _OWN_KEYS}
    if ann.get("iscrowd"):
        attributes["iscrowd"] = ann["iscrowd"]
    score = ann.get("score")
    instance = ann.get(INSTANCE_KEY, ann.get("instance_id"))
    return {"confidence": None if score is None else float(score), "instance_id": instance, "attributes": attributes}


def write(annotations: AnnotationSet, target: str) -> list[str]:
    """Writes ``target`` (a .json file, or ``annotations.json`` inside a folder)."""
    classes = class_names(annotations.images, annotations.classes)
    category = {name: number for number, name in enumerate(classes, start=1)}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for image_id, image in enumerate(annotations.images, start=1):
        need_size(image, "COCO")
        images.append({"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height})
        for obj in image.value or []:
            ann: dict[str, Any] = {"id": len(anns) + 1, "image_id": image_id, "category_id": category[obj.label]}
            if annotations.kind == L.DETECTIONS:
                x, y, w, h = obj.box
                ann["bbox"] = [
                    pixels(x * image.width),
                    pixels(y * image.height),
                    pixels(w * image.width),
                    pixels(h * image.height),
                ]
                ann["area"] = pixels(w * image.width * h * image.height)
                ann["segmentation"] = []
            else:
                xs = [x * image.width for x, _ in obj.points]
                ys = [y * image.height for _, y in obj.points]
                ann["segmentation"] = [[pixels(v) for pair in zip(xs, ys) for v in pair]]
                ann["bbox"] = [pixels(min(xs)), pixels(min(ys)), pixels(max(xs) - min(xs)), pixels(max(ys) - min(ys))]
                ann["area"] = pixels(abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2)
            attributes = dict(obj.attributes)
            ann["iscrowd"] = int(attributes.pop("iscrowd", 0))
            if obj.confidence is not None:
                ann["score"] = obj.confidence
            if obj.instance_id is not None:
                ann[INSTANCE_KEY] = obj.instance_id
            ann.update({k: v for k, v in attributes.items() if k not in _OWN_KEYS})
            anns.append(ann)
    document = {
        "info": {"description": "exported by Thresher"},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [{"id": number, "name": name, "supercategory": ""} for name, number in category.items()],
    }
    relative = "" if str(target).endswith(".json") else "annotations.json"
    return [write_text(target, relative, json.dumps(document))]
