"""YOLO (the Ultralytics layout): ``data.yaml`` naming the classes, one ``labels/**/<stem>.txt`` per image.

Each line is ``class cx cy w h`` (a box; a sixth number is a confidence) or ``class x0 y0 x1 y1 ...``
(a polygon, three points or more), all relative. Boxes import as detections and polygons as closed
filled polylines; reading polygons as detections takes their bounding boxes. An image's name is its
label file's path with ``labels`` turned into ``images`` and no extension, matched to datapoints by stem.
"""

from __future__ import annotations

import json
from typing import Any

from thresher.core import labels as L
from thresher.label_formats.annotation_files import Location, write_text
from thresher.label_formats.model import AnnotatedImage, AnnotationFormatError, AnnotationSet, class_names

KINDS = (L.DETECTIONS, L.POLYLINES)


def _yaml() -> Any:  # the yaml module, which has no type information
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml comes with the labels extra
        raise AnnotationFormatError("reading YOLO's data.yaml needs PyYAML: pip install 'thresher[labels]'") from None
    return yaml


def _names(location: Location) -> list[str]:
    for name in ("data.yaml", "dataset.yaml"):
        path = location.join(name)
        if location.exists(path):
            data = _yaml().safe_load(location.read_text(path)) or {}
            names = data.get("names", [])
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names, key=int)]
            return [str(n) for n in names]
    raise AnnotationFormatError(f"{location.text}: no data.yaml naming the classes")


def _image_name(relative: str) -> str:
    parts = relative[: -len(".txt")].split("/")
    return "/".join("images" if p == "labels" else p for p in parts)


def read(location: Location, kind: str | None = None) -> AnnotationSet:
    if kind is not None and kind not in KINDS:
        raise AnnotationFormatError(f"YOLO holds detections and polylines (segments), not {kind}")
    names = _names(location)
    parsed: list[tuple[str, list[tuple[str, list[float], float | None, bool]]]] = []
    any_segment = False
    for path in location.files(suffix=".txt"):
        relative = location.relative(path)
        if "labels" not in relative.split("/")[:-1]:
            continue
        rows = []
        for number, line in enumerate(location.read_text(path).splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                label = names[int(tokens[0])]
                numbers = [float(t) for t in tokens[1:]]
            except (ValueError, IndexError):
                raise AnnotationFormatError(
                    f"{relative}:{number}: not 'class coordinates...' with a known class: {line[:80]!r}"
                ) from None
            if len(numbers) in (4, 5):
                rows.append((label, numbers[:4], numbers[4] if len(numbers) == 5 else None, False))
            elif len(numbers) >= 6:
                confidence = numbers.pop() if len(numbers) % 2 else None
                rows.append((label, numbers, confidence, True))
                any_segment = True
            else:
                raise AnnotationFormatError(
                    f"{relative}:{number}: {len(numbers)} numbers make neither a box nor a polygon"
                )
        parsed.append((_image_name(relative), rows))
    kind = kind or (L.POLYLINES if any_segment else L.DETECTIONS)
    result = AnnotationSet(kind, classes=names)
    for name, rows in parsed:
        objects = [_object(kind, *row) for row in rows]
        result.images.append(
            AnnotatedImage(name, value=(L.Detections if kind == L.DETECTIONS else L.Polylines)(objects))
        )
    return result


def _object(
    kind: str, label: str, numbers: list[float], confidence: float | None, segment: bool
) -> L.Detection | L.Polyline:
    if segment:
        points = tuple(zip(numbers[0::2], numbers[1::2]))
    else:
        cx, cy, w, h = numbers
        x, y = cx - w / 2, cy - h / 2
        points = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
    if kind == L.POLYLINES:
        return L.Polyline(label, points, closed=True, filled=True, confidence=confidence)
    if not segment:
        return L.Detection(label, (max(x, 0.0), max(y, 0.0), w, h), confidence)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return L.Detection(label, (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)), confidence)


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return path[: len(path) - len(name)] + (name.rsplit(".", 1)[0] if "." in name else name)


def write(annotations: AnnotationSet, target: str) -> list[str]:
    """Writes ``data.yaml`` and ``labels/<datapoint path without extension>.txt`` under ``target``."""
    classes = class_names(annotations.images, annotations.classes)
    index = {name: i for i, name in enumerate(classes)}
    written = []
    for image in annotations.images:
        lines = []
        for obj in image.value or []:
            if annotations.kind == L.DETECTIONS:
                x, y, w, h = obj.box
                numbers = [x + w / 2, y + h / 2, w, h]
            else:
                numbers = [c for point in obj.points for c in point]
            if obj.confidence is not None:
                numbers.append(obj.confidence)
            lines.append(" ".join([str(index[obj.label]), *(repr(float(v)) for v in numbers)]))
        written.append(
            write_text(target, f"labels/{_stem(image.file_name)}.txt", "".join(line + "\n" for line in lines))
        )
    names = "".join(f"  {i}: {json.dumps(name)}\n" for i, name in enumerate(classes))  # JSON strings are YAML
    written.append(write_text(target, "data.yaml", f"path: .\ntrain: ./images\nval: ./images\nnames:\n{names}"))
    return written
