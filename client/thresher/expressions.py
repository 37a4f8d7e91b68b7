"""A small text language for query filters, parsed (never evaluated) into the Python API's filter tree.

``parse('label == "cat" and size > 100', ds)`` returns exactly what
``(ds["label"] == "cat") & (ds["size"] > 100)`` returns, built through the same :class:`Column`
methods, so every type check and unknown-field error of the Python API applies unchanged.
:func:`to_text` turns a filter (an :class:`Expression`, including a saved dataset's, or a
``Filter`` proto) back into text that parses to the same tree.

The grammar (keywords are case-insensitive; whitespace is free)::

    expression := disjunction
    disjunction := conjunction ("or" conjunction)*
    conjunction := negation ("and" negation)*
    negation   := "not" negation | predicate
    predicate  := "(" expression ")"
                | ("contains" | "startswith" | "endswith") "(" field "," string ")"
                | operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand   -- at least one side a field
                | field ["not"] "in" "[" [literal ("," literal)* [","]] "]"
                | field "is" ["not"] "null"
                | field ("contains" | "startswith" | "endswith") string
    operand    := field | literal
    field      := identifier | `back-quoted name` | "field" "(" string ")"
    literal    := integer | float | string | "true" | "false" | "null" | "datetime" "(" string ")"

A double-quoted or single-quoted text is always a string literal (escapes: ``\\\\ \\" \\' \\n \\t \\r
\\0 \\xHH \\uHHHH \\UHHHHHHHH``); a field name that is not an identifier, or that is a keyword, is
written in back quotes (`` `my field` ``, with ``\\``` for a back quote). A string compared with a
datetime field is read as an ISO 8601 instant, as ``datetime("...")`` is; a naive one is UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from thresher.core.errors import FieldTypeMismatchError, QueryError, QueryExpressionError, UnknownFieldError
from thresher.core.types import UTC, FieldType
from thresher.query import Column, Expression
from thresher.v1 import common_pb2

__all__ = ["parse", "to_text", "KEYWORDS"]

KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "null", "true", "false", "contains", "startswith", "endswith", "datetime", "field"}
)
_TEXT_OPERATORS = ("contains", "startswith", "endswith")
_COMPARISONS: dict[str, Callable[[Column, Any], Expression]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# `5 < size` means `size > 5`.
_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d]\w*)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<quote>["'`])
""",
    re.VERBOSE,
)
_PREFIX = "query expression, column "
_Built = TypeVar("_Built")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "`": "`", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # number, word, op, punct, string, field, end
    value: Any
    position: int

    def keyword(self) -> str | None:
        return self.value.lower() if self.kind == "word" and self.value.lower() in KEYWORDS else None

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        if self.kind == "string":
            return f"the string {_quote(self.value)}"
        if self.kind == "field":
            return f"the field `{self.value}`"
        return f"'{self.value}'"


@dataclasses.dataclass(frozen=True)
class _FieldRef:
    name: str
    position: int


@dataclasses.dataclass(frozen=True)
class _Literal:
    value: Any
    position: int
    text: str


def parse(text: str, ds: Any) -> Expression:
    """The filter that ``text`` describes, over the fields of ``ds``.

    ``ds`` is a :class:`thresher.Datasource` (or any view of one) or a mapping from field name to
    :class:`FieldType` (or its name). Raises :class:`QueryExpressionError` naming the position and
    what was expected for text that does not parse; :class:`UnknownFieldError`,
    :class:`FieldTypeMismatchError` and :class:`QueryError` as the Python API does for a filter
    that parses but cannot work, with the position added to the message.
    """
    if not isinstance(text, str):
        raise TypeError(f"a query expression is a str, not {type(text).__name__}")
    return _Parser(text, _column_lookup(ds)).parse()


def _column_lookup(ds: Any) -> Callable[[str], Column]:
    if isinstance(ds, Mapping):
        fields = {
            "path": FieldType.STRING,
            "datapoint_id": FieldType.INT,
            **{name: FieldType(kind) for name, kind in ds.items()},
        }

        def lookup(name: str) -> Column:
            if name not in fields:
                known = ", ".join(sorted(fields))
                raise UnknownFieldError(f"there is no field '{name}'; the fields are: {known}")
            return Column(name, fields[name])

        return lookup
    if hasattr(ds, "column"):
        column: Callable[[str], Column] = ds.column
        return column
    raise TypeError(f"parse() needs a Datasource or a mapping of field names to types, not {type(ds).__name__}")


