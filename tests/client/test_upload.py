"""Preparing a DataFrame for upload: every pandas dtype to its field type, checks on whole columns."""

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError
from thresher.core.types import FieldType
from thresher.upload import prepare

UTC = dt.UTC


def known(types: dict):
    """The field-type lookup ``prepare`` takes, over a fixed schema."""
    return lambda names: types


def every_dtype() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": ["a", "b", "c"],
            "i64": [1, 2, 3],
            "i8": np.array([1, 2, 3], dtype="int8"),
            "u32": np.array([1, 2, 3], dtype="uint32"),
            "nullable_int": pd.array([1, None, 3], dtype="Int64"),
            "f32": np.array([1.5, np.nan, 2], dtype="float32"),
            "f16": np.array([1, 2, 3], dtype="float16"),
            "nullable_float": pd.array([1.5, None, 2], dtype="Float64"),
            "b": [True, False, True],
            "nullable_bool": pd.array([True, None, False], dtype="boolean"),
            "object_bool": pd.Series([True, None, False], dtype=object),
            "s": ["x", "y", None],
            "object_str": pd.Series(["x", None, "z"], dtype=object),
            "python_str": pd.Series(["x", None, "z"], dtype="string[python]"),
            "cat": pd.Categorical(["u", "v", "u"]),
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "ts_ns": pd.Series(pd.to_datetime(["2024-01-01 00:00:00.000000001"] * 3)),
            "tz": pd.to_datetime(["2024-01-01 01:00", None, None]).tz_localize("Europe/Paris"),
            "date": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)],
            "blob": [b"a", None, b"c"],
            "dec": [decimal.Decimal("1.5"), None, decimal.Decimal("2")],
            "all_missing": [None, None, None],
            "all_nan": [np.nan] * 3,
        }
    )


def test_every_pandas_dtype_maps_to_its_canonical_type():
    table, path = prepare(every_dtype(), None, known({}))
    assert path == "path"
    types = {f.name: f.type for f in table.schema}
    expected_kinds = {
        "path": FieldType.STRING,
        "i64": FieldType.INT,
        "i8": FieldType.INT,
        "u32": FieldType.INT,
        "nullable_int": FieldType.INT,
        "f32": FieldType.FLOAT,
        "f16": FieldType.FLOAT,
        "nullable_float": FieldType.FLOAT,
        "b": FieldType.BOOL,
        "nullable_bool": FieldType.BOOL,
        "object_bool": FieldType.BOOL,
        "s": FieldType.STRING,
        "object_str": FieldType.STRING,
        "python_str": FieldType.STRING,
        "cat": FieldType.STRING,
        "ts": FieldType.DATETIME,
        "ts_ns": FieldType.DATETIME,
        "tz": FieldType.DATETIME,
        "date": FieldType.DATETIME,
        "dec": FieldType.FLOAT,
    }
    for name, kind in expected_kinds.items():
        assert types[name] == kind.arrow_type, name
    assert types["blob"] == pa.binary()
    assert "all_missing" not in types and "all_nan" not in types  # nothing to write
    column = table.column
    assert column("nullable_int").to_pylist() == [1, None, 3]
    assert column("f32").to_pylist() == [1.5, None, 2.0]
    assert column("nullable_bool").to_pylist() == [True, None, False]
    assert column("cat").to_pylist() == ["u", "v", "u"]
    assert column("tz").to_pylist()[0] == dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert column("ts").to_pylist()[:2] == [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2)]
    assert column("date").to_pylist()[2] == dt.datetime(2024, 1, 3, tzinfo=UTC)
    assert column("blob").to_pylist() == [b"a", None, b"c"]


def test_columns_follow_the_types_fields_already_have():
    frame = pd.DataFrame({"path": ["a", "b"], "count": [1.0, np.nan], "ratio": [1, 2]})
    table, _ = prepare(frame, 0, known({"count": FieldType.INT, "ratio": FieldType.FLOAT}))
    assert table.schema.field("count").type == pa.int64() and table.column("count").to_pylist() == [1, None]
    assert table.schema.field("ratio").type == pa.float64() and table.column("ratio").to_pylist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "values, field_type, match",
    [
        ([1.5, 2.0], FieldType.INT, "field 'v' has type int; got float.*non-integral"),
        (["x", "y"], FieldType.INT, "field 'v' has type int; got string"),
        ([1, 2], FieldType.BOOL, "field 'v' has type bool; got int"),
        ([True, False], FieldType.INT, "field 'v' has type int; got bool"),
        ([1, 2], FieldType.DATETIME, "field 'v' has type datetime; got int"),
    ],
)
def test_a_column_of_the_wrong_type_names_field_expected_and_given(values, field_type, match):
    with pytest.raises(FieldTypeMismatchError, match=match):
        prepare(pd.DataFrame({"path": ["a", "b"], "v": values}), None, known({"v": field_type}))


def test_unconvertible_columns_are_named():
    with pytest.raises(FieldTypeMismatchError, match="column 'mixed'"):
        prepare(pd.DataFrame({"path": ["a", "b"], "mixed": [1, "x"]}), None, known({}))
    with pytest.raises(FieldTypeMismatchError, match="column 'delay'"):
        prepare(pd.DataFrame({"path": ["a"], "delay": pd.to_timedelta([1], unit="s")}), None, known({}))
    with pytest.raises(FieldTypeMismatchError, match="column 'big'"):
        prepare(pd.DataFrame({"path": ["a"], "big": np.array([2**64 - 1], dtype="uint64")}), None, known({}))


def test_path_column_by_name_index_or_first():
    frame = pd.DataFrame({"size": [1], "file": ["a.png"]})
    assert prepare(frame, "file", known({}))[1] == "file"
    table, name = prepare(frame, -1, known({}))
    assert name == "file" and table.column_names == ["file", "size"]
    with pytest.raises(InvalidArgumentError, match="must hold strings"):
        prepare(frame, None, known({}))
    with pytest.raises(InvalidArgumentError, match="no column named 'nope'"):
        prepare(frame, "nope", known({}))
    with pytest.raises(InvalidArgumentError, match="out of range"):
        prepare(frame, 5, known({}))
    with pytest.raises(InvalidArgumentError, match="has a missing path$"):
        prepare(pd.DataFrame({"path": ["a", None], "v": [1, 2]}), None, known({}))
    with pytest.raises(InvalidArgumentError, match="has 2 missing paths"):
        prepare(pd.DataFrame({"path": [None, "a", None], "v": [1, 2, 3]}), None, known({}))


def test_a_query_results_dataframe_uploads_back():
    frame = pd.DataFrame({"path": ["a"], "datapoint_id": [4], "size": [2]})
    table, _ = prepare(frame, None, known({"size": FieldType.INT}))
    assert table.column_names == ["path", "size"]
    with pytest.raises(InvalidArgumentError, match="reserved"):
        prepare(pd.DataFrame({"file": ["a"], "path": ["b"]}), "file", known({}))
    with pytest.raises(InvalidArgumentError, match="Duplicate|duplicate"):
        prepare(pd.DataFrame([["a", 1, 2]], columns=["path", "v", "v"]), None, known({}))


def test_arrow_input_and_nan_means_no_value():
    table, _ = prepare(pa.table({"path": ["a", "b"], "score": [float("nan"), 1.0]}), None, known({}))
    assert table.column("score").to_pylist() == [None, 1.0]
    batch = pa.RecordBatch.from_pydict({"path": ["a"], "score": [2.0]})
    assert prepare(batch, None, known({}))[0].num_rows == 1
