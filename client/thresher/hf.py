"""A query result as a Hugging Face ``datasets.Dataset``: metadata columns as Arrow, files as local paths.

Files come through the same download cache as ``QueryResult.download_files`` and the ML datasets
(a local folder source is read in place), so a second conversion fetches nothing.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from thresher.core.errors import InvalidArgumentError
from thresher.core.storage.storage_errors import UnsafePathError
from thresher.core.types import PATH_COLUMN

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


def to_hf_dataset(
    table: pa.Table,
    datasource: Any,
    file_column: str | None = "file",
    *,
    image: bool | None = None,
    savedir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Any:
    """``table`` as a ``datasets.Dataset``, with each datapoint's local file path in ``file_column``
    (None: no files), typed ``datasets.Image`` when ``image`` (None: when every file is an image)."""
    import datasets

    if file_column is not None:
        if file_column in table.column_names:
            raise InvalidArgumentError(f"the result already has a column {file_column!r}: pick another file_column")
        if datasource is None:
            raise InvalidArgumentError(
                "this result was not read from a datasource, so its files cannot be fetched; pass file_column=None"
            )
        paths = table.column(PATH_COLUMN).to_pylist()
        table = table.append_column(
            file_column, pa.array(local_files(datasource, paths, savedir, progress), pa.string())
        )
        if image is None:
            image = bool(paths) and all(os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS for p in paths)
    dataset = datasets.Dataset(datasets.table.InMemoryTable(table))
    if file_column is not None and image:
        dataset = dataset.cast_column(file_column, datasets.Image())
    return dataset


def local_files(
    datasource: Any, paths: list[str], savedir: str | os.PathLike[str] | None, progress: bool
) -> list[str | None]:
    """The local file of each datapoint path, fetched into the download cache first (None: a path that
    would land outside the cache folder, which is skipped with a warning)."""
    from thresher.ml.file_cache import DATAPOINT, FileStore

    files = FileStore(datasource, [(DATAPOINT, path) for path in paths], "preload", savedir, progress)
    local: list[str | None] = []
    for path in paths:
        try:
            local.append(os.fspath(files.path((DATAPOINT, path))))
        except UnsafePathError:
            local.append(None)
    return local
