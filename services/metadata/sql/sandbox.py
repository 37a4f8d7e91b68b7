"""The locked-down DuckDB that runs user SQL, and the checks a statement passes before it runs.

User SQL never runs on the store's own connection: it runs on a fresh in-memory DuckDB that holds
nothing but views of the tables the statement names (fed from the store as Arrow), with file-system
access, extension loading and Python replacement scans (which would read any Python object in scope)
off, and its configuration locked so the statement cannot turn them back on. A write can only ever
touch that throwaway database, and only a single SELECT-type statement is accepted anyway.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thresher.services.metadata.domain_errors import InvalidArgument
from thresher.services.server_extra import require

if TYPE_CHECKING:
    import duckdb
else:  # imported through require, so that a missing server extra is named (the checker reads the stubs)
    duckdb = require("duckdb")

_CONFIG = {
    "enable_external_access": False,
    "python_enable_replacements": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
# AST nodes after which every column of a table may be read (SELECT *, COLUMNS(...), DESCRIBE).
_WHOLE_ROW_NODES = {"STAR", "SHOW_REF"}


@dataclass(frozen=True)
class References:
    """What a statement reads: (schema, table) names as written, and the column names it mentions
    (lower case), or ``None`` when it may read every column."""

    tables: frozenset[tuple[str, str]]
    columns: frozenset[str] | None


def quote(identifier: str) -> str:
    """A DuckDB identifier for any text: double quotes, inner quotes doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def check_statement(sql: str) -> None:
    """Raises InvalidArgument unless ``sql`` is exactly one read-only (SELECT-type) statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise InvalidArgument(f"the SQL does not parse: {error}") from None
    if len(statements) != 1:
        raise InvalidArgument(f"expected exactly one SQL statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise InvalidArgument(
            f"only read-only queries (SELECT) are allowed; this is a {kind.name} statement: "
            "SQL over Thresher cannot write"
        )


CATALOG = "thresher"


def open_sandbox() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with external access off; call ``lock`` once its views exist.

    Its database is named ``thresher`` (an in-memory attachment), so ``thresher."owner/name".table``,
    the name catalog listings report, resolves as well as ``"owner/name".table``.
    """
    connection = duckdb.connect(":memory:", config=dict(_CONFIG))
    try:
        connection.execute(f"ATTACH ':memory:' AS {CATALOG}")
        connection.execute(f"USE {CATALOG}")
        connection.execute("SET TimeZone = 'UTC'")
    except BaseException:
        connection.close()
        raise
    return connection


def lock(connection: duckdb.DuckDBPyConnection) -> None:
    """Freezes the sandbox's settings, so the statement cannot re-enable anything."""
    connection.execute("SET lock_configuration = true")


def references(connection: duckdb.DuckDBPyConnection, sql: str) -> References:
    """The tables and columns ``sql`` (already checked) names, from DuckDB's own parse tree."""
    raw = connection.sql("SELECT json_serialize_sql(?::VARCHAR)", params=[sql]).fetchall()[0][0]
    tree = json.loads(raw)
    if tree.get("error"):
        # Not every SELECT-type statement serializes (e.g. DESCRIBE): assume it reads whole tables it names.
        return References(frozenset(), None)
    tables: set[tuple[str, str]] = set()
    columns: set[str] = set()
    whole_rows = False
    for node in nodes(tree):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            tables.add((node.get("schema_name", ""), node.get("table_name", "")))
        elif kind == "COLUMN_REF":
            columns.update(name.lower() for name in node.get("column_names", ()))
        elif isinstance(kind, str) and kind in _WHOLE_ROW_NODES:  # a sample's "type" is a dict
            whole_rows = True
    return References(frozenset(tables), None if whole_rows else frozenset(columns))


_parsers = threading.local()


@functools.lru_cache(maxsize=256)
def parse(sql: str) -> dict[str, Any] | None:
    """``sql``'s DuckDB parse tree (json_serialize_sql), or None where DuckDB cannot serialize it.

    Parsed on a locked in-memory DuckDB of this thread's own, kept for the next statement: parsing
    runs nothing of the statement. Remembered for the latest statements (a Flight SQL client describes
    a statement, then runs it): callers must not change the tree."""
    connection = getattr(_parsers, "connection", None)
    if connection is None:
        connection = duckdb.connect(":memory:", config=dict(_CONFIG))
        connection.execute("SET lock_configuration = true")
        _parsers.connection = connection
    try:
        tree = json.loads(connection.sql("SELECT json_serialize_sql(?::VARCHAR)", params=[sql]).fetchall()[0][0])
    except (duckdb.Error, ValueError, IndexError):
        return None
    return None if tree.get("error") else tree


def nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every dict of a parsed statement tree (DuckDB's json_serialize_sql), depth first."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
