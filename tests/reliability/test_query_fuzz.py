"""Random filter trees, valid and not, against the metadata service, checked against pandas.

A valid tree must return exactly the rows pandas selects under Thresher's rule (a comparison on a
missing value is false; negation is two-valued). An invalid one must fail with INVALID_ARGUMENT or
NOT_FOUND naming the problem: never INTERNAL, a hang or a partial answer.
"""

from __future__ import annotations

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.core.types import to_proto_value
from thresher.v1 import common_pb2

ROWS = 60
rng = np.random.default_rng(7)
FRAME = pd.DataFrame(
    {
        "path": [f"d{i:03d}/{'x' if i % 3 else 'y'}.png" for i in range(ROWS)],
        "n": pd.array([None if i % 7 == 0 else int(v) for i, v in enumerate(rng.integers(-5, 6, ROWS))], dtype="Int64"),
        "m": pd.array([None if i % 5 == 0 else int(v) for i, v in enumerate(rng.integers(-5, 6, ROWS))], dtype="Int64"),
        "x": [np.nan if i % 6 == 0 else float(v) for i, v in enumerate(rng.normal(size=ROWS).round(1))],
        "flag": pd.array([None if i % 4 == 0 else bool(i % 2) for i in range(ROWS)], dtype="boolean"),
        "s": pd.array(
            [None if i % 8 == 0 else ["cat", "dog", "catalog", "hotdog", ""][i % 5] for i in range(ROWS)],
            dtype="string",
        ),
    }
)
KINDS = {"n": "int", "m": "int", "x": "float", "flag": "bool", "s": "string", "path": "string"}
ORDERED = {"eq": "EQ", "ne": "NE", "lt": "LT", "le": "LE", "gt": "GT", "ge": "GE"}


def _op(name: str) -> int:
    return getattr(common_pb2, f"COMPARISON_OPERATOR_{name.upper()}")


def _value_for(kind: str):
    if kind == "int":
        return st.integers(-6, 6)
    if kind == "float":
        return st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 1))
    if kind == "bool":
        return st.booleans()
    return st.sampled_from(["cat", "dog", "at", "", "d0", "x.png", "zz"])


@st.composite
def comparisons(draw):
    """(filter proto, pandas mask) for one valid comparison."""
    field = draw(st.sampled_from(sorted(KINDS)))
    kind = KINDS[field]
    column = FRAME[field]
    choices = ["eq", "ne", "is_null", "is_not_null", "isin"]
    if kind != "bool":
        choices += ["lt", "le", "gt", "ge"]
    if kind == "string":
        choices += ["contains", "startswith", "endswith"]
    if field in ("n", "m", "x"):
        choices += ["field"]
    op = draw(st.sampled_from(choices))
    comparison = common_pb2.Comparison(field=field)
    if op == "is_null":
        comparison.op = _op("is_null")
        return comparison, column.isna().to_numpy()
    if op == "is_not_null":
        comparison.op = _op("is_not_null")
        return comparison, column.notna().to_numpy()
    if op == "isin":
        values = draw(st.lists(_value_for(kind), max_size=6))
        comparison.op = _op("isin")
        comparison.values.values.extend(to_proto_value(v) for v in values)
        return comparison, (column.isin(values).fillna(False) & column.notna()).to_numpy(dtype=bool)
    if op == "field":
        other = draw(st.sampled_from(["n", "m", "x"]))
        name = draw(st.sampled_from(sorted(ORDERED)))
        comparison.op, comparison.other_field = _op(name), other
        result = getattr(column.astype("Float64"), f"__{name}__")(FRAME[other].astype("Float64"))
        return comparison, result.fillna(False).to_numpy(dtype=bool)
    value = draw(_value_for(kind))
    comparison.value.CopyFrom(to_proto_value(value))
    if op in ("contains", "startswith", "endswith"):
        comparison.op = _op(op)
        method = {
            "contains": lambda c: c.str.contains(value, regex=False),
            "startswith": lambda c: c.str.startswith(value),
            "endswith": lambda c: c.str.endswith(value),
        }[op]
        return comparison, method(column).fillna(False).to_numpy(dtype=bool)
    comparison.op = _op(op)
    result = getattr(column, f"__{op}__")(value)
    return comparison, (pd.Series(result).fillna(False).astype(bool) & column.notna()).to_numpy(dtype=bool)


