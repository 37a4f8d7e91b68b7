"""QueryResult and Datapoint over a result table."""

import datetime as dt

import pyarrow as pa
import pytest

from thresher.core.types import SCAN_STATE_METADATA_KEY, TYPE_METADATA_KEY, FieldType
from thresher.results import Datapoint, QueryResult, download_url, paths_of, register_url_builder

UTC = dt.UTC


def result_table() -> pa.Table:
    schema = pa.schema(
        [
            pa.field("path", pa.string()),
            pa.field("datapoint_id", pa.int64()),
            pa.field("size", pa.int64(), metadata={TYPE_METADATA_KEY: b"int"}),
            pa.field("taken", pa.timestamp("us", tz="UTC"), metadata={TYPE_METADATA_KEY: b"datetime"}),
        ],
        metadata={SCAN_STATE_METADATA_KEY: b"ready"},
    )
    return pa.table(
        {
            "path": ["a/b c.png", "d.png"],
            "datapoint_id": [1, 2],
            "size": [3, None],
            "taken": [dt.datetime(2024, 1, 1, tzinfo=UTC), None],
        },
        schema=schema,
    )


def test_result_views():
    result = QueryResult(result_table(), "file:///data/my%20set")
    assert len(result) == 2 and result.arrow.num_rows == 2
    assert list(result.dataframe.columns) == ["path", "datapoint_id", "size", "taken"]
    assert result.fields == {"size": FieldType.INT, "taken": FieldType.DATETIME}
    assert result.scan_state == "ready"
    first = result["a/b c.png"]
    assert first == Datapoint("a/b c.png", 1, {"size": 3, "taken": dt.datetime(2024, 1, 1, tzinfo=UTC)})
    assert first["size"] == 3 and result[1]["size"] is None and result[1].get("size", 0) == 0
    assert [dp.path for dp in result] == ["a/b c.png", "d.png"] == result.paths
    assert "d.png" in result and "x.png" not in result
    assert first.download_url == "file:///data/my%20set/a/b%20c.png"
    with pytest.raises(KeyError, match="x.png"):
        result["x.png"]


def test_download_url_hook_by_scheme():
    assert download_url("file:///data/", "a b.png") == "file:///data/a%20b.png"
    assert download_url("images", "a.png") is None  # a repository path: the flight URL serves it
    register_url_builder("test", lambda uri, path: f"https://proxy/{path}")
    assert download_url("test://x", "a.png") == "https://proxy/a.png"


def test_paths_of_accepts_every_kind_of_reference():
    result = QueryResult(result_table())
    assert paths_of("a") == ["a"]
    assert paths_of(result) == ["a/b c.png", "d.png"]
    assert paths_of([result[0], "x"]) == ["a/b c.png", "x"]
    assert paths_of(result[1]) == ["d.png"]


def test_annotation_columns_become_labels_whether_typed_by_metadata_or_by_shape():
    # Datapoints skip reading field types when no column can be an annotation; each way one can be
    # (a nested type, with or without the metadata that names it) still comes back as a label.
    from thresher.core import labels

    classification = labels.ARROW_TYPES[labels.CLASSIFICATION]
    value = [{"label": "cat", "confidence": 0.5}]
    tagged = pa.field("tag", classification, metadata={TYPE_METADATA_KEY: b"annotation:classification"})
    for field in (tagged, pa.field("tag", classification)):
        schema = pa.schema([pa.field("path", pa.string()), pa.field("datapoint_id", pa.int64()), field])
        table = pa.table({"path": ["a.png"], "datapoint_id": [1], "tag": value}, schema=schema)
        assert QueryResult(table)[0]["tag"] == QueryResult(table).labels("tag")[0]
        assert not isinstance(QueryResult(table)[0]["tag"], dict)
    assert QueryResult(result_table())[0].metadata == {"size": 3, "taken": dt.datetime(2024, 1, 1, tzinfo=UTC)}