class _Parser:
    def __init__(self, text: str, lookup: Callable[[str], Column]) -> None:
        self.text = text
        self.lookup = lookup
        self.tokens = _tokenize(text)
        self.index = 0

    # Token helpers.
    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def peek(self, ahead: int = 1) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.current
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current.keyword() in words

    def at_punct(self, symbol: str) -> bool:
        return self.current.kind == "punct" and self.current.value == symbol

    def expect_punct(self, symbol: str, context: str) -> _Token:
        if not self.at_punct(symbol):
            self.fail(f"'{symbol}' {context}")
        return self.advance()

    def fail(self, expected: str, token: _Token | None = None) -> NoReturn:
        token = token or self.current
        raise QueryExpressionError(
            f"query expression, column {token.position + 1}: expected {expected}, found {token.describe()}",
            self.text,
            token.position,
            expected,
        )

    # Grammar.
    def parse(self) -> Expression:
        if self.current.kind == "end":
            self.fail('a filter such as label == "cat"')
        expression = self.disjunction()
        if self.current.kind != "end":
            self.fail("'and', 'or' or the end of the expression")
        return expression

    def disjunction(self) -> Expression:
        expression = self.conjunction()
        while self.at_keyword("or"):
            self.advance()
            expression = expression | self.conjunction()
        return expression

    def conjunction(self) -> Expression:
        expression = self.negation()
        while self.at_keyword("and"):
            self.advance()
            expression = expression & self.negation()
        return expression

    def negation(self) -> Expression:
        if self.at_keyword("not"):
            self.advance()
            return ~self.negation()
        return self.predicate()

    def predicate(self) -> Expression:
        if self.at_punct("("):
            self.advance()
            expression = self.disjunction()
            self.expect_punct(")", "to close the parenthesis")
            return expression
        if self.current.keyword() in _TEXT_OPERATORS and self.peek().kind == "punct" and self.peek().value == "(":
            return self.text_function()
        left = self.operand()
        if self.current.kind == "op":
            return self.comparison(left)
        if not isinstance(left, _FieldRef):
            self.fail("a comparison operator (==, !=, <, <=, >, >=) after a value")
        keyword = self.current.keyword()
        if keyword == "is":
            return self.null_test(left)
        if keyword == "in" or (keyword == "not" and self.peek().keyword() == "in"):
            return self.membership(left)
        if keyword in _TEXT_OPERATORS:
            self.advance()
            return self.text_test(left, keyword, self.string_literal(f"a string after '{keyword}'"))
        self.fail(
            f"a comparison after the field `{left.name}` (==, !=, <, <=, >, >=, in, not in, is null, "
            "is not null, contains, startswith, endswith)"
        )
        raise AssertionError  # fail() always raises

    def comparison(self, left: _FieldRef | _Literal) -> Expression:
        symbol = self.advance().value
        right = self.operand()
        if isinstance(left, _Literal):
            if isinstance(right, _Literal):
                self.fail("a field on one side of the comparison", self.tokens[self.index - 1])
            left, right, symbol = right, left, _MIRRORED[symbol]
        column = self.column(left)
        if isinstance(right, _FieldRef):
            return self.build(lambda: _COMPARISONS[symbol](column, self.column(right)), left.position)
        if right.value is None:
            raise QueryExpressionError(
                f"query expression, column {right.position + 1}: comparing `{left.name}` with null matches "
                f"nothing (a missing value satisfies no comparison); write `{left.name} is null` or "
                f"`{left.name} is not null`",
                self.text,
                right.position,
                "is null / is not null",
            )
        value = self.typed_value(column, right)
        return self.build(lambda: _COMPARISONS[symbol](column, value), left.position)

    def null_test(self, field: _FieldRef) -> Expression:
        self.advance()
        negated = self.at_keyword("not")
        if negated:
            self.advance()
        if not self.at_keyword("null"):
            self.fail("'null' after 'is'" if not negated else "'null' after 'is not'")
        self.advance()
        column = self.column(field)
        return column.is_not_null() if negated else column.is_null()

    def membership(self, field: _FieldRef) -> Expression:
        negated = self.at_keyword("not")
        if negated:
            self.advance()
        self.advance()  # in
        self.expect_punct("[", "to open the list after 'in'")
        column = self.column(field)
        values = []
        while not self.at_punct("]"):
            literal = self.literal("a value or ']' in the list")
            if literal.value is None:
                self.fail("a value (null never matches; use 'is null')", self.tokens[self.index - 1])
            values.append(self.typed_value(column, literal))
            if not self.at_punct("]"):
                self.expect_punct(",", "or ']' after a list value")
        self.advance()
        expression = self.build(lambda: column.isin(values), field.position)
        return ~expression if negated else expression

    def text_function(self) -> Expression:
        name = self.advance().value.lower()
        self.advance()  # (
        field = self.operand()
        if not isinstance(field, _FieldRef):
            self.fail(f"a field as the first argument of {name}()", self.tokens[self.index - 1])
        self.expect_punct(",", f"between the arguments of {name}()")
        text = self.string_literal(f"a string as the second argument of {name}()")
        self.expect_punct(")", f"to close {name}(")
        return self.text_test(field, name, text)

    def text_test(self, field: _FieldRef, name: str, text: str) -> Expression:
        column = self.column(field)
        expression: Expression = self.build(lambda: getattr(column, name)(text), field.position)
        return expression

    # Operands.
    def operand(self) -> _FieldRef | _Literal:
        token = self.current
        if token.kind == "field":
            self.advance()
            return _FieldRef(token.value, token.position)
        if token.kind == "word" and token.keyword() is None:
            self.advance()
            return _FieldRef(token.value, token.position)
        if token.keyword() == "field" and self.peek().kind == "punct" and self.peek().value == "(":
            self.advance()
            self.advance()
            name = self.string_literal("the field name as a string in field(...)")
            self.expect_punct(")", "to close field(")
            return _FieldRef(name, token.position)
        return self.literal("a field or a value")

    def literal(self, expected: str) -> _Literal:
        token = self.current
        keyword = token.keyword()
        if token.kind == "number":
            self.advance()
            text = token.value
            value: Any = float(text) if any(c in text for c in ".eE") else int(text)
            if isinstance(value, float) and not math.isfinite(value):
                self.fail("a finite number", token)
            return _Literal(value, token.position, text)
        if token.kind == "string":
            self.advance()
            return _Literal(token.value, token.position, "string")
        if keyword in ("true", "false"):
            self.advance()
            return _Literal(keyword == "true", token.position, keyword)
        if keyword == "null":
            self.advance()
            return _Literal(None, token.position, "null")
        if keyword == "datetime" and self.peek().kind == "punct" and self.peek().value == "(":
            self.advance()
            self.advance()
            string = self.current
            text = self.string_literal("an ISO 8601 instant as a string in datetime(...)")
            self.expect_punct(")", "to close datetime(")
            return _Literal(self.instant(text, string), token.position, "datetime")
        self.fail(expected)
        raise AssertionError

    def string_literal(self, expected: str) -> str:
        if self.current.kind != "string":
            self.fail(expected)
        text: str = self.advance().value
        return text

    def instant(self, text: str, token: _Token) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            self.fail('an ISO 8601 instant such as "2026-01-01T00:00:00Z"', token)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # Building through the Python API.
    def column(self, field: _FieldRef) -> Column:
        return self.build(lambda: self.lookup(field.name), field.position)

    def typed_value(self, column: Column, literal: _Literal) -> Any:
        # A string compared with a datetime field is an instant, so `taken > "2026-01-01"` works.
        if column.type is FieldType.DATETIME and isinstance(literal.value, str):
            return self.instant(literal.value, _Token("string", literal.value, literal.position))
        return literal.value

    def build(self, make: Callable[[], _Built], position: int) -> _Built:
        try:
            return make()
        except (UnknownFieldError, FieldTypeMismatchError, QueryError) as error:
            if isinstance(error, QueryExpressionError) or str(error).startswith(_PREFIX):
                raise  # already placed by an inner step
            raise type(error)(f"{_PREFIX}{position + 1}: {error}") from None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            hint = "; use == for equality" if char == "=" else ("; use 'and', 'or' and 'not'" if char in "&|!~" else "")
            raise QueryExpressionError(
                f"query expression, column {position + 1}: unexpected character {char!r}{hint}",
                text,
                position,
                "a field, a value, an operator or a parenthesis",
            )
        kind = match.lastgroup
        assert kind is not None, "every alternative of _TOKEN is a named group"
        if kind == "quote":
            value, end = _read_quoted(text, position)
            tokens.append(_Token("field" if text[position] == "`" else "string", value, position))
            position = end
            continue
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == quote:
            return "".join(out), position + 1
        if char != "\\":
            out.append(char)
            position += 1
            continue
        escape = text[position + 1 : position + 2]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            position += 2
        elif escape in _HEX_ESCAPES:
            digits = text[position + 2 : position + 2 + _HEX_ESCAPES[escape]]
            if len(digits) != _HEX_ESCAPES[escape] or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise QueryExpressionError(
                    f"query expression, column {position + 1}: expected {_HEX_ESCAPES[escape]} hex digits "
                    f"after \\{escape}",
                    text,
                    position,
                    "hex digits",
                )
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise QueryExpressionError(
                    f"query expression, column {position + 1}: \\{escape}{digits} is not a Unicode code point",
                    text,
                    position,
                    "a Unicode code point",
                )
            out.append(chr(code))
            position += 2 + len(digits)
        else:
            shown = repr(escape) if escape else "the end of the expression"
            raise QueryExpressionError(
                f"query expression, column {position + 1}: unknown escape \\{escape} (expected one of "
                f"\\\\ \\\" \\' \\` \\n \\t \\r \\0 \\x \\u \\U), found {shown}",
                text,
                position,
                "an escape",
            )
    what = "field name" if quote == "`" else "string"
    raise QueryExpressionError(
        f"query expression, column {start + 1}: {what} opened here is never closed (expected a closing {quote})",
        text,
        start,
        f"a closing {quote}",
    )


