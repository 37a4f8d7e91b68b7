"""Queries end to end through the real services: every operator against Python's own evaluation."""

import datetime as dt
import os
import warnings

import pandas as pd
import pytest

from thresher import datasources
from thresher.core.errors import FieldTypeMismatchError, NotFoundError, QueryError, UnknownFieldError
from thresher.core.types import FieldType

UTC = dt.UTC


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 1, n, tzinfo=UTC)


# The metadata of each datapoint; an absent key is a missing value.
ROWS = {
    "a0.png": {"label": "cat", "n": 0, "score": 0.5, "flag": True, "when": day(1), "low": 0},
    "a1.png": {"label": "dog", "n": 1, "score": 1.5, "flag": False, "when": day(2), "low": 5},
    "a2.png": {"label": "cat", "n": 2, "flag": True, "when": day(3), "low": 2},
    "a3.png": {"label": "bird", "n": 3, "score": 3.5},
    "b4.png": {"n": 4, "score": 4.5, "flag": False, "when": day(5), "low": 1},
    "b5.png": {"label": "catfish", "n": 5, "score": 0.1, "flag": True, "when": day(6)},
    "sub/c6.png": {"label": "dogfish", "score": 6.0, "flag": False, "when": day(7), "low": 9},
    "sub/c7.png": {"label": "Cat", "n": 7, "score": 7.0, "when": day(8)},
}


@pytest.fixture(scope="module")
def ds(local_services, tmp_path_factory):
    connection = local_services.connect()
    folder = tmp_path_factory.mktemp("query-data")
    for path in ROWS:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(path.encode())
    ds = datasources.get_or_create(f"e2e/queries-{os.getpid()}", "images", folder, connection=connection)
    ds.wait_until_ready(timeout=60, progress=False)
    with ds.metadata_context(create_missing=True) as ctx:
        for path, values in ROWS.items():
            ctx.update_metadata(path, values)
    return ds


def paths(view) -> set[str]:
    return set(view.all().paths)


def where(predicate) -> set[str]:
    """The rows where ``predicate`` holds; a predicate sees None for a missing value."""

    class Row(dict):
        def __missing__(self, key):
            return None

    return {path for path, values in ROWS.items() if predicate(Row(values))}


def has(value) -> bool:
    return value is not None


CASES = [
    ("eq", lambda d: d["label"] == "cat", lambda r: r["label"] == "cat"),
    ("ne", lambda d: d["label"] != "cat", lambda r: has(r["label"]) and r["label"] != "cat"),
    ("lt", lambda d: d["n"] < 3, lambda r: has(r["n"]) and r["n"] < 3),
    ("le", lambda d: d["n"] <= 3, lambda r: has(r["n"]) and r["n"] <= 3),
    ("gt", lambda d: d["score"] > 3, lambda r: has(r["score"]) and r["score"] > 3),
    ("ge", lambda d: d["score"] >= 3.5, lambda r: has(r["score"]) and r["score"] >= 3.5),
    ("reflected", lambda d: 3 < d["n"], lambda r: has(r["n"]) and r["n"] > 3),
    ("int field, float value", lambda d: d["n"] > 2.5, lambda r: has(r["n"]) and r["n"] > 2.5),
    ("int field == integral float", lambda d: d["n"] == 2.0, lambda r: r["n"] == 2),
    ("bool", lambda d: d["flag"] == True, lambda r: r["flag"] is True),  # noqa: E712
    ("bool ne", lambda d: d["flag"] != True, lambda r: r["flag"] is False),  # noqa: E712
    ("datetime", lambda d: d["when"] >= day(5), lambda r: has(r["when"]) and r["when"] >= day(5)),
    (
        "naive datetime is UTC",
        lambda d: d["when"] < dt.datetime(2024, 1, 3),
        lambda r: has(r["when"]) and r["when"] < day(3),
    ),
    ("isin", lambda d: d["label"].isin(["cat", "bird"]), lambda r: r["label"] in ("cat", "bird")),
    ("isin ints", lambda d: d["n"].isin([1, 5, 99]), lambda r: r["n"] in (1, 5)),
    ("isin empty", lambda d: d["n"].isin([]), lambda r: False),
    ("contains", lambda d: d["label"].contains("fish"), lambda r: has(r["label"]) and "fish" in r["label"]),
    ("startswith", lambda d: d["label"].startswith("cat"), lambda r: has(r["label"]) and r["label"].startswith("cat")),
    ("endswith", lambda d: d["label"].endswith("g"), lambda r: has(r["label"]) and r["label"].endswith("g")),
    ("is_null", lambda d: d["score"].is_null(), lambda r: r["score"] is None),
    ("is_not_null", lambda d: d["label"].is_not_null(), lambda r: r["label"] is not None),
    ("field < field", lambda d: d["low"] < d["n"], lambda r: has(r["low"]) and has(r["n"]) and r["low"] < r["n"]),
    (
        "int field vs float field",
        lambda d: d["n"] >= d["score"],
        lambda r: has(r["n"]) and has(r["score"]) and r["n"] >= r["score"],
    ),
    (
        "and",
        lambda d: (d["label"] == "cat") & (d["flag"] == True),  # noqa: E712
        lambda r: r["label"] == "cat" and r["flag"] is True,
    ),
    (
        "or",
        lambda d: (d["n"] < 1) | (d["score"] > 6),
        lambda r: (has(r["n"]) and r["n"] < 1) or (has(r["score"]) and r["score"] > 6),
    ),
    ("not is two-valued", lambda d: ~(d["n"] > 2), lambda r: not (has(r["n"]) and r["n"] > 2)),
    (
        "not of and",
        lambda d: ~((d["n"] > 1) & d["label"].startswith("c")),
        lambda r: not (has(r["n"]) and r["n"] > 1 and has(r["label"]) and r["label"].startswith("c")),
    ),
    (
        "nested",
        lambda d: ((d["n"] < 2) | (d["n"] > 4)) & ~d["flag"].is_null(),
        lambda r: has(r["n"]) and (r["n"] < 2 or r["n"] > 4) and r["flag"] is not None,
    ),
]


