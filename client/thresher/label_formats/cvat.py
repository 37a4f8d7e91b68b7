"""CVAT for images 1.1 XML: ``<image name width height>`` holding ``<box>``, ``<polygon>``, ``<polyline>``,
``<points>`` and ``<tag>`` elements in pixels.

One kind is read per import: boxes as detections, polygons and polylines as polylines (polygons
closed and filled), points as keypoints, tags as classifications. ``occluded="1"`` and
``<attribute>`` children become attributes. CVAT has no confidences or instance ids.
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

KINDS = (L.DETECTIONS, L.POLYLINES, L.KEYPOINTS, L.CLASSIFICATION)
_TAGS = {
    L.DETECTIONS: ("box",),
    L.POLYLINES: ("polygon", "polyline"),
    L.KEYPOINTS: ("points",),
    L.CLASSIFICATION: ("tag",),
}
_BOX_KEYS = {"label", "occluded", "xtl", "ytl", "xbr", "ybr", "z_order", "source", "points", "rotation"}


def _value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def _coordinate(node: ET.Element, name: str) -> float:
    text = node.get(name)
    if text is None:
        raise AnnotationFormatError(f"a CVAT <{node.tag}> has no {name}")
    return float(text)


def _attributes(node: ET.Element) -> dict[str, Any]:
    attributes = {child.get("name", ""): _value(child.text or "") for child in node.findall("attribute")}
    if node.get("occluded") == "1":
        attributes["occluded"] = True
    return attributes


def _points(text: str, image: AnnotatedImage) -> tuple[tuple[float, float], ...]:
    pairs = [pair.split(",") for pair in text.split(";") if pair]
    return tuple((float(x) / image.width, float(y) / image.height) for x, y in pairs)


def read(location: Location, kind: str | None = None) -> AnnotationSet:
    if kind not in (None, *KINDS):
        raise AnnotationFormatError(f"CVAT for images holds {', '.join(KINDS)}, not {kind}")
    path = location.files(suffix=".xml")[0] if location.is_dir() else location.root
    try:
        root = ET.fromstring(location.read_bytes(path))
    except ET.ParseError as error:
        raise AnnotationFormatError(f"{path} is not XML: {error}") from None
    nodes = root.findall("image")
    if kind is None:
        kind = next((k for k in KINDS if any(n.find(t) is not None for n in nodes for t in _TAGS[k])), L.DETECTIONS)
    result = AnnotationSet(kind, classes=[label.findtext("name") or "" for label in root.iter("label")])
    for node in nodes:
        image = AnnotatedImage(
            node.get("name", ""), int(float(node.get("width") or 0)), int(float(node.get("height") or 0))
        )
        objects: list[Any] = []  # of the file's one kind: Classification, Detection, Polyline or Keypoint
        for child in node:
            if child.tag not in _TAGS[kind]:
                continue
            label = child.get("label", "")
            if kind == L.CLASSIFICATION:
                objects.append(L.Classification(label))
                continue
            need_size(image, "CVAT")
            attributes = _attributes(child)
            if kind == L.DETECTIONS:
                xtl, ytl, xbr, ybr = (_coordinate(child, k) for k in ("xtl", "ytl", "xbr", "ybr"))
                box = (xtl / image.width, ytl / image.height, (xbr - xtl) / image.width, (ybr - ytl) / image.height)
                objects.append(L.Detection(label, box, attributes=attributes))
            elif kind == L.POLYLINES:
                closed = child.tag == "polygon"
                objects.append(
                    L.Polyline(label, _points(child.get("points", ""), image), closed, closed, attributes=attributes)
                )
            else:
                objects.append(L.Keypoint(label, _points(child.get("points", ""), image), attributes=attributes))
        if kind == L.CLASSIFICATION:
            image.value = objects[0] if objects else None
        else:
            image.value = {L.DETECTIONS: L.Detections, L.POLYLINES: L.Polylines, L.KEYPOINTS: L.Keypoints}[kind](
                objects
            )
        result.images.append(image)
    return result


def write(annotations: AnnotationSet, target: str) -> list[str]:
    """Writes ``target`` (an .xml file, or ``annotations.xml`` inside a folder)."""
    classes = class_names(annotations.images, annotations.classes)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    labels_node = ET.SubElement(ET.SubElement(ET.SubElement(root, "meta"), "task"), "labels")
    for name in classes:
        ET.SubElement(ET.SubElement(labels_node, "label"), "name").text = name
    for number, image in enumerate(annotations.images):
        node = ET.SubElement(
            root, "image", id=str(number), name=image.file_name, width=str(image.width), height=str(image.height)
        )
        if annotations.kind == L.CLASSIFICATION:
            ET.SubElement(node, "tag", label=image.value.label, source="manual")
            continue
        need_size(image, "CVAT")
        for obj in image.value or []:
            attributes = dict(obj.attributes)
            occluded = "1" if attributes.pop("occluded", False) else "0"
            if annotations.kind == L.DETECTIONS:
                x, y, w, h = obj.box
                child = ET.SubElement(
                    node,
                    "box",
                    label=obj.label,
                    occluded=occluded,
                    source="manual",
                    xtl=str(pixels(x * image.width)),
                    ytl=str(pixels(y * image.height)),
                    xbr=str(pixels((x + w) * image.width)),
                    ybr=str(pixels((y + h) * image.height)),
                    z_order="0",
                )
            else:
                tag = "points" if annotations.kind == L.KEYPOINTS else ("polygon" if obj.closed else "polyline")
                points = ";".join(f"{pixels(x * image.width)},{pixels(y * image.height)}" for x, y in obj.points)
                child = ET.SubElement(
                    node, tag, label=obj.label, occluded=occluded, source="manual", points=points, z_order="0"
                )
            for key, value in attributes.items():
                ET.SubElement(child, "attribute", name=key).text = _text(value)
    ET.indent(root)
    relative = "" if str(target).endswith(".xml") else "annotations.xml"
    return [write_text(target, relative, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode"))]


def _text(value: Any) -> str:
    return {True: "true", False: "false"}.get(value, str(value)) if isinstance(value, bool) else str(value)
