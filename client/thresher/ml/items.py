"""What one item of an ML dataset is: the chosen columns of one datapoint, each tensorized to numpy.

Columns are the file columns, then the metadata columns. A file column is ``path`` (the datapoint's
own file), a string field holding another file's path in the same datasource, or a blob field; its
value becomes a local file (see ``thresher.ml.file_cache``) and then an array. A metadata column is a
field's value. An item is the tuple of the columns' arrays, or the array alone when there is one
column; a single callable given as ``tensorizers`` builds the whole item instead, from a dict of
column name -> local file path (file columns) or value (metadata columns).
"""

from __future__ import annotations

import functools
import math
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from thresher.core import labels
from thresher.core.errors import InvalidArgumentError
from thresher.core.types import PATH_COLUMN, FieldType
from thresher.ml import label_targets
from thresher.ml import tensorizers as tz
from thresher.ml.file_cache import BLOB, DATAPOINT, FileStore, Key

TensorizerSpec = str | Callable[..., Any] | Sequence[str | Callable[..., Any]]
_METADATA_KINDS = {
    FieldType.INT,
    FieldType.FLOAT,
    FieldType.BOOL,
    FieldType.DATETIME,
    FieldType.STRING,
    FieldType.VECTOR,
}


class MissingValueError(InvalidArgumentError):
    """A datapoint with no value in a column an ML dataset needs (and no NaN to stand for it)."""


class Column:
    """One column of the items: its name, whether it names files, its values and its tensorizer."""

    def __init__(self, name: str, kind: FieldType | None, values: list[Any], is_file: bool) -> None:
        self.name, self.kind, self.values, self.is_file = name, kind, values, is_file
        self.tensorize: Callable[[Any], Any] = _identity

    def key(self, row: int, paths: list[str]) -> Key:
        """The file store key of this file column's value in ``row``."""
        value = self.values[row]
        if value is None:
            raise MissingValueError(f"datapoint {paths[row]!r} has no value in file column {self.name!r}")
        if self.kind is FieldType.SEGMENTATION:
            return (BLOB, value["mask"])  # the mask's bytes are a blob
        return (BLOB if self.kind is FieldType.BLOB else DATAPOINT, value)


class ItemBuilder:
    """Builds item ``i`` of a query result as numpy arrays (picklable, for DataLoader worker processes)."""

    def __init__(
        self,
        result: Any,
        files: FileStore | None,
        file_columns: Sequence[str] | None = None,
        metadata_columns: Sequence[str] = (),
        tensorizers: TensorizerSpec = "auto",
        class_maps: dict[str, dict[str, int]] | None = None,
    ) -> None:
        table, kinds = result.arrow, result.fields
        self.paths: list[str] = result.paths
        self.files = files
        file_columns = [PATH_COLUMN] if file_columns is None else list(file_columns)
        self.columns = [_file_column(name, table, kinds) for name in file_columns]
        self.columns += [_metadata_column(name, table, kinds) for name in metadata_columns]
        # Annotation columns: each label numbered by a class map (given, or the result's sorted labels).
        self.class_maps: dict[str, dict[str, int]] = {}
        for column in self.columns:
            annotation_kind = None if column.is_file or column.kind is None else column.kind.annotation_kind
            if annotation_kind is not None:
                values = labels.from_arrow(annotation_kind, table.column(column.name))
                given = (class_maps or {}).get(column.name)
                self.class_maps[column.name] = dict(given) if given else label_targets.class_map(values)
                sizes = [
                    table.column(n).to_pylist() if n in table.column_names else [None] * len(values)
                    for n in (label_targets.WIDTH, label_targets.HEIGHT)
                ]
                column.values = list(zip(values, *sizes))
        if not self.columns:
            raise InvalidArgumentError("an ML dataset needs at least one file or metadata column")
        self.whole_item: Callable[[dict[str, Any]], Any] | None = None
        if callable(tensorizers):
            self.whole_item = tensorizers
        elif isinstance(tensorizers, str):
            for column in self.columns:
                column.tensorize = _tensorizer(column, tensorizers if column.is_file else "auto")
        else:
            tensorizers = list(tensorizers)
            if len(tensorizers) != len(self.columns):
                raise InvalidArgumentError(
                    f"tensorizers lists {len(tensorizers)} entries for {len(self.columns)} "
                    f"columns {[c.name for c in self.columns]}: give one per column"
                )
            for column, spec in zip(self.columns, tensorizers):
                column.tensorize = _tensorizer(column, spec)
        for column in self.columns:
            if isinstance(column.tensorize, label_targets.Targets):
                column.tensorize.classes = self.class_maps[column.name]

    def keys(self) -> list[Key]:
        """Every file store key the items need, in item order."""
        return [
            column.key(row, self.paths) for row in range(len(self.paths)) for column in self.columns if column.is_file
        ]

    def __len__(self) -> int:
        return len(self.paths)

    def raw(self, row: int) -> dict[str, Any]:
        """Column name -> local file path (file columns) or value (metadata columns) for ``row``."""
        return {
            column.name: self._file(column, row) if column.is_file else column.values[row] for column in self.columns
        }

    def __call__(self, row: int) -> Any:
        """Item ``row``: the whole-item callable's result, or the tensorized columns."""
        if self.whole_item is not None:
            return self.whole_item(self.raw(row))
        arrays = tuple(
            column.tensorize(self._file(column, row) if column.is_file else self._value(column, row))
            for column in self.columns
        )
        return arrays[0] if len(arrays) == 1 else arrays

    @property
    def fetches(self) -> bool:
        """Whether items need files fetched from the services (not only files read in place)."""
        return self.files is not None and any(
            column.is_file and (column.kind is FieldType.BLOB or not self.files.reads_in_place)
            for column in self.columns
        )

    def batch(self, rows: Sequence[int]) -> list[Any]:
        """Items ``rows``, their files fetched together first (on a few threads) rather than one by one."""
        if self.files is not None:
            self.files.fetch_many(
                column.key(row, self.paths) for row in rows for column in self.columns if column.is_file
            )
        return [self(row) for row in rows]

    def _file(self, column: Column, row: int) -> pathlib.Path:
        assert self.files is not None, "file columns need a file store"
        return self.files.path(column.key(row, self.paths))

    def _value(self, column: Column, row: int) -> Any:
        value = column.values[row]
        if value is None:
            if column.kind is FieldType.FLOAT:
                return math.nan
            kind = "path" if column.kind is None else column.kind.value
            raise MissingValueError(
                f"datapoint {self.paths[row]!r} has no value in {kind} column "
                f"{column.name!r}; filter it out (ds[ds[{column.name!r}].is_not_null()]) or "
                "make it a float field, where missing values become NaN"
            )
        return value


