"""Annotation file formats in and out: COCO, YOLO, Pascal VOC, CVAT for images and Label Studio.

Each format module reads a file or folder into an :class:`AnnotationSet` (images named as the
format names them, with sizes and one ``thresher.core.labels`` value each) and writes one back. Matching
image names to datapoints and writing fields is the datasource's job (``ds.import_annotations``).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from thresher._moved import moved_attribute
from thresher.core.errors import InvalidArgumentError
from thresher.label_formats import coco, cvat, labelstudio, voc, yolo
from thresher.label_formats.annotation_files import Location
from thresher.label_formats.model import AnnotatedImage, AnnotationFormatError, AnnotationSet

FORMATS: dict[str, ModuleType] = {"coco": coco, "yolo": yolo, "voc": voc, "cvat": cvat, "labelstudio": labelstudio}


def _module(format_name: str) -> ModuleType:
    try:
        return FORMATS[format_name.lower()]
    except (KeyError, AttributeError):
        raise InvalidArgumentError(f"unknown annotation format {format_name!r}; one of {', '.join(FORMATS)}") from None


def read(format_name: str, location: str | os.PathLike[str], kind: str | None = None) -> AnnotationSet:
    """The images and labels of an annotation file or folder (a local path or a storage URI)."""
    module = _module(format_name)
    place = Location(location)
    if not place.exists(place.root):
        raise AnnotationFormatError(f"{place.text} does not exist")
    annotations: AnnotationSet = module.read(place, kind)
    return annotations


def write(format_name: str, annotations: AnnotationSet, target: str | os.PathLike[str]) -> list[str]:
    """Writes ``annotations`` in the format at ``target``; returns the files written."""
    module = _module(format_name)
    if annotations.kind not in module.KINDS:
        raise InvalidArgumentError(f"{format_name} holds {', '.join(module.KINDS)}, not {annotations.kind}")
    written: list[str] = module.write(annotations, os.fspath(target))
    return written


__all__ = ["FORMATS", "AnnotatedImage", "AnnotationFormatError", "AnnotationSet", "read", "write"]


def __getattr__(name: str) -> Any:
    # A renamed module reached as an attribute by its old name (``errors``, ``files``): the deprecated alias.
    return moved_attribute(__name__, name)
