"""Annotation fields through the client: written with metadata_context and dataframes, queried, saved."""

import datetime as dt

import pandas as pd
import pytest

from thresher.core import labels as L
from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError
from thresher.core.types import FieldType

FILES = {"a.png": b"a", "b.png": b"bb", "c.png": b"ccc"}
CAR = L.Detection("car", (0.1, 0.2, 0.3, 0.4), 0.9, attributes={"occluded": False})


@pytest.fixture
def ds(make_datasource):
    return make_datasource(FILES)


def test_metadata_context_writes_labels_and_results_give_them_back(ds):
    gt = L.Detections([CAR, CAR, L.Detection("person", (0.0, 0.0, 0.5, 0.5), 0.2)])
    with ds.metadata_context() as ctx:
        ctx.update_metadata("a.png", {"gt": gt, "cls": L.Classification("street")})
        ctx.update_metadata("b.png", {"gt": L.Detections([])})
    assert ds.fields["gt"] is FieldType.DETECTIONS and ds.fields["cls"] is FieldType.CLASSIFICATION
    result = ds.all()
    assert result["a.png"]["gt"] == gt and result["b.png"]["gt"] == L.Detections([])
    assert result["c.png"]["gt"] is None
    assert dict(zip(result.paths, result.labels("cls"))) == {
        "a.png": L.Classification("street"),
        "b.png": None,
        "c.png": None,
    }
    with pytest.raises(FieldTypeMismatchError, match="annotation:detections"):
        with ds.metadata_context() as ctx:
            ctx.update_metadata("c.png", {"gt": L.Classification("car")})


def test_dataframe_upload_of_label_objects(ds):
    frame = pd.DataFrame(
        {
            "path": ["a.png", "b.png"],
            "gt": [L.Detections([CAR]), None],
            "kp": [L.Keypoints([L.Keypoint("nose", ((0.5, 0.5),))]), None],
        }
    )
    ds.upload_metadata_from_dataframe(frame, path_column="path")
    result = ds.all()
    assert dict(zip(result.paths, result.labels("gt"))) == {"a.png": L.Detections([CAR]), "b.png": None, "c.png": None}
    assert result["a.png"]["kp"] == L.Keypoints([L.Keypoint("nose", ((0.5, 0.5),))])


def test_a_bad_box_rejects_the_upload_naming_the_datapoint(ds):
    frame = pd.DataFrame(
        {
            "path": ["a.png", "b.png"],
            "gt": [L.Detections([CAR]), L.Detections([L.Detection("car", (0.8, 0.8, 0.5, 0.1))])],
        }
    )
    with pytest.raises(InvalidArgumentError, match="'b.png'.*inside the image"):
        ds.upload_metadata_from_dataframe(frame, path_column="path")
    assert "gt" not in ds.fields


def test_object_queries_from_the_client_saved_and_as_of(ds):
    with ds.metadata_context() as ctx:
        ctx.update_metadata("a.png", {"gt": L.Detections([CAR] * 3), "split": "train"})
        ctx.update_metadata("b.png", {"gt": L.Detections([L.Detection("person", (0, 0, 1, 1), 0.4)]), "split": "val"})
        ctx.update_metadata("c.png", {"gt": L.Detections([]), "split": "train"})
    before = dt.datetime.now(dt.UTC)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("c.png", {"gt": L.Detections([CAR])})
    assert sorted(ds[ds["gt"].labels.contains("car")].all().paths) == ["a.png", "c.png"]
    assert sorted(ds[ds["gt"].count("car") >= 3].all().paths) == ["a.png"]
    assert sorted(ds[ds["gt"].count() == 0].as_of(before).all().paths) == ["c.png"]
    assert sorted(ds[ds["gt"].count() == 0].all().paths) == []
    assert ds[(ds["gt"].max_confidence("person") < 0.5) | (ds["split"] == "train")].count() == 3
    ds[ds["gt"].count("car") >= 1].save_dataset("with-cars")
    from thresher import datasets

    saved = datasets.get_dataset(ds.namespace, "with-cars", connection=ds.connection)
    assert sorted(saved.all().paths) == ["a.png", "c.png"]
    assert "count('car')" in repr(ds["gt"].count("car") >= 1)


def test_object_queries_on_other_fields_fail_in_the_client(ds):
    with ds.metadata_context() as ctx:
        ctx.update_metadata("a.png", {"n": 1, "seg": L.Segmentation(b"mask")})
    from thresher.core.errors import QueryError

    with pytest.raises(QueryError, match="objects to count"):
        ds["n"].count()
    with pytest.raises(QueryError, match="objects to count"):
        ds["seg"].labels.contains("x")


def test_an_annotation_field_compared_with_a_value_says_what_to_do(ds):
    with ds.metadata_context() as ctx:
        ctx.update_metadata("a.png", {"gt": L.Detections([CAR])})
    from thresher.core.errors import QueryError

    with pytest.raises(QueryError, match="count"):
        ds["gt"] == L.Detections([CAR])
    with pytest.raises(QueryError, match="count"):
        ds["gt"].isin([L.Detections([CAR])])
