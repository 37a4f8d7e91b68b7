"""Query results: the Arrow table a query returned, with pandas and per-datapoint views of it.

The table is the result; everything else is derived from it on demand, so a caller who only wants
``.dataframe`` or ``.arrow`` never pays for Python objects per row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import pathlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa

from thresher import blob_cache, downloads
from thresher.core import labels, vectors
from thresher.core.errors import InvalidArgumentError
from thresher.core.types import (
    DATAPOINT_ID_COLUMN,
    PATH_COLUMN,
    RESERVED_NAMES,
    SCAN_STATE_METADATA_KEY,
    TYPE_METADATA_KEY,
    FieldType,
    arrow_kind,
    field_type_of,
)
from thresher.interchange import ArrowExport
from thresher.urls import datapoint_url, datapoint_urls, download_url, register_url_builder  # noqa: F401 - re-exported: the URL hooks' old home

if TYPE_CHECKING:
    import pandas as pd


@dataclasses.dataclass
class Datapoint:
    """One datapoint of a result: its path, stable id, and the selected fields' values (None: no value)."""

    path: str
    datapoint_id: int
    metadata: dict[str, Any]
    source_uri: str = dataclasses.field(default="", repr=False, compare=False)
    datasource: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __getitem__(self, field: str) -> Any:
        return self.metadata[field]

    def get(self, field: str, default: Any = None) -> Any:
        value = self.metadata.get(field)
        return default if value is None else value

    def history(self, field: str | None = None) -> pd.DataFrame:
        """Every write that touched this datapoint (or one field of it): when, who, what, as a DataFrame."""
        return self._source("fetch its history").history(self.path, field)

    @property
    def download_url(self) -> str | None:
        """A URL a generic tool can fetch the file from: ``file://`` for local sources, presigned for S3,
        else the flight service's (see ``thresher.urls``)."""
        return datapoint_url(self.source_uri, self.path, self.datasource)

    def download_file(self, target: str | os.PathLike[str] | None = None) -> pathlib.Path:
        """Downloads the file to ``target`` (a file path, or an existing folder to keep its name), by
        default to where ``QueryResult.download_files`` puts it; returns the file's path."""
        return downloads.download_file(self._source("download its file"), self.path, target)

    def get_blob(self, field: str, cache_on_disk: bool = True, store_value: bool = False) -> bytes | None:
        """The bytes of blob field ``field`` (None when it has no value), fetched by hash through the
        disk cache unless ``cache_on_disk`` is false; ``store_value`` keeps them in ``metadata[field]``."""
        value = self.metadata[field]
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, pathlib.Path):  # get_blob_fields left the cached file's path here
            data = value.read_bytes()
        else:
            source = self._source("fetch its blobs")
            data = blob_cache.fetch(source.connection, value, cache_on_disk, datasource_id=source.id)
        if store_value:
            self.metadata[field] = data
        return data

    def _source(self, doing: str) -> Any:
        if self.datasource is None:
            raise ValueError(f"this Datapoint was not read from a datasource, so it cannot {doing}")
        return self.datasource


