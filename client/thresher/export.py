"""Exporting a query result as a sharded bag dataset: the files and chosen metadata columns of each datapoint.

One datapoint per row of the result, in its order: ``path`` (utf8), ``file`` (the file's bytes, or an
image re-encoded as ``jpg``/``png`` at a chosen size) and one key per metadata column (``msgpack`` by
default, so a missing value stays None; datetimes become ISO-8601 strings). Files are fetched on threads
(the downloads machinery: through flight, or straight from an enabled bucket) and written in order by a
``ShardedDatasetWriter``, so the target may be local, ``s3://`` or ``gs://``.

``manifest.json`` at the dataset's root records the datasource, the query (as JSON), the instant the
export reads at (``as_of``: the query's own, else when the export started), the spec, the key of every
column, how many rows are done and whether the export is complete. An interrupted export resumes when
run again on the same target: the sharded writer keeps its complete shards, the rows already in them are
skipped, and the result must agree with the manifest (same datasource, query and paths) — re-query with
``ds.as_of(manifest["as_of"])`` to read the same state again.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from thresher.core.bag import ShardedDatasetWriter, encoders, files
from thresher.core.bag.bag_errors import ResumeError
from thresher.core.bag.writing import write_file_atomic
from thresher.downloads import reader_for

MANIFEST = "manifest.json"
PATH_KEY, FILE_KEY = "path", "file"
IMAGE_FORMATS = {"jpg": "JPEG", "png": "PNG"}
DEFAULT_SHARDLEN = 1000
_KEY_CHARS = re.compile(r"[^a-z0-9_\-]")


def column_key(name: str) -> str:
    """A bag key for a column name: lowercase, other characters as ``_``, never starting with a digit."""
    key = _KEY_CHARS.sub("_", name.lower())
    return key if key and not key[0].isdigit() and key != "refs" else f"_{key}"


@dataclasses.dataclass
class ExportPlan:
    """What an export writes, worked out from the result before anything is written."""

    target: str
    datasource: Any
    names: list[str]
    keys: dict[str, str]
    spec: dict[str, str]
    paths: list[str]
    manifest: dict[str, Any]
    table: Any

    def values(self) -> dict[str, list[Any]]:
        """Each chosen column's values, as msgpack takes them."""
        return {name: _python_values(self.table.column(name), self.spec[self.keys[name]]) for name in self.names}

    def point(self, values: dict[str, list[Any]], i: int) -> dict[str, Any]:
        """Row ``i`` as a datapoint, without its file."""
        return {PATH_KEY: self.paths[i], **{self.keys[name]: values[name][i] for name in self.names}}


def plan_export(
    result: Any,
    target: str,
    columns: Sequence[str] | None,
    shardlen: int,
    formats: dict[str, str] | None,
    image_size: tuple[int, int] | None,
    files_too: bool,
) -> ExportPlan:
    """The plan of an export of ``result`` to ``target``, checked against an earlier export there."""
    datasource = result._source("export it")  # noqa: SLF001 - the view the result was read through
    table = result.arrow
    names = list(columns) if columns is not None else list(result.fields)
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise KeyError(f"columns {missing} are not in this result (its columns: {table.column_names})")
    keys = {name: column_key(name) for name in names}
    formats = dict(formats or {})
    spec = {
        PATH_KEY: "utf8",
        **{keys[name]: formats.get(keys[name], _default_format(table.column(name))) for name in names},
    }
    if files_too:
        spec[FILE_KEY] = formats.get(FILE_KEY, "bytes")
    if len(spec) != 2 + len(names) - (not files_too):
        raise ValueError(f"columns {names} map onto clashing keys {sorted(keys.values())}")
    paths = result.paths
    manifest = _manifest(datasource, spec, keys, shardlen, paths, image_size)
    # A reader needs the types to rebuild values: annotation kinds especially (thresher.core.labels.from_plain).
    manifest["field_types"] = {
        keys[name]: kind.value for name, kind in result.fields.items() if name in keys and kind is not None
    }
    target = files.normpath(target)
    _check_resume(target, manifest)
    return ExportPlan(target, datasource, names, keys, spec, paths, manifest, table)


