"""Metadata writes end to end: the context manager, dataframe uploads, deletes, and their atomicity."""

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pytest

from thresher import datasources
from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError, UnknownFieldError
from thresher.core.types import FieldType

UTC = dt.UTC
FILES = {"a.png": b"a", "b.png": b"bb", "c/d.png": b"ccc"}


@pytest.fixture
def ds(make_datasource):
    return make_datasource(FILES)


def values(ds, field: str) -> dict:
    frame = ds.select(field).all().dataframe
    return {path: (None if pd.isna(v) else v) for path, v in zip(frame["path"], frame[field])}


def stale_view(ds, client, field: str, value):
    """Another client writes ``field`` first, so ``ds``'s cached schema does not know its type."""
    other = datasources.get_datasource(id=ds.id, connection=client)
    with other.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("a.png", {field: value})


def test_metadata_context_writes_and_missing_values_leave_fields_alone(ds):
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata(["a.png", "b.png"], {"label": "cat", "n": 1})
        ctx.update_metadata(ds.get_datapoint("c/d.png"), {"label": "dog", "score": np.float32(0.5)})
    assert values(ds, "label") == {"a.png": "cat", "b.png": "cat", "c/d.png": "dog"}
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("a.png", {"label": None, "n": np.nan, "score": 2})
    assert values(ds, "label")["a.png"] == "cat" and values(ds, "n")["a.png"] == 1
    assert values(ds, "score") == {"a.png": 2.0, "b.png": None, "c/d.png": 0.5}
    assert ds.fields["score"] is FieldType.FLOAT


def test_metadata_for_a_new_path_creates_the_datapoint(ds):
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("virtual/x.json", {"label": "made"})
    assert ds.get_datapoint("virtual/x.json")["label"] == "made"
    assert ds.count() == len(FILES) + 1


def test_a_block_that_raises_writes_nothing(ds):
    with pytest.raises(KeyError):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"label": "cat"})
            raise KeyError("boom")
    assert "label" not in ds.fields


def test_a_request_the_service_rejects_writes_nothing(ds, client):
    stale_view(ds, client, "kind", 1)
    with pytest.raises(FieldTypeMismatchError, match="field 'kind' has type int; got string"):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("b.png", {"label": "fine"})
            ctx.update_metadata("c/d.png", {"kind": "not an int"})
    assert "label" not in ds.fields and values(ds, "kind")["c/d.png"] is None


def test_wrong_types_fail_in_the_client(ds):
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("a.png", {"n": 1, "flag": True})
    with pytest.raises(
        FieldTypeMismatchError, match=r"field 'n' has type int; got float value 1.5 \(not an integral number\)"
    ):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"n": 1.5})
    with pytest.raises(FieldTypeMismatchError, match="field 'flag' has type bool; got int"):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"flag": 0})
    with pytest.raises(FieldTypeMismatchError, match="list"):
        with ds.metadata_context(create_missing=True) as ctx:
            ctx.update_metadata("a.png", {"tags": ["x"]})


def every_dtype_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": ["a.png", "b.png", "c/d.png"],
            "i64": [1, 2, 3],
            "i8": np.array([1, -2, 3], dtype="int8"),
            "u16": np.array([1, 2, 65535], dtype="uint16"),
            "nullable_int": pd.array([1, None, 3], dtype="Int64"),
            "f64": [0.5, np.nan, 2.5],
            "f32": np.array([1.5, 2.5, np.nan], dtype="float32"),
            "nullable_float": pd.array([1.25, None, 2.0], dtype="Float64"),
            "b": [True, False, True],
            "nullable_bool": pd.array([True, None, False], dtype="boolean"),
            "s": ["x", "y", None],
            "object_str": pd.Series(["x", None, "z"], dtype=object),
            "cat": pd.Categorical(["u", "v", "u"]),
            "ts": pd.to_datetime(["2024-01-01 12:00", "2024-01-02 00:00", None]),
            "tz": pd.to_datetime(["2024-01-01 13:00", None, None]).tz_localize("Europe/Paris"),
            "date": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)],
            "dec": [decimal.Decimal("1.5"), None, decimal.Decimal("2")],
            "all_missing": [None, None, None],
        }
    )


def test_upload_every_pandas_dtype_and_read_it_back(ds):
    ds.upload_metadata_from_dataframe(every_dtype_frame(), create_missing=True)
    fields = ds.fields
    expected_types = {
        "i64": FieldType.INT,
        "i8": FieldType.INT,
        "u16": FieldType.INT,
        "nullable_int": FieldType.INT,
        "f64": FieldType.FLOAT,
        "f32": FieldType.FLOAT,
        "nullable_float": FieldType.FLOAT,
        "b": FieldType.BOOL,
        "nullable_bool": FieldType.BOOL,
        "s": FieldType.STRING,
        "object_str": FieldType.STRING,
        "cat": FieldType.STRING,
        "ts": FieldType.DATETIME,
        "tz": FieldType.DATETIME,
        "date": FieldType.DATETIME,
        "dec": FieldType.FLOAT,
    }
    assert {name: fields.get(name) for name in expected_types} == expected_types
    assert "all_missing" not in fields
    result = ds.order_by("path").all()
    a, b, c = (result[p] for p in ("a.png", "b.png", "c/d.png"))
    assert (a["i8"], b["i8"], c["u16"]) == (1, -2, 65535)
    assert (a["nullable_int"], b["nullable_int"]) == (1, None)
    assert (a["f64"], b["f64"], c["f32"]) == (0.5, None, None)
    assert (b["nullable_bool"], c["nullable_bool"]) == (None, False)
    assert (c["s"], b["object_str"], b["cat"]) == (None, None, "v")
    assert a["ts"] == dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert a["tz"] == dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert c["date"] == dt.datetime(2024, 1, 3, tzinfo=UTC)
    assert (a["dec"], b["dec"]) == (1.5, None)


