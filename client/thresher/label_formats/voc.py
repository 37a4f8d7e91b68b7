"""Pascal VOC XML: one file per image with its size and ``<object>``s holding a ``<bndbox>`` in pixels.

Boxes are ``xmin ymin xmax ymax`` with ``x = xmin / width`` (as FiftyOne reads them); ``difficult``,
``truncated``, ``occluded`` and ``pose`` become attributes, and ``<score>`` the confidence.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

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

KINDS = (L.DETECTIONS,)
_FLAGS = ("difficult", "truncated", "occluded")
INSTANCE_KEY = "thresher_instance_id"  # FiftyOne reserves instance_id on its labels


def _number(text: str | None) -> float:
    return float(text) if text not in (None, "") else 0.0


def _attribute(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def read(location: Location, kind: str | None = None) -> AnnotationSet:
    if kind not in (None, *KINDS):
        raise AnnotationFormatError(f"Pascal VOC holds detections, not {kind}")
    result = AnnotationSet(L.DETECTIONS)
    paths = location.files(suffix=".xml") if location.is_dir() else [location.root]
    for path in paths:
        try:
            root = ET.fromstring(location.read_bytes(path))
        except ET.ParseError as error:
            raise AnnotationFormatError(f"{location.relative(path)} is not XML: {error}") from None
        folder = root.findtext("path") or root.findtext("filename")
        if not folder:
            raise AnnotationFormatError(f"{location.relative(path)} names no image (<filename>)")
        size = root.find("size")
        width = int(_number(size.findtext("width"))) if size is not None else 0
        height = int(_number(size.findtext("height"))) if size is not None else 0
        image = AnnotatedImage(root.findtext("filename") or folder, width, height)
        objects = []
        for obj in root.findall("object"):
            box = obj.find("bndbox")
            if box is None:
                continue
            need_size(image, "Pascal VOC")
            xmin, ymin, xmax, ymax = (_number(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            attributes = {k: _attribute(text) for k in (*_FLAGS, "pose") if (text := obj.findtext(k)) is not None}
            attributes = {k: v for k, v in attributes.items() if not (k in _FLAGS and v == 0) and v != "Unspecified"}
            attributes.update({child.tag: _attribute(child.text or "") for child in obj.find("attributes") or []})
            score = obj.findtext("score")
            instance = obj.findtext(INSTANCE_KEY)
            objects.append(
                L.Detection(
                    obj.findtext("name") or "",
                    (xmin / width, ymin / height, (xmax - xmin) / width, (ymax - ymin) / height),
                    None if score is None else float(score),
                    None if instance is None else int(instance),
                    attributes,
                )
            )
        image.value = L.Detections(objects)
        result.images.append(image)
    result.classes = class_names(result.images)
    return result


def _xml_name(file_name: str) -> str:
    stem = file_name.rsplit(".", 1)[0] if "." in file_name.rsplit("/", 1)[-1] else file_name
    return f"{stem}.xml"


def write(annotations: AnnotationSet, target: str) -> list[str]:
    """Writes ``<datapoint path without extension>.xml`` per image under ``target``."""
    if annotations.kind not in KINDS:
        raise AnnotationFormatError(f"Pascal VOC holds detections, not {annotations.kind}")
    written = []
    for image in annotations.images:
        need_size(image, "Pascal VOC")
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = ""
        ET.SubElement(root, "filename").text = image.file_name
        size = ET.SubElement(root, "size")
        for key, value in (("width", image.width), ("height", image.height), ("depth", 3)):
            ET.SubElement(size, key).text = str(value)
        for obj in image.value or []:
            node = ET.SubElement(root, "object")
            ET.SubElement(node, "name").text = obj.label
            attributes = dict(obj.attributes)
            for key in ("pose", *_FLAGS):
                if key in attributes:
                    ET.SubElement(node, key).text = str(attributes.pop(key))
            if obj.confidence is not None:
                ET.SubElement(node, "score").text = repr(obj.confidence)
            if obj.instance_id is not None:
                ET.SubElement(node, INSTANCE_KEY).text = str(obj.instance_id)
            x, y, w, h = obj.box
            box = ET.SubElement(node, "bndbox")
            for key, value in (
                ("xmin", x * image.width),
                ("ymin", y * image.height),
                ("xmax", (x + w) * image.width),
                ("ymax", (y + h) * image.height),
            ):
                ET.SubElement(box, key).text = str(pixels(value))
            if attributes:
                extra = ET.SubElement(node, "attributes")
                for key, value in attributes.items():
                    ET.SubElement(extra, key).text = str(value)
        ET.indent(root)
        written.append(write_text(target, _xml_name(image.file_name), ET.tostring(root, encoding="unicode")))
    return written
