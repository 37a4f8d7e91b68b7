"""FiftyOne: a query result as a ``fiftyone.Dataset`` (files local, fields typed) and in the FiftyOne app.

FiftyOne keeps its datasets in a MongoDB it starts itself. The ``fiftyone-db==0.4.5`` wheel bundles a
mongod that links against OpenSSL 1.1, which current Debian lacks: ``scripts/fetch_libssl11.sh``
unpacks the previous release's ``libssl1.1``, and ``$THRESHER_LIBSSL11_DIR`` names that folder here,
so it goes on ``LD_LIBRARY_PATH`` before FiftyOne starts mongod (which inherits the environment).
"""

from __future__ import annotations

import datetime as dt
import glob
import os
from typing import Any

import numpy as np

from thresher import blob_cache
from thresher.core.settings import Settings, env_name
from thresher.core.types import FieldType
from thresher.ml import voxel51_labels
from thresher.ml.file_cache import DATAPOINT, FileStore

LIBSSL11_DIR_ENV = env_name("libssl11_dir")
# Sample fields FiftyOne defines itself; Thresher fields of these names get a "thresher_" prefix.
RESERVED_SAMPLE_FIELDS = {"id", "filepath", "tags", "metadata", "media_type", "created_at", "last_modified_at"}
PATH_FIELD, ID_FIELD = "thresher_path", "thresher_datapoint_id"


def prepare_environment() -> None:
    """Puts ``$THRESHER_LIBSSL11_DIR``'s libraries on ``LD_LIBRARY_PATH`` (before mongod starts)."""
    folder = Settings.read("libssl11_dir")
    if not folder:
        return
    found = glob.glob(os.path.join(folder, "usr", "lib", "*", "libssl.so.1.1")) or glob.glob(
        os.path.join(folder, "libssl.so.1.1")
    )
    if not found:
        raise FileNotFoundError(
            f"${LIBSSL11_DIR_ENV} is {folder}, which holds no libssl.so.1.1: run "
            "scripts/fetch_libssl11.sh to unpack it there"
        )
    library_dir = os.path.dirname(found[0])
    current = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    if library_dir not in current:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([library_dir, *current])


def fiftyone() -> Any:
    """The ``fiftyone`` module, imported with mongod's environment prepared."""
    prepare_environment()
    try:
        import fiftyone as fo
    except ImportError as error:
        raise ImportError("FiftyOne datasets need fiftyone: pip install 'thresher[fiftyone]'") from error
    return fo


def sample_field_name(field: str) -> str:
    """The sample field a Thresher field becomes (FiftyOne's own names and ``_`` names are prefixed)."""
    return f"thresher_{field}" if field in RESERVED_SAMPLE_FIELDS or field.startswith("_") else field


def field_classes(fo: Any) -> dict[FieldType, Any]:
    """Thresher field type -> FiftyOne field class (blobs are local file paths, so strings)."""
    return {
        FieldType.INT: fo.IntField,
        FieldType.FLOAT: fo.FloatField,
        FieldType.BOOL: fo.BooleanField,
        FieldType.STRING: fo.StringField,
        FieldType.DATETIME: fo.DateTimeField,
        FieldType.BLOB: fo.StringField,
        FieldType.VECTOR: fo.VectorField,
    }


def to_voxel51_dataset(
    result: Any,
    datasource: Any,
    name: str | None = None,
    *,
    persistent: bool = False,
    overwrite: bool = False,
    savedir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Any:
    """A FiftyOne dataset with one sample per datapoint of ``result``.

    Files are downloaded first (local folders are used in place); ``filepath`` is the local file.
    Every field becomes a sample field of the matching type; a blob field holds the local path of
    its cached bytes. ``thresher_path`` and ``thresher_datapoint_id`` keep the datapoint's identity.
    ``name`` defaults to a fresh one; ``persistent`` and ``overwrite`` are FiftyOne's.
    """
    fo = fiftyone()
    paths = result.paths
    files = FileStore(datasource, [(DATAPOINT, path) for path in paths], "preload", savedir, progress)
    kinds = {field: FieldType(kind) for field, kind in result.fields.items() if kind is not None}
    columns = {field: result.arrow.column(field).to_pylist() for field in kinds}
    blob_digests = [d for field, kind in kinds.items() if kind is FieldType.BLOB for d in columns[field] if d]
    blob_digests += voxel51_labels.mask_digests(kinds, columns)
    cached = (
        blob_cache.cache_many(datasource.connection, blob_digests, progress=progress, datasource_id=datasource.id)
        if blob_digests
        else {}
    )
    dataset = fo.Dataset(name, persistent=persistent, overwrite=overwrite)
    classes = field_classes(fo)
    dataset.add_sample_field(PATH_FIELD, fo.StringField)
    dataset.add_sample_field(ID_FIELD, fo.IntField)
    for field, kind in kinds.items():
        if kind.is_annotation:
            voxel51_labels.add_field(fo, dataset, sample_field_name(field), kind, columns[field])
        else:
            dataset.add_sample_field(sample_field_name(field), classes[kind])
    ids = result.arrow.column("datapoint_id").to_pylist()
    samples = []
    for row, path in enumerate(paths):
        values = {
            sample_field_name(field): voxel51_labels.sample_value(fo, kinds[field], column[row], cached)
            if kinds[field].is_annotation
            else _sample_value(kinds[field], column[row], cached)
            for field, column in columns.items()
        }
        samples.append(
            fo.Sample(
                filepath=str(files.path((DATAPOINT, path))),
                **{PATH_FIELD: path, ID_FIELD: ids[row]},
                **{key: value for key, value in values.items() if value is not None},
            )
        )
    dataset.add_samples(samples, progress=progress)
    return dataset


def _sample_value(kind: FieldType, value: Any, cached: dict[str, Any]) -> Any:
    if value is None:
        return None
    if kind is FieldType.BLOB:
        return str(cached[value])
    if kind is FieldType.VECTOR:
        return np.asarray(value, dtype=np.float32)
    if kind is FieldType.DATETIME and value.tzinfo is not None:
        # FiftyOne stores naive datetimes as UTC; converting here keeps the instant exact.
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def visualize(
    result: Any,
    datasource: Any,
    name: str | None = None,
    *,
    savedir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    **launch_options: Any,
) -> Any:
    """Builds the FiftyOne dataset of ``result`` and opens it in the FiftyOne app; returns the session.

    ``launch_options`` go to ``fiftyone.launch_app`` (``port``, ``address``, ``remote``, ``auto``...).
    """
    fo = fiftyone()
    dataset = to_voxel51_dataset(result, datasource, name, savedir=savedir, progress=progress)
    return fo.launch_app(dataset, **launch_options)