def trees(depth: int = 0):
    leaf = comparisons().map(lambda pair: (common_pb2.Filter(comparison=pair[0]), pair[1]))
    if depth >= 4:
        return leaf

    @st.composite
    def node(draw):
        kind = draw(st.sampled_from(["leaf", "leaf", "all", "any", "not"]))
        if kind == "leaf":
            return draw(leaf)
        if kind == "not":
            child, mask = draw(trees(depth + 1))
            return common_pb2.Filter(negate=child), ~mask
        children = draw(st.lists(trees(depth + 1), min_size=1, max_size=3))
        masks = [m for _, m in children]
        combined = np.logical_and.reduce(masks) if kind == "all" else np.logical_or.reduce(masks)
        filters = common_pb2.FilterList(filters=[f for f, _ in children])
        return (common_pb2.Filter(all_of=filters) if kind == "all" else common_pb2.Filter(any_of=filters)), combined

    return node()


@pytest.fixture(scope="module")
def loaded(metadata_server):
    from tests.metadata.conftest import MetadataHelper
    from thresher.core.transport import open_channel
    from thresher.v1 import metadata_service_pb2_grpc

    channel = open_channel(metadata_server[0])
    helper = MetadataHelper(metadata_service_pb2_grpc.MetadataServiceStub(channel), "fuzz/queries")
    name = f"rows-{id(channel)}"
    source = helper.datasource(name)
    helper.upload(source.id, pa.Table.from_pandas(FRAME, preserve_index=False))
    yield helper, source.id
    channel.close()


CASES = {"valid": 0, "invalid": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts():
    yield
    print(f"\nquery fuzzing ran {CASES['valid']} valid and {CASES['invalid']} invalid trees")


@pytest.mark.slow  # 120 random trees: the search is the point; each operator's own tests stay quick
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(tree=trees())
def test_random_valid_trees_match_pandas(loaded, tree):
    helper, datasource_id = loaded
    filter_, mask = tree
    got = sorted(helper.query(datasource_id, filter_)["path"])
    CASES["valid"] += 1
    assert got == sorted(FRAME.loc[mask, "path"])


INVALID = st.one_of(
    st.builds(
        lambda f: common_pb2.Filter(comparison=common_pb2.Comparison(field=f, op=_op("eq"), value=to_proto_value(1))),
        st.text(min_size=1, max_size=20).filter(lambda t: t not in KINDS and t != "datapoint_id"),
    ),
    st.builds(
        lambda v: common_pb2.Filter(comparison=common_pb2.Comparison(field="n", op=_op("eq"), value=to_proto_value(v))),
        st.one_of(st.text(max_size=5), st.booleans(), st.binary(max_size=5)),
    ),
    st.builds(
        lambda op: common_pb2.Filter(
            comparison=common_pb2.Comparison(field="flag", op=_op(op), value=to_proto_value(True))
        ),
        st.sampled_from(["lt", "ge", "contains"]),
    ),
    st.builds(
        lambda o: common_pb2.Filter(comparison=common_pb2.Comparison(field="n", op=o, value=to_proto_value(1))),
        st.integers(13, 2**31 - 1),
    ),
    st.just(common_pb2.Filter(any_of=common_pb2.FilterList())),
    st.integers(65, 90).map(lambda depth: _nested(depth)),
)


def _nested(depth: int) -> common_pb2.Filter:
    filter_ = common_pb2.Filter(comparison=common_pb2.Comparison(field="n", op=_op("is_null")))
    for _ in range(depth):
        filter_ = common_pb2.Filter(negate=filter_)
    return filter_


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filter_=INVALID)
def test_invalid_trees_fail_with_a_precise_status(loaded, filter_):
    helper, datasource_id = loaded
    with pytest.raises(grpc.RpcError) as excinfo:
        helper.query(datasource_id, filter_)
    CASES["invalid"] += 1
    assert excinfo.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (
        excinfo.value.details()
    )
    assert excinfo.value.details()