def export_result(
    result: Any,
    target: str,
    columns: Sequence[str] | None = None,
    shardlen: int = DEFAULT_SHARDLEN,
    formats: dict[str, str] | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    files_too: bool = True,
    threads: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes ``result`` (a QueryResult) to ``target`` as a sharded bag dataset; returns the manifest.

    ``columns``: metadata columns to include (default: all). ``formats``: key -> bag type, e.g.
    ``{"file": "jpg"}`` re-encodes images as JPEG (``image_size=(w, h)`` resizes them too), ``{"label":
    "int"}`` stores a column with a plain format (its values must then all be present).
    """
    from tqdm.auto import tqdm  # only here: keeps `import thresher` light

    plan = plan_export(result, target, columns, shardlen, formats, image_size, files_too)
    target, paths, manifest = plan.target, plan.paths, plan.manifest
    with ShardedDatasetWriter(target, plan.spec, encoders, shardlen=shardlen) as writer:
        done = len(writer)
        write_manifest(target, {**manifest, "rows_done": done})
        values = plan.values()
        fetch = fetcher(plan.datasource, plan.spec.get(FILE_KEY), image_size) if files_too else None
        with (
            concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool,
            tqdm(
                total=len(paths),
                initial=done,
                desc=f"exporting to {target}",
                unit=" datapoints",
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            window = max(1, threads) * 4  # bounded look-ahead: files are fetched in parallel, written in order
            for first in range(done, len(paths), window):
                chunk = range(first, min(len(paths), first + window))
                contents = pool.map(fetch, (paths[i] for i in chunk)) if fetch else (None for _ in chunk)
                for i, content in zip(chunk, contents):
                    point = plan.point(values, i)
                    if fetch:
                        point[FILE_KEY] = content
                    writer.append(point)
                    bar.update(1)
    manifest.update(rows_done=len(paths), shards=writer.shards, complete=True)
    write_manifest(target, manifest)
    return manifest


def _manifest(
    datasource: Any,
    spec: dict[str, str],
    keys: dict[str, str],
    shardlen: int,
    paths: list[str],
    image_size: tuple[int, int] | None,
) -> dict[str, Any]:
    from google.protobuf import json_format

    query = datasource.query_proto()
    as_of = datasource.query.as_of or dt.datetime.now(dt.UTC)
    return {
        "datasource": {"namespace": datasource.namespace, "name": datasource.name, "id": datasource.id},
        "query": json_format.MessageToDict(query),
        "as_of": as_of.isoformat(),
        "spec": spec,
        "columns": keys,
        "shardlen": shardlen,
        "image_size": list(image_size) if image_size else None,
        "rows": len(paths),
        "paths_sha256": hashlib.sha256("\n".join(paths).encode()).hexdigest(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "rows_done": 0,
        "shards": None,
        "complete": False,
    }


def read_manifest(target: str) -> dict[str, Any] | None:
    """The manifest of the export at ``target``, or None where there is none."""
    try:
        manifest: dict[str, Any] = json.loads(files.read_whole(files.join(files.normpath(target), MANIFEST)))
        return manifest
    except FileNotFoundError:
        return None


def _check_resume(target: str, manifest: dict[str, Any]) -> None:
    """A target with a manifest takes only the export it records (to resume it), never another."""
    earlier = read_manifest(target)
    if earlier is None:
        return
    same = ("datasource", "query", "spec", "columns", "shardlen", "image_size", "rows", "paths_sha256")
    differing = [name for name in same if earlier.get(name) != manifest[name]]
    if differing:
        raise ResumeError(
            f"{target} holds another export (its {differing} differ); to resume it, query "
            f"the same view as of {earlier['as_of']}, or export to a new target"
        )
    manifest["as_of"], manifest["created_at"] = earlier["as_of"], earlier["created_at"]


def write_manifest(target: str, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    if not files.is_remote(target):
        write_file_atomic(files.join(target, MANIFEST), data)
        return
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        handle.write(data)
    try:
        files.writable_storage_for(target).upload(handle.name, files.join(target, MANIFEST))
    finally:
        os.unlink(handle.name)


def _default_format(column: Any) -> str:
    """``array`` for a vector column where every row has a vector (numpy rows on read); ``msgpack`` otherwise."""
    import pyarrow as pa

    return "array" if pa.types.is_fixed_size_list(column.type) and column.null_count == 0 else "msgpack"


def _python_values(column: Any, format: str = "msgpack") -> list[Any]:
    """A column's values for its format: vectors as numpy rows for ``array``; for msgpack, datetimes as
    ISO-8601 strings and everything else as Python has it."""
    if format == "array" and _is_vector_column(column):
        from thresher.core.vectors import to_numpy

        return list(to_numpy(column))
    values = column.to_pylist()
    return [v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else v for v in values]


def _is_vector_column(column: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_fixed_size_list(column.type))


def fetcher(datasource: Any, file_type: str | None, image_size: tuple[int, int] | None) -> Callable[[str], Any]:
    read = reader_for(datasource)

    def fetch(path: str) -> Any:
        data = b"".join(bytes(chunk) for chunk in read(path))
        if file_type in IMAGE_FORMATS:
            return _image(data, image_size)
        return data

    return fetch


def _image(data: bytes, size: tuple[int, int] | None) -> Any:
    """The decoded image (for the jpg/png encoder), resized to ``size`` when given."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
        if size is not None:
            width, height = size
            image = image.resize((width, height))
        return np.asarray(image)
