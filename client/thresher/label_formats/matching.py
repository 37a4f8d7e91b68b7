"""Matching the image names of an annotation file to datapoint paths."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from thresher.core.errors import InvalidArgumentError


def _stem(path: str) -> str:
    base, ext = posixpath.splitext(path)
    return base if ext else path


@dataclass
class ImportReport:
    """What ``import_annotations`` did: datapoints written, and annotation images no datapoint matched."""

    field: str
    kind: str
    matched: int = 0
    # dataclasses.field spelled out: inside this class, `field` names the attribute above.
    unmatched_files: list[str] = dataclasses.field(default_factory=list)
    ambiguous_files: list[str] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"ImportReport(field={self.field!r}, kind={self.kind!r}, matched={self.matched}, "
            f"unmatched_files={len(self.unmatched_files)}, ambiguous_files={len(self.ambiguous_files)}, "
            f"skipped={len(self.skipped)})"
        )


def matcher(paths: Iterable[str], how: str | Callable[[str], str | None]) -> Callable[[str], list[str]]:
    """A function from an image name to the datapoint paths it matches.

    ``how``: ``"path"`` (the same relative path), ``"stem"`` (the same path without extension),
    ``"name"`` (the same file name, anywhere), ``"auto"`` (path, then stem, then name: the first that
    matches), or a function from the image name to a datapoint path (None: no match).
    """
    paths = list(paths)
    if callable(how):
        known = set(paths)
        return lambda name: [p for p in [how(name)] if p in known]
    by_path = {p: [p] for p in paths}
    by_stem: dict[str, list[str]] = {}
    by_name: dict[str, list[str]] = {}
    for p in paths:
        by_stem.setdefault(_stem(p), []).append(p)
        by_name.setdefault(posixpath.basename(p), []).append(p)
    tables: dict[str, list[tuple[dict[str, list[str]], Callable[[str], str]]]] = {
        "path": [(by_path, lambda n: n)],
        "stem": [(by_stem, _stem)],
        "name": [(by_name, posixpath.basename)],
    }
    tables["auto"] = tables["path"] + tables["stem"]
    if how not in tables:
        raise InvalidArgumentError(f"match must be 'auto', 'path', 'stem', 'name' or a function, not {how!r}")

    def match(name: str) -> list[str]:
        name = name.removeprefix("./")
        for table, key in tables[how]:
            if found := table.get(key(name)):
                return found
        if how == "auto":
            # Annotation files often name images by a path under some other root: try each suffix.
            parts = name.split("/")
            for start in range(1, len(parts)):
                suffix = "/".join(parts[start:])
                for table, key in tables["auto"]:
                    if found := table.get(key(suffix)):
                        return found
            return by_name.get(posixpath.basename(name), [])
        return []

    return match