@pytest.mark.parametrize("build, expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_operator_matches_python(ds, build, expect):
    assert paths(ds[build(ds)]) == where(expect)


def test_path_filters(ds):
    assert paths(ds[ds["path"].startswith("sub/")]) == {"sub/c6.png", "sub/c7.png"}
    assert paths(ds[ds["path"] == "a1.png"]) == {"a1.png"}
    by_id = ds.order_by(ds["datapoint_id"].desc()).all().dataframe["datapoint_id"].tolist()
    assert by_id == sorted(by_id, reverse=True)
    assert len(ds[ds["datapoint_id"] > by_id[2]].all()) == 2


def test_views_accumulate_filters_and_columns_belong_to_the_datasource(ds):
    cats = ds[ds["label"].startswith("cat")]
    flagged = cats[ds["flag"] == True]  # noqa: E712
    assert paths(cats) == {"a0.png", "a2.png", "b5.png"}
    assert paths(flagged) == {"a0.png", "a2.png", "b5.png"}
    assert paths(cats[cats["n"] > 1]) == {"a2.png", "b5.png"}
    assert len(ds.all()) == len(ROWS)  # the original view is unchanged


def test_select_order_limit_head_count(ds):
    result = ds[ds["n"].is_not_null()].select("n", ds["label"]).order_by(ds["n"].desc()).limit(3).all()
    assert list(result.dataframe.columns) == ["path", "datapoint_id", "n", "label"]
    assert result.dataframe["n"].tolist() == [7, 5, 4]
    assert result.fields == {"n": FieldType.INT, "label": FieldType.STRING}
    ordered = ds.order_by("label", "n").select("label").all().dataframe
    labels = [x for x in ordered["label"].tolist() if isinstance(x, str)]
    assert labels == sorted(labels)
    assert len(ds.head(2)) == 2 and len(ds.head()) == len(ROWS)
    assert ds.count() == len(ROWS)
    assert ds[ds["label"] == "cat"].count() == 2
    assert ds.limit(3).count() == 3


def test_result_objects(ds):
    result = ds.order_by("path").all()
    frame = result.dataframe
    assert isinstance(frame, pd.DataFrame) and frame["path"].tolist() == sorted(ROWS)
    first = result["a0.png"]
    assert first["label"] == "cat" and first["when"] == day(1) and first.metadata["score"] == 0.5
    assert result["a3.png"]["flag"] is None
    assert [dp.path for dp in result] == sorted(ROWS)
    url = first.download_url
    assert url.startswith("file:///") and os.path.exists(url[len("file://") :])
    assert result.arrow.schema.field("n").metadata[b"thresher.type"] == b"int"
    assert {dp.datapoint_id for dp in result.entries} == set(frame["datapoint_id"])


def test_get_datapoint(ds):
    point = ds.get_datapoint("sub/c7.png")
    assert point.path == "sub/c7.png" and point["n"] == 7
    with pytest.raises(NotFoundError, match="nope.png"):
        ds.get_datapoint("nope.png")


def test_fields_are_the_schema(ds):
    fields = ds.fields
    assert {name: fields[name] for name in ("label", "n", "score", "flag", "when", "low")} == {
        "label": FieldType.STRING,
        "n": FieldType.INT,
        "score": FieldType.FLOAT,
        "flag": FieldType.BOOL,
        "when": FieldType.DATETIME,
        "low": FieldType.INT,
    }


def test_misuse_fails_in_the_client(ds):
    with pytest.raises(UnknownFieldError, match=r"no field 'nope'; its fields are: .*label"):
        ds["nope"]
    with pytest.raises(FieldTypeMismatchError, match="field 'n' has type int; got string"):
        ds["n"] == "3"
    with pytest.raises(FieldTypeMismatchError, match="field 'flag' has type bool; got int"):
        ds["flag"] == 1
    with pytest.raises(QueryError, match="missing parentheses"):
        ds["n"] > 5 & ds["score"] == 5
    with pytest.raises(QueryError, match="no truth value"):
        ds["n"] > 1 and ds["score"] < 2
    with pytest.raises(QueryError, match="no truth value"):
        1 < ds["n"] < 5
    with pytest.raises(QueryError, match="isin"):
        "cat" in ds["label"]


def test_unknown_field_refreshes_once_to_see_another_clients_field(ds, local_services):
    other = datasources.get_datasource(id=ds.id, connection=local_services.connect())
    stale = ds[ds["n"] > 0]
    with other.metadata_context(create_missing=True) as ctx:
        ctx.update_metadata("a0.png", {"added_later": 1.5})
    assert stale["added_later"].type is FieldType.FLOAT
    assert paths(stale[stale["added_later"] > 1]) == set()  # a0 has n == 0
    assert paths(ds[ds["added_later"] > 1]) == {"a0.png"}


def test_no_warning_once_ready(ds):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.all()
