"""Random dataframes and metadata dicts written through the client: stored exactly, or refused whole.

Each example writes new fields onto new datapoints whose paths are odd strings (unicode, spaces, "..",
a leading "/", very long). The oracle gives, per column or value, what a read must return, or the
exception class the write must raise; a refused write must leave the datasource as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import thresher
from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError

CASES = {"dataframes written": 0, "dataframes refused": 0, "dicts written": 0, "dicts refused": 0}
_examples = itertools.count()
HUGE = "h" * 200_000
UTC = dt.UTC


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts():
    yield
    print("\nwrite fuzzing: " + ", ".join(f"{count} {what}" for what, count in CASES.items()))


@pytest.fixture(scope="module")
def source(local_services, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-writes")
    conn = local_services.connect()
    ds = thresher.datasources.create_datasource("fuzz/writes", f"w{id(conn)}", folder, connection=conn)
    return ds.wait_until_ready(timeout=60, progress=False)


PATHS = st.sampled_from(
    [
        "plain",
        "with space",
        "ünï©ødé/ß",
        "emoji/🦀",
        "../up",
        "/leading/slash",
        "a/./b",
        "trailing/",
        "x" * 2000,
        "tab\there",
        "quote'\"",
    ]
) | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30)


def _paths(draw, rows: int) -> list[str]:
    example = next(_examples)
    return [f"{draw(PATHS)}#{example}.{row}" for row in range(rows)]


def _timestamp(value: pd.Timestamp | None):
    return None if value is None or pd.isna(value) else value.tz_convert(UTC).floor("us").to_pydatetime()


# Each maker: (draw, rows) -> (column, expected stored values or an exception class).
def _ints(dtype):
    info = np.iinfo(dtype)

    def make(draw, rows):
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=rows, max_size=rows))
        if any(v > 2**63 - 1 for v in values):
            return np.array(values, dtype=dtype), FieldTypeMismatchError
        return np.array(values, dtype=dtype), values

    return make


def _floats(dtype):
    def make(draw, rows):
        values = np.array(
            draw(st.lists(st.floats(width=32 if dtype == "float32" else 64), min_size=rows, max_size=rows)), dtype=dtype
        )
        return values, [None if math.isnan(v) else float(v) for v in values]

    return make


def _nullable(dtype, element):
    def make(draw, rows):
        values = draw(st.lists(st.none() | element, min_size=rows, max_size=rows))
        return pd.array(values, dtype=dtype), values

    return make


def _strings(dtype):
    def make(draw, rows):
        values = draw(st.lists(st.none() | st.text(max_size=40) | st.just(HUGE), min_size=rows, max_size=rows))
        return (pd.array(values, dtype=dtype) if dtype else pd.Series(values, dtype=object)), values

    return make


def _datetimes(tz):
    def make(draw, rows):
        values = draw(
            st.lists(
                st.none() | st.datetimes(dt.datetime(1700, 1, 1), dt.datetime(2200, 1, 1)), min_size=rows, max_size=rows
            )
        )
        index = pd.DatetimeIndex([pd.NaT if v is None else pd.Timestamp(v) for v in values])
        index = index.tz_localize(tz) if tz else index.tz_localize(None)
        expected = [_timestamp(v if tz else (v.tz_localize(UTC) if v is not pd.NaT else None)) for v in index]
        return index, expected

    return make


def _bytes(draw, rows):
    values = draw(
        st.lists(st.none() | st.binary(max_size=50) | st.just(b"\xff\xfe\x00 not utf-8"), min_size=rows, max_size=rows)
    )
    return pd.Series(values, dtype=object), [None if v is None else hashlib.sha256(v).hexdigest() for v in values]


def _categorical(draw, rows):
    values = draw(st.lists(st.sampled_from(["red", "green", "ü"]), min_size=rows, max_size=rows))
    return pd.Categorical(values), values


def _refused(make_column, error):
    def make(draw, rows):
        return make_column(draw, rows), error

    return make


COLUMNS = {
    **{name: _ints(name) for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")},
    "float32": _floats("float32"),
    "float64": _floats("float64"),
    "Int64": _nullable("Int64", st.integers(-(2**63), 2**63 - 1)),
    "Float64": _nullable("Float64", st.floats(allow_nan=False)),
    "boolean": _nullable("boolean", st.booleans()),
    "string": _strings("string"),
    "object-str": _strings(None),
    "datetime": _datetimes(None),
    "datetime-tz": _datetimes("Asia/Kolkata"),
    "category": _categorical,
    "bytes": _bytes,
    "timedelta": _refused(lambda draw, rows: pd.to_timedelta(range(rows), unit="s"), FieldTypeMismatchError),
    "mixed": _refused(
        lambda draw, rows: pd.Series([1, "one"] + [None] * (rows - 2), dtype=object), FieldTypeMismatchError
    ),
}


@st.composite
def frames(draw):
    rows = draw(st.integers(2, 6))
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=3))
    example = next(_examples)
    data, expected = {"path": _paths(draw, rows)}, {}
    for position, kind in enumerate(kinds):
        column, values = COLUMNS[kind](draw, rows)
        name = f"f{example}_{position}_{kind.replace('-', '_')}"
        data[name] = column
        expected[name] = values
    return pd.DataFrame(data), expected


def _stored(ds, paths: list[str]) -> dict[str, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = ds[ds["path"].isin(paths)].all().arrow
    return {row.pop("path"): row for row in table.to_pylist()}


def _same(got, want) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return got == want or (math.isinf(want) and got == want)
    return got == want


def _check_written(ds, paths, expected: dict[str, list]) -> None:
    stored = _stored(ds, paths)
    assert sorted(stored) == sorted(paths)
    for name, values in expected.items():
        for path, want in zip(paths, values):
            got = stored[path].get(name)
            assert _same(got, want), f"{name} at {path[:40]!r}: stored {got!r}, wrote {want!r}"


@pytest.mark.slow(reason="hypothesis, many examples")
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=frames())
def test_random_dataframes_are_stored_exactly_or_refused_whole(source, case):
    frame, expected = case
    paths = list(frame["path"])
    refusals = [v for v in expected.values() if isinstance(v, type)]
    if refusals:
        before = source.count()
        with pytest.raises(tuple(refusals)):
            source.upload_metadata_from_dataframe(frame, create_missing=True)
        assert source.count() == before, "a refused upload wrote datapoints"
        assert not set(expected) & set(source.fields), "a refused upload created fields"
        CASES["dataframes refused"] += 1
        return
    source.upload_metadata_from_dataframe(frame, create_missing=True)
    _check_written(source, paths, expected)
    CASES["dataframes written"] += 1


# Scalars for metadata dicts: (strategy, oracle). The oracle gives the stored value or an exception class.
SCALARS = [
    (st.integers(-(2**63), 2**63 - 1), lambda v: v),
    (st.integers(2**63, 2**70) | st.integers(-(2**70), -(2**63) - 1), lambda v: InvalidArgumentError),
    (st.floats(allow_nan=False), lambda v: v),
    (st.just(float("nan")) | st.just(pd.NaT) | st.just(pd.NA) | st.none() | st.just(np.nan), lambda v: None),
    (st.booleans(), lambda v: v),
    (st.text(max_size=30) | st.just(HUGE), lambda v: v),
    (st.just("bad \udcff surrogate"), lambda v: InvalidArgumentError),
    (st.integers(-100, 100).map(np.int16), lambda v: int(v)),
    (st.floats(allow_nan=False, width=32).map(np.float32), lambda v: float(v)),
    (st.booleans().map(np.bool_), lambda v: bool(v)),
    (st.datetimes(dt.datetime(1800, 1, 1), dt.datetime(2200, 1, 1), timezones=st.just(UTC)), lambda v: v),
    (st.just(dt.timedelta(seconds=3)), lambda v: InvalidArgumentError),
    (st.just({"a": 1}), lambda v: InvalidArgumentError),
    # A list or 1-D array of numbers is a vector (float32 elements); NaN or infinity in one is refused.
    (st.just([1, 2]), lambda v: [1.0, 2.0]),
    (
        st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=8).map(lambda v: np.array(v, np.float32)),
        lambda v: v.tolist(),
    ),
    (st.just(np.array([1.0, np.nan])) | st.just([1.0, float("inf")]), lambda v: InvalidArgumentError),
]


@st.composite
def dicts(draw):
    example = next(_examples)
    values, expected = {}, {}
    for position in range(draw(st.integers(1, 4))):
        strategy, oracle = draw(st.sampled_from(SCALARS))
        value = draw(strategy)
        name = f"d{example}_{position}"
        values[name], expected[name] = value, oracle(value)
    return _paths(draw, draw(st.integers(1, 3))), values, expected


@pytest.mark.slow(reason="hypothesis, many examples")
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=dicts())
def test_random_metadata_dicts_are_stored_exactly_or_refused_whole(source, case):
    paths, values, expected = case
    refusals = [v for v in expected.values() if isinstance(v, type)]
    if refusals:
        before = source.count()
        with pytest.raises(tuple(refusals)), source.metadata_context(create_missing=True) as context:
            context.update_metadata(paths, values)
        assert source.count() == before, "a refused write wrote datapoints"
        CASES["dicts refused"] += 1
        return
    with source.metadata_context(create_missing=True) as context:
        context.update_metadata(paths, values)
    if all(v is None for v in expected.values()):
        CASES["dicts written"] += 1
        return  # nothing to write: no values given
    _check_written(source, paths, {name: [want] * len(paths) for name, want in expected.items()})
    CASES["dicts written"] += 1


@pytest.mark.parametrize("path", ["nul/\x00", "bad/\udcff"])
def test_a_path_with_nul_or_not_utf8_is_refused_by_both_writers(source, path):
    before = source.count()
    with pytest.raises(InvalidArgumentError), source.metadata_context(create_missing=True) as context:
        context.update_metadata(path, {"ok": 1})
    with pytest.raises(InvalidArgumentError):
        source.upload_metadata_from_dataframe(
            pd.DataFrame({"path": pd.Series([path], dtype=object), "ok": [1]}), create_missing=True
        )
    with pytest.raises(InvalidArgumentError):
        source.upload_metadata_from_dataframe(
            pd.DataFrame({"path": [path.encode("utf-8", "surrogateescape")], "ok": [1]}), create_missing=True
        )
    with pytest.raises(InvalidArgumentError), source.metadata_context(create_missing=True) as context:
        context.update_metadata("bad/\udcff", {"ok": 1})
    with pytest.raises(InvalidArgumentError):
        source.upload_metadata_from_dataframe(pd.DataFrame({"path": [b"\xff\xfe"], "ok": [1]}), create_missing=True)
    assert source.count() == before