class QueryResult(ArrowExport):
    """The datapoints a query returned: ``.arrow``, ``.dataframe``, ``.entries``, ``len``, iteration and
    lookup by path (``result["a/b.png"]``) or position.

    It is an Arrow stream producer (``__arrow_c_stream__``): ``pyarrow.table(r)``, ``polars.DataFrame(r)``
    and DuckDB (``duckdb.sql("select * from r")``) read it without a copy; see ``thresher.interchange``.
    """

    def __init__(
        self, table: pa.Table, source_uri: str = "", datasource: Any = None, read_at: dt.datetime | None = None
    ) -> None:
        self._table = table
        self._source_uri = source_uri
        self._datasource = datasource
        # When the query was sent: the instant a later read of the same view (to_ray_dataset) is pinned to.
        self._read_at = read_at

    @property
    def arrow(self) -> pa.Table:
        """The result as an Arrow table; each field's type is in its Arrow field metadata."""
        return self._table

    def vectors(self, field: str, dtype: Any = None) -> np.ndarray:
        """The ``(n, d)`` numpy array of a vector field (rows without a value are NaN)."""
        return vectors.to_numpy(self._table[field], dtype)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> pa.Table:
        """The result as an Arrow table (the one it holds: no copy)."""
        return self._table

    def to_pandas(self, **options: Any) -> pd.DataFrame:
        """The result as a pandas DataFrame (``options`` go to ``pyarrow.Table.to_pandas``)."""
        return self.dataframe if not options else self._table.to_pandas(**options)

    def _arrow_reader(self, native: bool = False) -> pa.RecordBatchReader:
        return self._table.to_reader()

    def _hf_source(self) -> Any:
        return self._datasource

    @functools.cached_property
    def dataframe(self) -> pd.DataFrame:
        """The result as a pandas DataFrame (``path``, ``datapoint_id``, then the fields)."""
        return self._table.to_pandas()

    @functools.cached_property
    def entries(self) -> list[Datapoint]:
        """The result as Datapoint objects, built on first use."""
        source = self._source_uri
        rows = self._table.to_pylist()
        # Reading every field's type costs a one-datapoint lookup about a tenth of its client time:
        # done only when a column can be an annotation.
        if _may_hold_annotations(self._table.schema):
            for name, kind in self.fields.items():
                if kind is not None and kind.is_annotation:
                    for row, value in zip(rows, self.labels(name)):
                        row[name] = value
        return [
            Datapoint(row.pop(PATH_COLUMN), row.pop(DATAPOINT_ID_COLUMN), row, source, self._datasource) for row in rows
        ]

    @property
    def paths(self) -> list[str]:
        return cast(list[str], self._table.column(PATH_COLUMN).to_pylist())  # pyarrow has no type information

    @property
    def fields(self) -> dict[str, FieldType | None]:
        """The result's field columns and their types."""
        return {
            f.name: field_type_of(f) or arrow_kind(f.type) for f in self._table.schema if f.name not in RESERVED_NAMES
        }

    def export_annotations(
        self, format: str, target: str | os.PathLike[str], field: str | None = None, copy_images: bool = False
    ) -> list[str]:
        """Writes annotation field ``field`` (the only one by default) as ``"coco"``, ``"yolo"``, ``"voc"``,
        ``"cvat"`` or ``"labelstudio"`` at ``target``; pixel formats need the width and height fields.
        ``copy_images`` also downloads the files into ``target/images``. Returns the files written."""
        from thresher import label_io

        return label_io.export_annotations(self, format, target, field, copy_images)

    def labels(self, field: str) -> list[Any]:
        """The values of annotation field ``field`` as ``thresher.core.labels`` objects (None: no value)."""
        kind = self.fields.get(field)
        annotation_kind = kind.annotation_kind if kind is not None else None
        if annotation_kind is None:
            raise InvalidArgumentError(
                f"field {field!r} is not an annotation field of this result "
                f"(annotation fields: {[n for n, k in self.fields.items() if k and k.is_annotation]})"
            )
        return labels.from_arrow(annotation_kind, self._table.column(field))

    @property
    def scan_state(self) -> str | None:
        """The datasource's scan state when the query ran: pending, scanning, ready or failed."""
        raw = (self._table.schema.metadata or {}).get(SCAN_STATE_METADATA_KEY)
        return raw.decode() if raw else None

    def download_files(
        self,
        target_dir: str | os.PathLike[str] | None = None,
        keep_source_prefix: bool = True,
        redownload: bool = False,
        *,
        threads: int = downloads.DEFAULT_THREADS,
        progress: bool = True,
        raise_on_failure: bool = True,
    ) -> downloads.DownloadReport:
        """Downloads every datapoint's file, in parallel with a progress bar; returns a DownloadReport
        (``.folder``, ``.downloaded``, ``.skipped``, ``.failed``; path-like: it stands for the folder).

        ``target_dir`` defaults to ``~/thresher/datasets/<namespace>/<datasource id>``;
        ``keep_source_prefix`` puts files under the source's bucket prefix or repository path there.
        Existing files are kept unless ``redownload``. Each file appears whole or not at all. A path
        that would land outside the folder is skipped with an UnsafePathWarning naming it and the rest
        still download. A failed download raises once the others finish, unless ``raise_on_failure``
        is false, when it is only listed in the report.
        """
        return downloads.download_files(
            self._source("download files"),
            self.paths,
            target_dir,
            keep_source_prefix,
            redownload,
            threads=threads,
            progress=progress,
            raise_on_failure=raise_on_failure,
        )

    def export(
        self,
        target: str | os.PathLike[str],
        columns: list[str] | None = None,
        shardlen: int = 1000,
        formats: dict[str, str] | None = None,
        engine: str = "local",
        **options: Any,
    ) -> dict[str, Any]:
        """Writes this result's files and metadata ``columns`` (default: all) to ``target`` (a folder,
        ``s3://`` or ``gs://`` URI) as a sharded bag dataset of ``shardlen`` datapoints a shard, resumable
        after an interruption; ``formats={"file": "jpg"}`` re-encodes images (``image_size=(w, h)``).
        ``engine="ray"`` writes the shards from Ray tasks (the same files; see ``thresher.ray_engine.export_tasks``).
        Returns the manifest (also at ``<target>/manifest.json``); see ``thresher.export``."""
        if engine == "ray":
            from thresher.ray_engine.export_tasks import export_on_ray

            return export_on_ray(self, os.fspath(target), columns, shardlen, formats, **options)
        if engine != "local":
            raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
        from thresher.export import export_result

        return export_result(self, os.fspath(target), columns, shardlen, formats, **options)

    def to_ray_dataset(self, **read_options: Any) -> Any:
        """This result as a Ray Dataset: one read task per Flight partition, each reading its rows from the
        flight nodes (never through this process). The query is read again as of its own ``as_of``, else
        the instant this result was read; ``read_options`` go to ``ray.data.read_datasource``."""
        from thresher.ray_engine.read import to_ray_dataset

        view = self._source("read it on Ray")
        if view.query.as_of is None and self._read_at is not None:
            view = view.as_of(self._read_at)
        return to_ray_dataset(view, **read_options)

    def get_blob_fields(
        self,
        *fields: str,
        load_into_memory: bool = False,
        threads: int = blob_cache.DEFAULT_THREADS,
        progress: bool = True,
    ) -> QueryResult:
        """Fetches the blobs of ``fields`` (none: every blob field) into the disk cache, in parallel.

        Each datapoint's value becomes the bytes (``load_into_memory``) or the cached file's
        ``pathlib.Path``; ``Datapoint.get_blob`` reads either. The table and dataframe keep the hashes.
        """
        kinds = self.fields
        names = list(fields) or [name for name, kind in kinds.items() if kind is FieldType.BLOB]
        for name in names:
            if kinds.get(name) is not FieldType.BLOB:
                raise InvalidArgumentError(
                    f"{name!r} is not a blob field of this result "
                    f"(blob fields: {[n for n, k in kinds.items() if k is FieldType.BLOB]})"
                )
        digests = {d for name in names for d in self._table.column(name).to_pylist() if d is not None}
        source = self._source("fetch blobs")
        cached = blob_cache.cache_many(source.connection, digests, threads, progress, datasource_id=source.id)
        for entry in self.entries:
            for name in names:
                digest = entry.metadata[name]
                if isinstance(digest, str):
                    entry.metadata[name] = cached[digest].read_bytes() if load_into_memory else cached[digest]
        return self

    # -- machine learning (thresher.ml imports torch, tensorflow and fiftyone only when called) -----

    def as_ml_dataset(self, flavor: str, **options: Any) -> Any:
        """A ``torch.utils.data.Dataset`` (``"torch"``) or ``tf.data.Dataset`` (``"tensorflow"``) of this
        result: ``metadata_columns``, ``file_columns``, ``tensorizers``, ``strategy`` (``lazy``,
        ``background``, ``preload``), ``savedir``; see ``thresher.ml``."""
        from thresher import ml

        return ml.as_ml_dataset(self, self._source("build an ML dataset"), flavor, **options)

    def as_ml_dataloader(self, flavor_or_dataset: Any, **options: Any) -> Any:
        """A torch DataLoader or a Keras PyDataset of this result (or of a dataset from ``as_ml_dataset``);
        dataset options as for ``as_ml_dataset``, the rest go to the loader."""
        from thresher import ml

        return ml.as_ml_dataloader(self, self._source("build an ML dataloader"), flavor_or_dataset, **options)

    def to_voxel51_dataset(self, name: str | None = None, **options: Any) -> Any:
        """A FiftyOne dataset of this result: files downloaded, every field a sample field; see
        ``thresher.ml.voxel51.to_voxel51_dataset``."""
        from thresher.ml import voxel51

        return voxel51.to_voxel51_dataset(self, self._source("build a FiftyOne dataset"), name, **options)

    def visualize(self, **options: Any) -> Any:
        """Opens this result in the FiftyOne app; returns the app session (see ``thresher.ml.voxel51``)."""
        from thresher.ml import voxel51

        return voxel51.visualize(self, self._source("visualize it"), **options)

    def with_download_urls(self) -> QueryResult:
        """This result with a ``download_url`` column (see ``Datapoint.download_url``); built per row,
        so it is asked for rather than added to every result."""
        urls = datapoint_urls(self._source_uri, self.paths, self._datasource)
        table = self._table.append_column("download_url", pa.array(urls, pa.string()))
        return QueryResult(table, self._source_uri, self._datasource)

    def _source(self, doing: str) -> Any:
        if self._datasource is None:
            raise ValueError(f"this QueryResult was not read from a datasource, so it cannot {doing}")
        return self._datasource

    def __len__(self) -> int:
        return cast(int, self._table.num_rows)

    def __iter__(self) -> Iterator[Datapoint]:
        return iter(self.entries)

    def __getitem__(self, key: str | int) -> Datapoint:
        """A datapoint by path, or by position in the result."""
        if isinstance(key, str):
            try:
                return self.entries[self._positions[key]]
            except KeyError:
                raise KeyError(f"no datapoint with path {key!r} in this result") from None
        if isinstance(key, int):
            return self.entries[key]
        raise TypeError(f"look datapoints up by path (str) or position (int), not {type(key).__name__}")

    def __contains__(self, path: object) -> bool:
        return path in self._positions

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        return {path: i for i, path in enumerate(self.paths)}

    def __repr__(self) -> str:
        return f"<QueryResult: {len(self)} datapoints, fields {list(self.fields)}>"


def paths_of(items: str | os.PathLike[str] | Datapoint | QueryResult | Iterable[Any]) -> list[str]:
    """The datapoint paths named by a path, a Datapoint, a QueryResult, or an iterable of paths/Datapoints."""
    if isinstance(items, QueryResult):
        return items.paths
    if isinstance(items, str | os.PathLike | Datapoint):
        items = [items]
    paths = []
    for item in items:
        if isinstance(item, Datapoint):
            paths.append(item.path)
        elif isinstance(item, str | os.PathLike):
            paths.append(os.fspath(item))
        else:
            raise TypeError(f"expected a datapoint path or a Datapoint, got {type(item).__name__}")
    return paths


def _may_hold_annotations(schema: pa.Schema) -> bool:
    """Whether a column of ``schema`` can be an annotation field: a nested Arrow type (every annotation
    kind's, and what ``arrow_kind`` reads one from, through a dictionary too) or a type recorded as an
    annotation in its metadata."""
    for field in schema:
        if pa.types.is_nested(field.type) or pa.types.is_dictionary(field.type):
            return True
        metadata = field.metadata
        if metadata and metadata.get(TYPE_METADATA_KEY, b"").startswith(b"annotation:"):
            return True
    return False
