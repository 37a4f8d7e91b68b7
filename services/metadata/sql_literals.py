"""Query values written into SQL as literals that can only ever mean that value.

PostgreSQL's ADBC driver reads a result through COPY (its bulk path) only when a statement has no
bound parameters, so the query compiler renders the PostgreSQL dialect's values here instead of
binding them. Each value is rendered from its type, never from text the caller chose:

- ints are Python ints written in decimal, floats their shortest round-trip ``repr`` (the non-finite
  ones as the spelled-out casts both engines accept), both cast to the column's type;
- strings are quoted with every ``'`` doubled; a string holding a backslash is written as an
  escape-string literal (``E'...'``) with every backslash doubled too, so it means the same whether or
  not the server's ``standard_conforming_strings`` is on; NUL, which neither engine's text can hold,
  is refused;
- datetimes are typed literals of their ISO form, booleans ``TRUE``/``FALSE``;
- lists (for ``isin``) are one typed array literal in PostgreSQL (parsed once, however long) and a
  list of literals in DuckDB.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from thresher.core.types import FieldType
from thresher.services.metadata.domain_errors import InvalidArgument

POSTGRES, DUCKDB = "postgres", "duckdb"
_FLOAT_TYPES = {POSTGRES: "DOUBLE PRECISION", DUCKDB: "DOUBLE"}
_PG_ARRAY_TYPES = {
    FieldType.INT: "BIGINT[]",
    FieldType.FLOAT: "DOUBLE PRECISION[]",
    FieldType.BOOL: "BOOLEAN[]",
    FieldType.STRING: "TEXT[]",
    FieldType.BLOB: "TEXT[]",
    FieldType.DATETIME: "TIMESTAMPTZ[]",
}
_INT64 = (-(2**63), 2**63 - 1)


def literal(value: object, kind: FieldType, engine: str) -> str:
    """``value`` (of field type ``kind``) as a SQL literal for ``engine`` (``"postgres"`` or ``"duckdb"``)."""
    if kind is FieldType.BOOL:
        if not isinstance(value, bool):
            raise TypeError(f"a bool literal needs a bool, not {type(value).__name__}")
        return "TRUE" if value else "FALSE"
    if kind is FieldType.INT:
        return _int(value)
    if kind is FieldType.FLOAT:
        return f"CAST({_float_text(value, quoted=True)} AS {_FLOAT_TYPES[engine]})"
    if kind in (FieldType.STRING, FieldType.BLOB):
        return _string(value, engine)
    if kind is FieldType.DATETIME:
        return f"CAST({_string(_timestamp_text(value), engine)} AS TIMESTAMPTZ)"
    raise TypeError(f"no SQL literal for field type {kind}")


def list_literal(values: list[Any], kind: FieldType, engine: str) -> str:
    """``values`` (all of field type ``kind``) as one list for ``isin``: an array in PostgreSQL, a list in DuckDB."""
    if engine == DUCKDB:
        return "[" + ", ".join(literal(v, kind, engine) for v in values) + "]"
    return f"CAST({_string(_pg_array_text(values, kind), engine)} AS {_PG_ARRAY_TYPES[kind]})"


def _int(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"an int literal needs an int, not {type(value).__name__}")
    if not _INT64[0] <= value <= _INT64[1]:
        raise InvalidArgument(f"integer {value} does not fit in 64 bits")
    # In parentheses, so that a negative number never meets an operator before it ("- -1").
    return f"({value:d})" if value < 0 else f"{value:d}"


def _float_text(value: object, quoted: bool) -> str:
    if not isinstance(value, float):
        raise TypeError(f"a float literal needs a float, not {type(value).__name__}")
    if math.isfinite(value):
        text = repr(value)  # digits, '.', 'e', '+', '-' only; the shortest text that reads back as this double
        return f"'{text}'" if quoted else text
    word = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return f"'{word}'" if quoted else word


def _string(value: object, engine: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a string literal needs a str, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidArgument("a string value holds a NUL character, which no stored text can hold")
    quoted = value.replace("'", "''")
    if engine == POSTGRES and "\\" in value:
        # E'' reads backslashes as escapes whatever standard_conforming_strings says: double them.
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def _timestamp_text(value: object) -> str:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"a datetime literal needs a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # the data model's datetimes are UTC instants
    return value.astimezone(dt.UTC).isoformat()


def _pg_array_text(values: list[Any], kind: FieldType) -> str:
    """The text of a PostgreSQL array literal (what ``array_in`` reads); the caller quotes it as a string."""
    if kind is FieldType.INT:
        items = [_int(v).strip("()") for v in values]
    elif kind is FieldType.FLOAT:
        items = [_float_text(v, quoted=False) for v in values]
    elif kind is FieldType.BOOL:
        items = [literal(v, kind, POSTGRES) for v in values]
    else:
        texts = [_timestamp_text(v) for v in values] if kind is FieldType.DATETIME else list(values)
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"a string literal needs a str, not {type(text).__name__}")
        # Inside double quotes array_in takes every character literally except '\' (escapes the next) and '"'.
        items = ['"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in texts]
    return "{" + ",".join(items) + "}"