def _identity(value: Any) -> Any:
    return value


def _file_column(name: str, table: Any, kinds: dict[str, FieldType | None]) -> Column:
    if name == PATH_COLUMN:
        return Column(name, None, table.column(PATH_COLUMN).to_pylist(), True)
    kind = _kind(name, kinds)
    if kind not in (FieldType.STRING, FieldType.BLOB, FieldType.SEGMENTATION):
        raise InvalidArgumentError(
            f"file column {name!r} is a {kind.value} field: a file column is 'path', a "
            "string field holding a datapoint path, or a blob field"
        )
    return Column(name, kind, table.column(name).to_pylist(), True)


def _metadata_column(name: str, table: Any, kinds: dict[str, FieldType | None]) -> Column:
    kind = _kind(name, kinds)
    if kind not in _METADATA_KINDS and not (kind.is_annotation and kind is not FieldType.SEGMENTATION):
        raise InvalidArgumentError(
            f"metadata column {name!r} is a {kind.value} field: name blob fields in "
            "file_columns, which fetches their bytes as files"
        )
    return Column(name, kind, table.column(name).to_pylist(), False)


def _kind(name: str, kinds: dict[str, FieldType | None]) -> FieldType:
    if name not in kinds:
        raise InvalidArgumentError(
            f"{name!r} is not a column of this result (columns: {sorted(kinds)}); select it in the query"
        )
    return FieldType(kinds[name])


def _tensorizer(column: Column, spec: str | Callable[..., Any]) -> Callable[[Any], Any]:
    """The function that turns this column's local file or value into an array, from its spec."""
    if callable(spec):
        return spec
    if column.is_file:
        if spec == "auto" and column.kind is FieldType.SEGMENTATION:
            return label_targets.mask
        if spec == "auto":
            # Local and cached datapoint files keep their names, so the extension tells their type; a
            # cached blob is named by its hash, so its first bytes tell instead (both in tz.auto).
            return tz.auto
        if spec in tz.TENSORIZERS:
            return tz.TENSORIZERS[spec]
        raise InvalidArgumentError(
            f"unknown tensorizer {spec!r} for file column {column.name!r}: use 'auto', "
            f"{', '.join(repr(n) for n in tz.TENSORIZERS)} or a callable"
        )
    kind = column.kind
    assert kind is not None, "a metadata column has a field type"
    if kind.annotation_kind is not None:
        if spec != "auto":
            raise InvalidArgumentError(f"annotation column {column.name!r} takes the 'auto' tensorizer or a callable")
        return label_targets.Targets(column.name, kind.annotation_kind, {})
    if spec not in ("auto", "numeric"):
        raise InvalidArgumentError(
            f"unknown tensorizer {spec!r} for metadata column {column.name!r}: use 'auto', 'numeric' or a callable"
        )
    if kind is FieldType.STRING:
        if spec == "numeric":
            raise InvalidArgumentError(
                f"metadata column {column.name!r} holds strings: the numeric tensorizer "
                "takes int, float, bool and datetime fields"
            )
        return np.str_
    return functools.partial(tz.numeric, kind=kind.value)