# Back to text.
def to_text(expression: Expression | common_pb2.Filter) -> str:
    """The expression text of a filter (the Python API's or a saved dataset's); it parses back to it."""
    proto = expression if isinstance(expression, common_pb2.Filter) else expression.to_proto()
    return _node_text(proto, top=True)


_OP_TEXT = {
    common_pb2.COMPARISON_OPERATOR_EQ: "==",
    common_pb2.COMPARISON_OPERATOR_NE: "!=",
    common_pb2.COMPARISON_OPERATOR_LT: "<",
    common_pb2.COMPARISON_OPERATOR_LE: "<=",
    common_pb2.COMPARISON_OPERATOR_GT: ">",
    common_pb2.COMPARISON_OPERATOR_GE: ">=",
    common_pb2.COMPARISON_OPERATOR_CONTAINS: "contains",
    common_pb2.COMPARISON_OPERATOR_STARTSWITH: "startswith",
    common_pb2.COMPARISON_OPERATOR_ENDSWITH: "endswith",
}


def _node_text(node: common_pb2.Filter, top: bool = False) -> str:
    kind = node.WhichOneof("node")
    if kind == "comparison":
        return _comparison_text(node.comparison)
    if kind == "negate":
        return "not " + _node_text(node.negate)
    if kind in ("all_of", "any_of"):
        joiner = " and " if kind == "all_of" else " or "
        text = joiner.join(_node_text(part) for part in getattr(node, kind).filters)
        return text if top else f"({text})"
    raise ValueError(f"a filter node of kind {kind!r} has no expression text")


