"""QueryResult.export: files and metadata as a sharded bag dataset, re-encoded images, resuming, registering."""

from __future__ import annotations

import json

import pytest

import thresher
from thresher import export as exporting
from thresher.bag import ResumeError, ShardedDatasetReader, decoders
from thresher.core.errors import NotFoundError


def test_export_holds_files_and_columns(image_source, tmp_path):
    ds, folder = image_source(10)
    result = ds.order_by("path").all()
    manifest = result.export(tmp_path / "out", columns=["label", "Note"], shardlen=4, progress=False)

    with ShardedDatasetReader(tmp_path / "out", decoders) as reader:
        assert reader.shards == 3 and len(reader) == 10
        assert reader.spec == {"file": "bytes", "label": "msgpack", "note": "msgpack", "path": "utf8"}
        for i, entry in enumerate(result):
            point = reader[i]
            assert point["path"] == entry.path
            assert point["file"] == (folder / entry.path).read_bytes()
            assert point["label"] == entry["label"] and point["note"] == entry["Note"]
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["complete"] and manifest["shards"] == 3 and manifest["rows_done"] == 10
    assert manifest["datasource"] == {"namespace": ds.namespace, "name": ds.name, "id": ds.id}
    assert manifest["query"]["datasourceId"] == str(ds.id)
    assert manifest["columns"] == {"label": "label", "Note": "note"}


def test_export_reencodes_images(image_source, tmp_path):
    ds, _ = image_source(3)
    ds.all().export(tmp_path / "jpg", columns=[], formats={"file": "jpg"}, image_size=(4, 6), progress=False)
    with ShardedDatasetReader(tmp_path / "jpg", decoders) as reader:
        assert reader.spec["file"] == "jpg"
        assert all(reader[i]["file"].shape == (6, 4, 3) for i in range(3))


def test_interrupted_export_resumes(image_source, tmp_path, monkeypatch):
    ds, _ = image_source(10)
    result = ds.order_by("path").all()
    fetched, failed = [], []
    real = exporting.fetcher

    def failing(datasource, file_type, size):
        fetch = real(datasource, file_type, size)

        def once(path):
            if path == "img/06.png" and not failed:
                failed.append(path)
                raise OSError("network down")
            fetched.append(path)
            return fetch(path)

        return once

    monkeypatch.setattr(exporting, "fetcher", failing)
    with pytest.raises(OSError, match="network down"):
        result.export(tmp_path / "out", columns=["label"], shardlen=4, threads=1, progress=False)
    partial = exporting.read_manifest(tmp_path / "out")
    assert not partial["complete"] and partial["rows_done"] == 0
    fetched.clear()
    manifest = result.export(tmp_path / "out", columns=["label"], shardlen=4, threads=1, progress=False)
    # The first shard (4 datapoints) was complete: only the rest is fetched again.
    assert fetched == [f"img/{i:02}.png" for i in range(4, 10)]
    assert manifest["complete"] and manifest["created_at"] == partial["created_at"]
    with ShardedDatasetReader(tmp_path / "out", decoders) as reader:
        assert [reader[i]["path"] for i in range(10)] == result.paths

    other = ds.order_by("path").limit(3).all()
    with pytest.raises(ResumeError, match="another export"):
        other.export(tmp_path / "out", columns=["label"], shardlen=4, progress=False)


def test_register_export(image_source, local_services, namespace, tmp_path):
    conn = local_services.connect()
    ds, _ = image_source(2)
    ds.all().export(tmp_path / "out", progress=False)
    record = thresher.datasets.register_export(namespace, "train", tmp_path / "out", connection=conn)
    assert record.uri == str(tmp_path / "out")
    assert thresher.datasets.get_export(namespace, "train", connection=conn).uri == record.uri
    thresher.datasets.register_export(namespace, "train", tmp_path / "elsewhere", connection=conn)
    assert [r.uri for r in thresher.datasets.list_exports(namespace, connection=conn)] == [str(tmp_path / "elsewhere")]
    with pytest.raises(NotFoundError):
        thresher.datasets.get_export(namespace, "missing", connection=conn)


def test_vector_fields_export_as_numpy_arrays(image_source, tmp_path):
    import numpy as np

    ds, _ = image_source(4)
    vectors = np.arange(4 * 3, dtype=np.float32).reshape(4, 3)
    ds.upload_vectors("emb", [f"img/{i:02}.png" for i in range(4)], vectors)
    ds.order_by("path").all().export(tmp_path / "vec", columns=["emb"], files_too=False, progress=False)
    with ShardedDatasetReader(tmp_path / "vec", decoders) as reader:
        assert reader.spec["emb"] == "array"
        got = np.stack([reader[i]["emb"] for i in range(4)])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, vectors)
