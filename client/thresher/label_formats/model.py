"""What every annotation format reads into and writes from: images with their size and one label value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from thresher.core.errors import InvalidArgumentError

# Absolute (pixel) coordinates are written with this many decimals: relative values times the size
# are exact to well below it, so a file read back gives the same relative values.
PIXEL_DECIMALS = 6


class AnnotationFormatError(InvalidArgumentError):
    """An annotation file that cannot be read: the message names the file and the problem."""


@dataclass
class AnnotatedImage:
    """One image of an annotation file: its name as the file gives it, its size (0: unknown), its label."""

    file_name: str
    width: int = 0
    height: int = 0
    value: Any = None  # a thresher.core.labels value of the set's kind, or None


@dataclass
class AnnotationSet:
    """The images of an annotation file, all labelled with one kind, and the class names in order."""

    kind: str
    images: list[AnnotatedImage] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    # What the file held that this kind cannot (e.g. RLE masks): (file name, what), reported to the user.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # For large files a reader may give the values as one Arrow column (row i: image i) instead.
    arrow: pa.Array | None = None

    def values(self) -> list[Any]:
        """Each image's label value, from the Arrow column where the reader built one."""
        if self.arrow is None:
            return [image.value for image in self.images]
        from thresher.core import labels

        return labels.from_arrow(self.kind, self.arrow)


def pixels(value: float) -> float:
    """An absolute coordinate as written: rounded so that float noise does not show."""
    rounded = round(value, PIXEL_DECIMALS)
    return int(rounded) if rounded == int(rounded) else rounded


def need_size(image: AnnotatedImage, format_name: str) -> None:
    if image.width <= 0 or image.height <= 0:
        raise InvalidArgumentError(
            f"{format_name} stores pixel coordinates, so it needs the size of {image.file_name!r}; "
            "select the datapoints' width and height fields (a scan sets them for images)"
        )


def class_names(images: list[AnnotatedImage], known: list[str] | None = None) -> list[str]:
    """Every label used, in first-seen order after ``known``."""
    names = list(known or [])
    seen = set(names)
    for image in images:
        value = image.value
        objects = [] if value is None else ([value] if hasattr(value, "label") else list(value))
        for obj in objects:
            if obj.label not in seen:
                seen.add(obj.label)
                names.append(obj.label)
    return names