def _comparison_text(comparison: common_pb2.Comparison) -> str:
    field = field_text(comparison.field)
    op = comparison.op
    if op == common_pb2.COMPARISON_OPERATOR_IS_NULL:
        return f"{field} is null"
    if op == common_pb2.COMPARISON_OPERATOR_IS_NOT_NULL:
        return f"{field} is not null"
    if op == common_pb2.COMPARISON_OPERATOR_ISIN:
        return f"{field} in [" + ", ".join(_value_text(v) for v in comparison.values.values) + "]"
    if op not in _OP_TEXT:
        raise ValueError(f"comparison operator {op} has no expression text")
    if comparison.WhichOneof("operand") == "other_field":
        return f"{field} {_OP_TEXT[op]} {field_text(comparison.other_field)}"
    return f"{field} {_OP_TEXT[op]} {_value_text(comparison.value)}"


_IDENTIFIER = re.compile(r"[^\W\d]\w*\Z")


def field_text(name: str) -> str:
    """A field name as the grammar writes it: bare when it is a plain identifier, else back-quoted."""
    if _IDENTIFIER.match(name) and name.lower() not in KEYWORDS:
        return name
    return _quote(name, "`")


def _value_text(value: common_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "float_value":
        if not math.isfinite(value.float_value):
            raise ValueError(f"the float {value.float_value} has no expression text")
        return repr(value.float_value)
    if kind == "string_value":
        return _quote(value.string_value)
    if kind == "datetime_value":
        instant = value.datetime_value.ToDatetime(tzinfo=UTC)
        return f'datetime("{instant.isoformat()}")'
    raise ValueError(f"a value of kind {kind!r} has no expression text")


def _quote(text: str, quote: str = '"') -> str:
    out = [quote]
    for char in text:
        if char in ("\\", quote):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append(quote)
    return "".join(out)
