"""The query expression grammar: parsed text gives the Python API's filter tree, and text round-trips."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.core.errors import FieldTypeMismatchError, QueryError, QueryExpressionError, UnknownFieldError
from thresher.core.types import FieldType
from thresher.expressions import parse, to_text

from .conftest import FIELDS

UTC = dt.UTC
FIELDS_WITH_ODD_NAMES = {**FIELDS, "weird name": FieldType.STRING, "and": FieldType.INT, "é_ok": FieldType.INT}
ORDERED = {FieldType.INT, FieldType.FLOAT, FieldType.STRING, FieldType.DATETIME}
SYMBOLS = ["==", "!=", "<", "<=", ">", ">="]
MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def api(ds, op, left, right):
    import operator

    return {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }[op](left, right)


def same(a, b) -> None:
    assert a.to_proto() == b.to_proto(), (a, b)


# ---- examples ------------------------------------------------------------------------------------


def test_the_readme_example_builds_the_python_api_filter(ds):
    same(parse('label == "cat" and size > 100', ds), (ds["label"] == "cat") & (ds["size"] > 100))


@pytest.mark.parametrize(
    "text, build",
    [
        ('label != "a" or not size >= 3', lambda ds: (ds["label"] != "a") | ~(ds["size"] >= 3)),
        (
            "NOT (size < 1 OR size > 9) AND flag == TRUE",
            lambda ds: ~((ds["size"] < 1) | (ds["size"] > 9)) & (ds["flag"] == True),
        ),  # noqa: E712
        ("size in [1, 2, 3,]", lambda ds: ds["size"].isin([1, 2, 3])),
        ("label not in ['x', \"y\"]", lambda ds: ~ds["label"].isin(["x", "y"])),
        ("label is null", lambda ds: ds["label"].is_null()),
        ("label is not null", lambda ds: ds["label"].is_not_null()),
        ('path startswith "train/"', lambda ds: ds["path"].startswith("train/")),
        ('startswith(path, "train/")', lambda ds: ds["path"].startswith("train/")),
        (
            'label contains "a\\"b" and endswith(label, \'\\n\')',
            lambda ds: ds["label"].contains('a"b') & ds["label"].endswith("\n"),
        ),
        ("size > score", lambda ds: ds["size"] > ds["score"]),
        ("5 < size", lambda ds: ds["size"] > 5),
        ("score >= -1.5e3", lambda ds: ds["score"] >= -1500.0),
        ("score == 2", lambda ds: ds["score"] == 2),
        ('taken > "2026-01-01"', lambda ds: ds["taken"] > dt.datetime(2026, 1, 1, tzinfo=UTC)),
        (
            'taken <= datetime("2026-01-01T12:30:00+02:00")',
            lambda ds: ds["taken"] <= dt.datetime(2026, 1, 1, 10, 30, tzinfo=UTC),
        ),
        ('thumb == "ab12"', lambda ds: ds["thumb"] == "ab12"),
        ('field("label") == "x"', lambda ds: ds["label"] == "x"),
        ("`label` == '\\u00e9\\x41'", lambda ds: ds["label"] == "éA"),
    ],
)
def test_each_construct_builds_the_python_api_filter(ds, text, build):
    same(parse(text, ds), build(ds))


def test_back_quotes_name_fields_that_are_not_identifiers_or_are_keywords():
    fields = FIELDS_WITH_ODD_NAMES
    expression = parse('`weird name` == "x" and `and` > 1 and é_ok == 2', fields)
    assert to_text(expression) == '`weird name` == "x" and `and` > 1 and é_ok == 2'


@pytest.mark.parametrize(
    "text, column, expected",
    [
        ("", 1, "a filter"),
        ("size >", 7, "a field or a value"),
        ("(size > 1", 10, "')' to close the parenthesis"),
        ("size > 1 size", 10, "'and', 'or' or the end"),
        ("size = 1", 6, "use == for equality"),
        ("size > 1 && flag == true", 10, "use 'and', 'or' and 'not'"),
        ('label == "open', 10, "never closed"),
        ("label == 'a\\q'", 12, "unknown escape"),
        ("label in ['a' 'b']", 15, "',' or ']'"),
        ("label in 'a'", 10, "'[' to open the list"),
        ("size", 5, "a comparison after the field `size`"),
        ("1 == 2", 6, "a field on one side"),
        ("label is nul", 10, "'null' after 'is'"),
        ('taken > datetime("yesterday")', 18, "ISO 8601"),
        ("label == null", 10, "is null"),
        ("size in [1, null]", 13, "null never matches"),
    ],
)
def test_syntax_errors_name_the_column_and_what_was_expected(ds, text, column, expected):
    with pytest.raises(QueryExpressionError) as caught:
        parse(text, ds)
    assert f"column {column}:" in str(caught.value)
    assert expected in str(caught.value)
    assert caught.value.position == column - 1
    assert isinstance(caught.value, ValueError)


def test_unknown_fields_and_type_errors_are_the_python_api_errors_with_a_position(ds):
    with pytest.raises(UnknownFieldError, match="column 13: .*no field 'nope'"):
        parse("size > 1 or nope == 2", ds)
    with pytest.raises(FieldTypeMismatchError, match="column 1: field 'size' has type int; got string"):
        parse('size == "big"', ds)
    with pytest.raises(QueryError, match="needs a string field"):
        parse('size contains "1"', ds)
    with pytest.raises(QueryError, match="bool field has no order"):
        parse("flag < true", ds)


# ---- properties ----------------------------------------------------------------------------------


def _values(kind: FieldType) -> st.SearchStrategy:
    return {
        FieldType.INT: st.integers(-(2**63), 2**63 - 1),
        FieldType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
        FieldType.BOOL: st.booleans(),
        FieldType.STRING: st.text(st.characters(exclude_categories=("Cs",))),
        FieldType.DATETIME: st.datetimes(
            min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(UTC)
        ),
        FieldType.BLOB: st.text("0123456789abcdef", min_size=1, max_size=64),
    }[kind]


def _literal_text(kind: FieldType, value) -> st.SearchStrategy[str]:
    """Several ways to write one value."""
    if kind is FieldType.BOOL:
        word = "true" if value else "false"
        return st.sampled_from([word, word.upper(), word.title()])
    if kind in (FieldType.INT, FieldType.FLOAT):
        return st.just(repr(value))
    if kind is FieldType.DATETIME:
        return st.sampled_from(
            [
                f'datetime("{value.isoformat()}")',
                f'"{value.isoformat()}"',
                f"'{value.isoformat().replace('+00:00', 'Z')}'",
            ]
        )
    return st.sampled_from([_escaped(value, '"'), _escaped(value, "'")])


def _escaped(text: str, quote: str) -> str:
    out = []
    for char in text:
        if char in ("\\", quote):
            out.append("\\" + char)
        elif ord(char) < 0x20:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) > 0xFFFF:
            out.append(f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return quote + "".join(out) + quote


@st.composite
def comparisons(draw, ds):
    """(text, the same filter through the Python API), for one leaf of the tree."""
    name = draw(st.sampled_from(sorted(FIELDS) + ["path"]))
    kind = FIELDS.get(name, FieldType.STRING)
    column = ds[name]
    shape = draw(st.sampled_from(["compare", "mirror", "fields", "isin", "null", "text"]))
    if shape == "null":
        negated = draw(st.booleans())
        return (f"{name} is {'not ' if negated else ''}null", column.is_not_null() if negated else column.is_null())
    if shape == "text" and kind is FieldType.STRING:
        method = draw(st.sampled_from(["contains", "startswith", "endswith"]))
        value = draw(_values(kind))
        literal = draw(_literal_text(kind, value))
        text = draw(st.sampled_from([f"{name} {method} {literal}", f"{method}({name}, {literal})"]))
        return text, getattr(column, method)(value)
    if shape == "isin":
        values = draw(st.lists(_values(kind), max_size=4))
        literals = [draw(_literal_text(kind, v)) for v in values]
        return f"{name} in [{', '.join(literals)}]", column.isin(values)
    symbols = SYMBOLS if kind in ORDERED else ["==", "!="]
    symbol = draw(st.sampled_from(symbols))
    if shape == "fields":
        others = [n for n, k in FIELDS.items() if k == kind or {k, kind} <= {FieldType.INT, FieldType.FLOAT}]
        other = draw(st.sampled_from(others))
        return f"{name} {symbol} {other}", api(ds, symbol, column, ds[other])
    value = draw(_values(kind))
    literal = draw(_literal_text(kind, value))
    if shape == "mirror":
        return f"{literal} {MIRROR[symbol]} {name}", api(ds, symbol, column, value)
    return f"{name} {symbol} {literal}", api(ds, symbol, column, value)


def trees(ds):
    def extend(children):
        pairs = st.tuples(children, children)
        return st.one_of(
            pairs.map(lambda p: (f"({p[0][0]}) and ({p[1][0]})", p[0][1] & p[1][1])),
            pairs.map(lambda p: (f"({p[0][0]}) OR ({p[1][0]})", p[0][1] | p[1][1])),
            children.map(lambda c: (f"not ({c[0]})", ~c[1])),
        )

    return st.recursive(comparisons(ds), extend, max_leaves=8)


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(data=st.data())
def test_text_parses_to_the_python_api_filter_tree(ds, data):
    text, expression = data.draw(trees(ds))
    same(parse(text, ds), expression)


@_settings
@given(data=st.data())
def test_str_of_a_filter_parses_back_to_the_same_tree(ds, data):
    _, expression = data.draw(trees(ds))
    text = str(expression)
    assert text == to_text(expression) == to_text(expression.to_proto())
    same(parse(text, ds), expression)
    assert to_text(parse(text, ds)) == text


@_settings
@given(text=st.text(max_size=40))
def test_arbitrary_text_parses_or_fails_with_a_query_error_only(ds, text):
    try:
        parse(text, ds)
    except QueryError:
        pass
