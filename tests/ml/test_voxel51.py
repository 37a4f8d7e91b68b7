"""FiftyOne datasets from query results, on a mongod kept in the test's folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import pathlib

import numpy as np
import pandas as pd
import pytest

from tests.ml.conftest import IMAGES


def test_dataset_has_local_files_and_typed_fields(fo, local_images):
    taken = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    paths = local_images.order_by("path").all().paths
    local_images.upload_metadata_from_dataframe(
        pd.DataFrame(
            {
                "path": paths,
                "caption": [f"image {i}" for i in range(IMAGES)],
                "taken": [taken] * IMAGES,
                "thumb": [b"thumb %d" % i for i in range(IMAGES)],
                "metadata": [i * 2 for i in range(IMAGES)],
            }
        )
    )
    result = local_images.order_by("path").all()
    dataset = result.to_voxel51_dataset(progress=False)
    assert len(dataset) == IMAGES
    schema = dataset.get_field_schema()
    expected = {
        "label": fo.IntField,
        "score": fo.FloatField,
        "flag": fo.BooleanField,
        "caption": fo.StringField,
        "taken": fo.DateTimeField,
        "thumb": fo.StringField,
        "thresher_metadata": fo.IntField,
        "size": fo.IntField,
        "thresher_path": fo.StringField,
    }
    for field, kind in expected.items():
        assert isinstance(schema[field], kind), field
    sample = dataset.match(fo.ViewField("thresher_path") == paths[3]).first()
    assert pathlib.Path(sample.filepath).read_bytes() == (pathlib.Path(local_images.source[7:]) / paths[3]).read_bytes()
    assert (sample.label, sample.flag, sample.caption, sample.thresher_metadata) == (1, True, "image 3", 6)
    assert sample.score == pytest.approx(0.3)
    assert sample.taken.replace(tzinfo=dt.UTC) == taken
    assert pathlib.Path(sample.thumb).read_bytes() == b"thumb 3"
    assert pathlib.Path(sample.thumb).name == hashlib.sha256(b"thumb 3").hexdigest()
    dataset.delete()


def test_remote_files_are_downloaded_for_the_dataset(fo, s3_images, tmp_path):
    result = s3_images.order_by("path").all()
    dataset = result.to_voxel51_dataset("thresher-s3-test", savedir=tmp_path, progress=False)
    assert dataset.name == "thresher-s3-test"
    filepaths = sorted(dataset.values("filepath"))
    assert filepaths == sorted(str(tmp_path / "data" / path) for path in result.paths)
    assert all(pathlib.Path(p).exists() for p in filepaths)
    dataset.delete()


def test_visualize_launches_the_app_and_returns_its_session(fo, local_images):
    from tests.storage_endpoints import free_port

    session = local_images.order_by("path").all().visualize(remote=True, auto=False, port=free_port(), progress=False)
    try:
        assert isinstance(session, fo.Session)
        assert len(session.dataset) == IMAGES and session.dataset.has_sample_field("label")
    finally:
        session.close()
        session.dataset.delete()


def test_vector_fields_become_vector_fields(fo, local_images):
    paths = local_images.order_by("path").all().paths
    vectors = np.arange(IMAGES * 4, dtype=np.float32).reshape(IMAGES, 4)
    local_images.upload_vectors("emb", paths, vectors)
    dataset = local_images.order_by("path").all().to_voxel51_dataset(progress=False)
    assert isinstance(dataset.get_field_schema()["emb"], fo.VectorField)
    sample = dataset.match(fo.ViewField("thresher_path") == paths[2]).first()
    np.testing.assert_array_equal(sample.emb, vectors[2])
    dataset.delete()