@pytest.mark.slow  # 400,000 values: the size is the point
def test_a_huge_isin_list_is_answered(loaded):
    helper, datasource_id = loaded
    values = list(range(-200_000, 200_000))
    filter_ = common_pb2.Filter(
        comparison=common_pb2.Comparison(
            field="n", op=_op("isin"), values=common_pb2.ValueList(values=[to_proto_value(v) for v in values])
        )
    )
    assert sorted(helper.query(datasource_id, filter_)["path"]) == sorted(FRAME.loc[FRAME["n"].notna(), "path"])


# Injection: values built to break naive quoting (quotes, backslashes, dollar quotes, comments, statement
# separators, E'' prefixes, unicode) must select exactly what pandas selects, and leave the table as it was.
# PostgreSQL renders them as literals (its bulk read path binds nothing), DuckDB binds them.
PIECES = [
    "'",
    "''",
    "\\",
    "\\'",
    '"',
    "$$",
    "$1$",
    "--",
    "/*",
    "*/",
    ";",
    "E'",
    "\n",
    "é",
    "😀",
    "{",
    "}",
    ",",
    "NULL",
    " ",
    "a",
    "'); DROP TABLE datasources; --",
    "' OR '1'='1",
    "\\'; SELECT 1; --",
]
NASTY = st.lists(
    st.one_of(st.sampled_from(PIECES), st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
    max_size=8,
).map("".join)
STORED = [
    "plain",
    "it's",
    "back\\slash",
    "\\'",
    "$$dollar$$",
    "-- comment",
    "semi;colon",
    "E'x'",
    "ünï😀",
    "' OR '1'='1",
    'a"b',
    "{1,2}",
    "",
]
INJECTION_FRAME = pd.DataFrame(
    {"path": [f"p{i:02d}/{text}" for i, text in enumerate(STORED)], "s": pd.array(STORED, dtype="string")}
)
STRING_OPS = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "ge": lambda c, v: c >= v,
    "contains": lambda c, v: c.str.contains(v, regex=False),
    "startswith": lambda c, v: c.str.startswith(v),
    "endswith": lambda c, v: c.str.endswith(v),
}


@pytest.fixture(scope="module")
def injection_target(loaded):
    helper, _ = loaded
    source = helper.datasource(f"injection-{id(helper)}")
    helper.upload(source.id, pa.Table.from_pandas(INJECTION_FRAME, preserve_index=False))
    return helper, source.id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(NASTY, st.sampled_from(STORED)),
    op=st.sampled_from(sorted(STRING_OPS) + ["isin"]),
    field=st.sampled_from(["s", "path"]),
    extra=st.lists(NASTY, max_size=3),
)
def test_injection_values_match_pandas_and_leave_the_table_intact(loaded, injection_target, value, op, field, extra):
    helper, datasource_id = injection_target
    column = INJECTION_FRAME[field]
    if op == "isin":
        values = [value, *extra]
        comparison = common_pb2.Comparison(
            field=field, op=_op("isin"), values=common_pb2.ValueList(values=[to_proto_value(v) for v in values])
        )
        mask = column.isin(values)
    else:
        comparison = common_pb2.Comparison(field=field, op=_op(op), value=to_proto_value(value))
        mask = STRING_OPS[op](column, value)
    got = sorted(helper.query(datasource_id, common_pb2.Filter(comparison=comparison))["path"])
    assert got == sorted(INJECTION_FRAME.loc[mask.fillna(False).to_numpy(dtype=bool), "path"])
    # Nothing was executed beside the query: this table and the fuzzing table next to it are whole.
    whole = helper.query(datasource_id).sort_values("path").reset_index(drop=True)
    assert whole["path"].tolist() == sorted(INJECTION_FRAME["path"])
    assert dict(zip(whole["path"], whole["s"])) == dict(zip(INJECTION_FRAME["path"], INJECTION_FRAME["s"]))
    main_helper, main_id = loaded
    assert len(main_helper.query(main_id)) == ROWS


def test_a_nul_in_a_value_is_refused(injection_target):
    helper, datasource_id = injection_target
    comparison = common_pb2.Comparison(field="s", op=_op("eq"), value=to_proto_value("a\x00'"))
    filter_ = common_pb2.Filter(comparison=comparison)
    with pytest.raises(grpc.RpcError) as excinfo:
        helper.query(datasource_id, filter_)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "NUL" in excinfo.value.details()
