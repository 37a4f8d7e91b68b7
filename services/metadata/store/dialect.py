"""The seam between the one store (``sql_store.py``) and an engine: only what really differs.

An engine supplies its column types, a few SQL spellings (lists, ordered aggregates), how a
transaction is opened and locked, how Arrow tables are staged for a statement (bulk load), and how a
result streams out (bulk read). Everything else — schema, writes, versioning, queries — is written
once in ``sql_store.py`` with numbered ``$n`` parameters, which both engines accept. Query results are
the exception: the query compiler's dialect (``query_dialect``) says whether a query's values are
bound or rendered as literals (PostgreSQL, whose driver reads results through COPY only when nothing
is bound), and the store's own values in a query's relation (write ids) are always int literals.

Adding a field type to the store is one change here: its row in ``FIELD_STORAGE``.
Vector fields are the one type whose column has a parameter (its dimension, fixed by the first write).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa

from thresher.core.types import FieldType
from thresher.core.vectors import VectorSpec
from thresher.services.metadata.annotations import DUCKDB_TYPES
from thresher.services.metadata.domain_errors import InvalidArgument
from thresher.services.metadata.query_compiler import Dialect as QueryDialect
from thresher.services.metadata.vector_fields import FieldKind

T = TypeVar("T")


@dataclass(frozen=True)
class FieldStorage:
    """How one field type is kept: its column type in each engine (``{dimension}`` for a vector's) and
    its Arrow type on the way in."""

    duckdb: str
    postgres: str
    arrow: Callable[[], pa.DataType]


def _arrow_type_of(kind: FieldType) -> Callable[[], pa.DataType]:
    return lambda: kind.arrow_type


# Blobs are stored by content hash (a string); the bytes live in the blob store.
FIELD_STORAGE: dict[FieldType, FieldStorage] = {
    FieldType.INT: FieldStorage("BIGINT", "BIGINT", pa.int64),
    FieldType.FLOAT: FieldStorage("DOUBLE", "DOUBLE PRECISION", pa.float64),
    FieldType.BOOL: FieldStorage("BOOLEAN", "BOOLEAN", pa.bool_),
    FieldType.STRING: FieldStorage("VARCHAR", 'TEXT COLLATE "C"', pa.string),
    FieldType.DATETIME: FieldStorage("TIMESTAMPTZ", "TIMESTAMPTZ", lambda: pa.timestamp("us", tz="UTC")),
    FieldType.BLOB: FieldStorage("VARCHAR", 'TEXT COLLATE "C"', pa.string),
    # Annotations: DuckDB's native nested types; PostgreSQL's JSONB (a column of that type is staged
    # as JSON text, see ``EngineDialect.storage_array``). Segmentation masks are stored by digest.
    **{kind: FieldStorage(sql, "JSONB", _arrow_type_of(kind)) for kind, sql in DUCKDB_TYPES.items()},
    # 32-bit elements in both engines (neither has a half float; float16 fields are narrowed on the way
    # out). PostgreSQL's real[] rather than bytea: ADBC carries arrays natively both ways.
    FieldType.VECTOR: FieldStorage("FLOAT[{dimension}]", "REAL[]", lambda: pa.list_(pa.float32())),
}


def storage_array(kind: FieldType, array: pa.Array) -> pa.Array:
    """``array`` (already coerced to the field's type; blobs already hashed) in its stored Arrow type."""
    wanted = FIELD_STORAGE[kind].arrow()
    return array if array.type == wanted else array.cast(wanted)


class Session(abc.ABC):
    """One connection inside one transaction (or one read)."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abc.abstractmethod
    def table(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """The whole result of ``sql`` as Arrow."""

    @abc.abstractmethod
    def stage(self, name: str, table: pa.Table) -> None:
        """Makes ``table`` readable as relation ``name`` by later statements of this session."""

    @abc.abstractmethod
    def unstage(self, name: str) -> None: ...

    def append(self, target: str, table: pa.Table) -> None:
        """Appends ``table``'s columns (named as ``target``'s) to ``target``; the rest get NULL."""
        self.stage("appended_rows", table)
        try:
            names = ", ".join(table.column_names)
            self.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM appended_rows")
        finally:
            self.unstage("appended_rows")

    def batches(self, sql: str, params: Sequence[Any], max_rows: int) -> Iterator[pa.RecordBatch]:
        """``sql``'s result in batches of at most ``max_rows``, read as they are asked for where the engine can."""
        return iter(self.table(sql, params).to_batches(max_rows))

    def few_rows(self, sql: str, params: Sequence[Any], schema: pa.Schema, max_rows: int) -> pa.Table | None:
        """At most ``max_rows`` rows of ``sql``'s result, typed as ``schema`` (whose columns are the
        result's, in order), when the engine reads so few rows cheaper than through its Arrow export;
        None otherwise (the caller then reads ``batches``)."""
        return None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        table = self.table(sql, params)
        return list(zip(*(column.to_pylist() for column in table.columns)))

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The row of a statement that always returns one (an aggregate, ``nextval``, an upsert's RETURNING)."""
        row = self.one(sql, params)
        if row is None:
            raise RuntimeError(f"expected a row from: {sql}")
        return row

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the row of a statement that always returns one."""
        return self.row(sql, params)[0]


class EngineDialect(abc.ABC):
    """One engine: connections, transactions and the SQL spellings that differ."""

    #: The query compiler's dialect (placeholders and string functions of user filters).
    query_dialect: QueryDialect
    #: Whether this process is the only writer, so records read once stay exact until it changes them.
    single_writer: bool
    #: Extra DDL for catalog tables (e.g. PostgreSQL's byte-wise collation on names).
    text_type: str
    bytes_type: str
    #: Appended to a current table's columns: an engine that updates rows through an index keys them.
    current_table_key: str
    float_type: str
    #: A column that finds a current-table row fastest inside one write transaction: DuckDB's ``rowid``
    #: (a position, read without I/O), PostgreSQL's keyed ``datapoint_id``.
    row_key: str
    #: Whether an upload into an empty current table is faster with the table's indexes dropped and
    #: built again after its rows, inside its transaction, than kept up row by row. PostgreSQL's
    #: B-trees: yes (a 200k-row first load 1.4 s -> 0.9 s); DuckDB's ART: no (it appends to the
    #: index at commit, in less time than building it anew takes).
    index_after_first_load: bool = False
    #: Where the store lives, for messages to operators (a file path, or a database URL without its
    #: password).
    location: str = ""

    def column_type(self, kind: FieldKind) -> str:
        if isinstance(kind, VectorSpec):
            vector_type: str = getattr(FIELD_STORAGE[FieldType.VECTOR], self.name)
            return vector_type.format(dimension=kind.dimension)
        if kind is FieldType.VECTOR:
            raise InvalidArgument(
                "a vector field is created by its first write, which fixes its dimension; "
                "it cannot be declared without values"
            )
        column_type: str = getattr(FIELD_STORAGE[kind], self.name)
        return column_type

    def storage_array(self, kind: FieldType, array: pa.Array) -> pa.Array:
        """``array`` as this engine's sessions stage and append it (by default its stored Arrow type)."""
        return storage_array(kind, array)

    name: str

    @abc.abstractmethod
    def write(self, lock_key: int, work: Callable[[Session], T]) -> T:
        """Runs ``work`` in one transaction holding the write lock ``lock_key``, and commits it; any
        error rolls everything back. ``work`` may run again after a serialization failure."""

    @abc.abstractmethod
    def lock(self, session: Session, key: int) -> None:
        """Takes one more write lock inside ``session``'s transaction (a no-op for a single writer)."""

    @abc.abstractmethod
    def read(self) -> AbstractContextManager[Session]: ...

    @abc.abstractmethod
    def stream(self, sql: str, params: Sequence[Any], max_rows: int) -> Iterator[pa.RecordBatch]:
        """The batches of a query's result, at most ``max_rows`` rows each, read as they are consumed."""

    @abc.abstractmethod
    def stream_read_only(
        self, sql: str, params: Sequence[Any], max_rows: int
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """``stream`` for SQL over the store: the statement runs in a read-only transaction (with a
        statement timeout where the engine has one), and the result's schema comes first."""

    def planned_rows(self, session: Session, sql: str, params: Sequence[Any]) -> int | None:
        """How many rows the engine's planner expects ``sql`` to return, without running it; None where
        the engine has no cheap estimate (the store then counts exactly)."""
        return None

    def after_first_load(self, session: Session, table: str) -> None:
        """Called inside a large first load of ``table``, after its rows and indexes (e.g. to gather the
        planner statistics that the next reads are planned on); nothing by default."""
        return None

    @abc.abstractmethod
    def before_ddl(self, session: Session) -> None:
        """Called before ALTER/DROP inside a write (e.g. bound how long DDL waits for readers)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # SQL spellings ----------------------------------------------------------------------------

    @abc.abstractmethod
    def list_contains(self, list_sql: str, value_sql: str) -> str: ...

    @abc.abstractmethod
    def list_agg(self, value_sql: str, order_sql: str) -> str:
        """An aggregate collecting ``value_sql`` into a list, in ``order_sql`` order."""

    @abc.abstractmethod
    def empty_text_list(self) -> str: ...

    @abc.abstractmethod
    def last_by(self, value_sql: str, order_sql: str, condition: str, is_array: bool = False) -> str:
        """An aggregate: ``value_sql`` of the row with the largest ``order_sql`` among rows meeting
        ``condition`` (NULL when none does), keeping a NULL value as the answer. ``is_array``: the value
        is an array (a vector field's)."""
