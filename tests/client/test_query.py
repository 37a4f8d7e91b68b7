"""The expression builder: what each operator compiles to, and every misuse failing at once."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from thresher.core.errors import FieldTypeMismatchError, InvalidArgumentError, QueryError
from thresher.core.types import FieldType
from thresher.query import Column, Field, QuerySpec
from thresher.v1 import common_pb2

Op = common_pb2.ComparisonOperator
UTC = dt.UTC

size = Column("size", FieldType.INT, 7)
score = Column("score", FieldType.FLOAT, 7)
label = Column("label", FieldType.STRING, 7)
flag = Column("flag", FieldType.BOOL, 7)
taken = Column("taken", FieldType.DATETIME, 7)
thumb = Column("thumb", FieldType.BLOB, 7)


def comparison(expression) -> common_pb2.Comparison:
    proto = expression.to_proto()
    assert proto.WhichOneof("node") == "comparison"
    return proto.comparison


@pytest.mark.parametrize(
    "build, op",
    [
        (lambda: size == 3, Op.COMPARISON_OPERATOR_EQ),
        (lambda: size != 3, Op.COMPARISON_OPERATOR_NE),
        (lambda: size < 3, Op.COMPARISON_OPERATOR_LT),
        (lambda: size <= 3, Op.COMPARISON_OPERATOR_LE),
        (lambda: size > 3, Op.COMPARISON_OPERATOR_GT),
        (lambda: size >= 3, Op.COMPARISON_OPERATOR_GE),
        (lambda: 3 < size, Op.COMPARISON_OPERATOR_GT),  # Python reflects the comparison
        (lambda: 3 >= size, Op.COMPARISON_OPERATOR_LE),
    ],
)
def test_comparison_operators_compile_to_their_op(build, op):
    compiled = comparison(build())
    assert (compiled.field, compiled.op, compiled.value.int_value) == ("size", op, 3)


def test_string_operators():
    for method, op in [
        ("contains", Op.COMPARISON_OPERATOR_CONTAINS),
        ("startswith", Op.COMPARISON_OPERATOR_STARTSWITH),
        ("endswith", Op.COMPARISON_OPERATOR_ENDSWITH),
    ]:
        compiled = comparison(getattr(label, method)("ca"))
        assert (compiled.field, compiled.op, compiled.value.string_value) == ("label", op, "ca")


def test_null_tests_have_no_operand():
    for expression, op in [
        (score.is_null(), Op.COMPARISON_OPERATOR_IS_NULL),
        (score.is_not_null(), Op.COMPARISON_OPERATOR_IS_NOT_NULL),
    ]:
        compiled = comparison(expression)
        assert compiled.op == op and compiled.WhichOneof("operand") is None


def test_isin_takes_any_iterable_of_checked_values():
    compiled = comparison(size.isin(np.array([1, 2, 3])))
    assert compiled.op == Op.COMPARISON_OPERATOR_ISIN
    assert [v.int_value for v in compiled.values.values] == [1, 2, 3]
    assert list(comparison(label.isin({"cat"})).values.values) == [common_pb2.Value(string_value="cat")]
    assert len(comparison(label.isin([])).values.values) == 0
    assert [v.int_value for v in comparison(size.isin(pd.Series([4, 5]))).values.values] == [4, 5]


def test_field_to_field_comparison():
    compiled = comparison(size < score)
    assert (compiled.field, compiled.op, compiled.other_field) == ("size", Op.COMPARISON_OPERATOR_LT, "score")


def test_values_are_encoded_by_kind():
    assert comparison(score > 1).value == common_pb2.Value(int_value=1)  # int vs float is allowed
    assert comparison(size == 2.5).value == common_pb2.Value(float_value=2.5)
    assert comparison(size == np.int32(4)).value == common_pb2.Value(int_value=4)
    assert comparison(flag == np.bool_(True)).value == common_pb2.Value(bool_value=True)
    naive = comparison(taken >= dt.datetime(2024, 1, 2, 3, 4, 5)).value.datetime_value
    assert naive.ToDatetime(tzinfo=UTC) == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    paris = dt.timezone(dt.timedelta(hours=1))
    aware = comparison(taken < pd.Timestamp("2024-01-02 01:00", tz=paris)).value.datetime_value
    assert aware.ToDatetime(tzinfo=UTC) == dt.datetime(2024, 1, 2, 0, 0, tzinfo=UTC)


def test_blob_fields_compare_digests():
    digest = "ab" * 32
    assert comparison(thumb == digest).value.string_value == digest
    import hashlib

    assert comparison(thumb == b"png").value.string_value == hashlib.sha256(b"png").hexdigest()


def test_and_or_not_compile_to_a_flat_tree():
    tree = ((size > 1) & (score < 2) & label.contains("x")).to_proto()
    assert tree.WhichOneof("node") == "all_of" and len(tree.all_of.filters) == 3
    tree = ((size > 1) | (score < 2) | flag.is_null()).to_proto()
    assert tree.WhichOneof("node") == "any_of" and len(tree.any_of.filters) == 3
    tree = (~((size > 1) & (score < 2)) | (label == "a")).to_proto()
    assert tree.WhichOneof("node") == "any_of"
    negated = tree.any_of.filters[0]
    assert negated.WhichOneof("node") == "negate" and negated.negate.WhichOneof("node") == "all_of"
    mixed = ((size > 1) & ((score < 2) | (label == "a"))).to_proto()
    assert [f.WhichOneof("node") for f in mixed.all_of.filters] == ["comparison", "any_of"]


def test_order_keys():
    assert size.desc().to_proto() == common_pb2.OrderBy(field="size", descending=True)
    assert size.asc().to_proto() == common_pb2.OrderBy(field="size", descending=False)


def test_repr_reads_like_the_code():
    assert repr((size > 1) & ~label.startswith("a")) == "((ds['size'] > 1) & ~ds['label'].startswith('a'))"


# -- misuse -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "misuse",
    [
        lambda: (size > 1) and (score < 2),
        lambda: (size > 1) or (score < 2),
        lambda: not (size > 1),
        lambda: bool(size > 1),
        lambda: 1 < size < 5,
        lambda: size == score == 3,
        lambda: bool(size),
        lambda: size and score,
    ],
)
def test_python_boolean_logic_is_refused(misuse):
    with pytest.raises(QueryError, match=r"& \(and\), \| \(or\) and ~ \(not\)"):
        misuse()


def test_if_on_a_filter_is_refused():
    with pytest.raises(QueryError, match="no truth value"):
        if size > 1:
            pass


@pytest.mark.parametrize("misuse", [lambda: 3 in size, lambda: "cat" in label, lambda: "x" in (size > 1)])
def test_in_is_refused(misuse):
    with pytest.raises(QueryError, match=r"isin\(\[\.\.\.\]\).*contains"):
        misuse()


@pytest.mark.parametrize(
    "misuse",
    [
        lambda: size > 5 & score == 5,
        lambda: size > 5 | score == 5,
        lambda: size > 5 & (score == 5),
        lambda: size == 1 | (score == 5),
        lambda: True & (size > 1),
    ],
)
def test_missing_parentheses_are_refused(misuse):
    with pytest.raises(QueryError, match="missing parentheses"):
        misuse()


def test_a_non_filter_on_the_right_of_and_is_refused():
    with pytest.raises(QueryError, match="missing parentheses"):
        (size > 1) & 3
    with pytest.raises(QueryError, match="is not a filter"):
        (size > 1) | flag
    with pytest.raises(QueryError, match="is not a filter"):
        ~flag
    with pytest.raises(QueryError, match="is not a filter"):
        flag & (size > 1)


@pytest.mark.parametrize(
    "column, value, given",
    [
        (size, "3", "string"),
        (size, True, "bool"),
        (score, False, "bool"),
        (flag, 1, "int"),
        (label, 3, "int"),
        (taken, "2024-01-01", "string"),
        (size, dt.datetime(2024, 1, 1), "datetime"),
    ],
)
def test_wrong_value_type_names_field_expected_and_given(column, value, given):
    with pytest.raises(
        FieldTypeMismatchError, match=f"field '{column.name}' has type {column.type.value}; got {given}"
    ):
        column == value


def test_wrong_types_in_isin_and_field_comparisons():
    with pytest.raises(FieldTypeMismatchError, match="field 'size' has type int; got string"):
        size.isin([1, "2"])
    # A string field's list of plain strings is checked on a shorter path; anything else on the long one.
    with pytest.raises(FieldTypeMismatchError, match="field 'label' has type string; got int"):
        label.isin(["cat", 2])
    with pytest.raises(QueryError, match=r"is_null\(\)"):
        label.isin(["cat", None])
    with pytest.raises(InvalidArgumentError, match="not valid UTF-8"):
        label.isin(["cat", "bad\udcff"])
    assert [v.string_value for v in comparison(label.isin(iter(["a", "b"]))).values.values] == ["a", "b"]
    with pytest.raises(FieldTypeMismatchError, match="field 'label' has type string; got int.*'size'"):
        label == size
    # A list of numbers is a vector value now, which an int field cannot be compared with.
    with pytest.raises(FieldTypeMismatchError, match="field 'size' has type int; got vector value"):
        size == [1, 2]
    with pytest.raises(FieldTypeMismatchError, match="field 'size'.*cannot be stored"):
        size == {"a": 1}


def test_operators_that_do_not_fit_the_field_type():
    with pytest.raises(QueryError, match="needs a string field"):
        size.contains("1")
    with pytest.raises(FieldTypeMismatchError, match="startswith"):
        label.startswith(1)
    with pytest.raises(QueryError, match="no order"):
        flag < True
    with pytest.raises(QueryError, match="no order"):
        thumb > "ab"
    with pytest.raises(QueryError, match="takes a list"):
        label.isin("cat")


@pytest.mark.parametrize("missing", [None, math.nan, np.nan, pd.NaT, pd.NA])
def test_comparing_with_a_missing_value_points_to_is_null(missing):
    with pytest.raises(QueryError, match=r"is_null\(\)"):
        score == missing
    with pytest.raises(QueryError, match=r"is_null\(\)"):
        score.isin([1.0, missing])


def test_comparing_a_column_with_a_filter_is_refused():
    with pytest.raises(QueryError, match="missing parentheses"):
        size == (score > 1)


def test_columns_of_different_datasources_do_not_mix():
    other = Column("size", FieldType.INT, 8)
    with pytest.raises(QueryError, match="different datasources"):
        (size > 1) & (other > 1)
    with pytest.raises(QueryError, match="different datasources"):
        size < other


def test_a_column_is_not_iterable():
    with pytest.raises(QueryError, match="not its values"):
        list(size)


def test_query_spec_round_trips_through_its_proto():
    spec = QuerySpec(
        filter=(size > 1) & label.endswith(".png"),
        select=(Field("size"), Field("label", as_of=dt.datetime(2024, 1, 1, tzinfo=UTC), alias="then")),
        order_by=(score.desc(), size.asc()),
        limit=10,
        as_of=dt.datetime(2024, 5, 1, tzinfo=UTC),
    )
    proto = spec.to_proto(7)
    back = QuerySpec.from_proto(proto)
    assert back.to_proto(7) == proto
    assert (back.select, back.order_by, back.limit, back.as_of) == (spec.select, spec.order_by, 10, spec.as_of)
    assert not QuerySpec().to_proto(7).HasField("limit")
    assert QuerySpec(limit=0).to_proto(7).HasField("limit")