def test_upload_path_column_by_name_or_index_and_new_paths(ds):
    frame = pd.DataFrame({"n": [1, 2], "file": ["a.png", "new/e.png"]})
    ds.upload_metadata_from_dataframe(frame, path_column="file", create_missing=True)
    ds.upload_metadata_from_dataframe(pd.DataFrame({"n": [3], "file": ["b.png"]}), path_column=1, create_missing=True)
    assert values(ds, "n") == {"a.png": 1, "b.png": 3, "c/d.png": None, "new/e.png": 2}


def test_upload_missing_values_leave_fields_alone_and_results_round_trip(ds):
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["a.png", "b.png"], "n": [1, 2]}), create_missing=True)
    ds.upload_metadata_from_dataframe(
        pd.DataFrame({"path": ["a.png", "b.png"], "n": [np.nan, 5.0]}), create_missing=True
    )
    assert values(ds, "n") == {"a.png": 1, "b.png": 5, "c/d.png": None}
    frame = ds.select("n").all().dataframe  # carries datapoint_id, which is not a field
    frame["n"] = frame["n"].fillna(0) * 10
    ds.upload_metadata_from_dataframe(frame, create_missing=True)
    assert values(ds, "n") == {"a.png": 10, "b.png": 50, "c/d.png": 0}


def test_upload_rejected_by_the_service_writes_nothing(ds, client):
    stale_view(ds, client, "kind", 1)
    frame = pd.DataFrame({"path": ["b.png", "c/d.png"], "label": ["x", "y"], "kind": ["s", "t"]})
    with pytest.raises(FieldTypeMismatchError, match="'kind'.*int.*string"):
        ds.upload_metadata_from_dataframe(frame, create_missing=True)
    assert "label" not in ds.fields


def test_upload_type_errors_fail_in_the_client(ds):
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["a.png"], "n": [1]}), create_missing=True)
    with pytest.raises(
        FieldTypeMismatchError, match=r"field 'n' has type int; got float \(the column has non-integral values\)"
    ):
        ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["a.png"], "n": [1.5]}), create_missing=True)
    with pytest.raises(FieldTypeMismatchError, match="column 'mixed'"):
        ds.upload_metadata_from_dataframe(
            pd.DataFrame({"path": ["a.png", "b.png"], "mixed": [1, "x"]}), create_missing=True
        )
    with pytest.raises(InvalidArgumentError, match="must hold strings"):
        ds.upload_metadata_from_dataframe(pd.DataFrame({"n": [1]}), create_missing=True)


def test_delete_metadata_is_versioned(ds):
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata(["a.png", "b.png", "c/d.png"], {"label": "x", "n": 1})
    before = dt.datetime.now(UTC)
    ds.delete_metadata(["a.png", "b.png"], fields="label")
    assert values(ds, "label") == {"a.png": None, "b.png": None, "c/d.png": "x"}
    assert values(ds, "n") == {"a.png": 1, "b.png": 1, "c/d.png": 1}
    assert values(ds.as_of(before), "label") == {"a.png": "x", "b.png": "x", "c/d.png": "x"}
    ds.delete_metadata(ds[ds["path"] == "c/d.png"].all())  # every field
    assert ds.get_datapoint("c/d.png")["n"] is None
    with pytest.raises(UnknownFieldError, match="nope"):
        ds.delete_metadata("a.png", ["nope"])


def test_delete_datapoints_takes_results_and_datapoints(ds):
    before = dt.datetime.now(UTC)
    ds.delete_datapoints(ds[ds["path"].startswith("c/")].all())
    assert set(ds.all().paths) == {"a.png", "b.png"}
    ds.delete_datapoints([ds.get_datapoint("a.png")])
    assert set(ds.all().paths) == {"b.png"}
    assert set(ds.as_of(before).all().paths) == set(FILES)


def test_define_fields(ds):
    defined = ds.define_fields({"label": "string", "rating": FieldType.FLOAT})
    assert defined["rating"] is FieldType.FLOAT and ds["rating"].type is FieldType.FLOAT
    with pytest.raises(FieldTypeMismatchError):
        ds.define_fields({"rating": FieldType.INT})


def test_blobs_are_stored_by_digest_and_compare_by_bytes_or_digest(ds):
    import hashlib

    ds.upload_metadata_from_dataframe(
        pd.DataFrame({"path": ["a.png", "b.png"], "thumb": [b"png-a", None]}), create_missing=True
    )
    with ds.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("c/d.png", {"thumb": b"png-c"})
    assert ds.fields["thumb"] is FieldType.BLOB
    digest = hashlib.sha256(b"png-c").hexdigest()
    assert values(ds, "thumb") == {"a.png": hashlib.sha256(b"png-a").hexdigest(), "b.png": None, "c/d.png": digest}
    assert set(ds[ds["thumb"] == b"png-a"].all().paths) == {"a.png"}
    assert set(ds[ds["thumb"] == digest].all().paths) == {"c/d.png"}
    assert set(ds[ds["thumb"].isin([b"png-a", b"png-c"])].all().paths) == {"a.png", "c/d.png"}
