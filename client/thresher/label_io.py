"""Annotation files into annotation fields (matched to datapoints by path) and fields out to files."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from thresher import label_formats
from thresher.core import labels
from thresher.core.errors import InvalidArgumentError
from thresher.core.types import FieldType
from thresher.label_formats.matching import ImportReport, matcher
from thresher.label_formats.model import AnnotatedImage, AnnotationSet

WIDTH, HEIGHT = "width", "height"


def import_annotations(
    datasource: Any,
    format_name: str,
    location: str | os.PathLike[str],
    field: str,
    match: Any = "auto",
    kind: str | None = None,
) -> ImportReport:
    """Reads an annotation file or folder and writes its labels into ``field`` of the matching datapoints."""
    existing = datasource.fields.get(field)
    if kind is None and existing is not None and existing.is_annotation:
        kind = existing.annotation_kind
    annotations = label_formats.read(format_name, location, kind)
    if existing is not None and existing is not FieldType.annotation(annotations.kind):
        raise InvalidArgumentError(
            f"field {field!r} has type {existing.value}; the {format_name} file holds {annotations.kind}"
        )
    report = ImportReport(field, annotations.kind, skipped=list(annotations.skipped))
    find = matcher(datasource.select("path").all().paths, match)
    chosen: dict[str, int] = {}  # datapoint path -> image row
    for row, image in enumerate(annotations.images):
        found = find(image.file_name)
        if not found:
            report.unmatched_files.append(image.file_name)
        elif len(found) > 1 or found[0] in chosen:
            report.ambiguous_files.append(image.file_name)
        else:
            chosen[found[0]] = row
    if chosen:
        rows = list(chosen.values())
        column = (
            annotations.arrow.take(pa.array(rows, pa.int64()))
            if annotations.arrow is not None
            else labels.to_arrow(annotations.kind, [annotations.images[row].value for row in rows])
        )
        table = pa.table({"path": pa.array(list(chosen), pa.string()), field: column})
        datasource.upload_metadata_from_dataframe(table, path_column="path")
    report.matched = len(chosen)
    return report


def annotation_set(result: Any, field: str | None) -> AnnotationSet:
    """The datapoints of a query result that have a value in ``field``, with their sizes."""
    kinds = {name: kind for name, kind in result.fields.items() if kind is not None and kind.is_annotation}
    if field is None:
        if len(kinds) != 1:
            raise InvalidArgumentError(f"name the annotation field to export; this result has {sorted(kinds)}")
        field = next(iter(kinds))
    if field not in kinds:
        raise InvalidArgumentError(f"field {field!r} is not an annotation field of this result ({sorted(kinds)})")
    table = result.arrow
    widths = table[WIDTH].to_pylist() if WIDTH in table.column_names else [0] * table.num_rows
    heights = table[HEIGHT].to_pylist() if HEIGHT in table.column_names else [0] * table.num_rows
    images = [
        AnnotatedImage(path, int(w or 0), int(h or 0), value)
        for path, w, h, value in zip(result.paths, widths, heights, result.labels(field))
        if value is not None
    ]
    return AnnotationSet(kinds[field].annotation_kind, images)


def export_annotations(
    result: Any, format_name: str, target: str | os.PathLike[str], field: str | None = None, copy_images: bool = False
) -> list[str]:
    """Writes the result's labels in ``field`` in an annotation format; ``copy_images`` adds the image files."""
    annotations = annotation_set(result, field)
    written = label_formats.write(format_name, annotations, target)
    if copy_images:
        folder = os.path.join(os.fspath(target), "images")
        result.download_files(folder, keep_source_prefix=False, progress=False)
    return written
