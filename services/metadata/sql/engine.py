"""SQL over a store: one schema per namespace, one table per datasource and per saved dataset.

A datasource's table is its current state: ``path``, ``datapoint_id`` and every field under its own
name and Arrow type; a dataset's table is its saved query's result. The engine works through the
``Store`` interface only (the same queries the rest of the service runs), so it serves the DuckDB and
the PostgreSQL store alike.

A statement runs in the store itself where ``rewrite.py`` can write it in the store's SQL: each table
it names becomes the store's own query of that table, and the store runs the whole statement in a
read-only transaction and streams the result, so only the answer leaves the store. Anything else runs
in the sandbox of ``sandbox.py`` over Arrow streams of just the tables, and where it can tell, just
the columns, that it names; a statement over one datasource has the simple conditions of its WHERE
clause applied by the store as well (``pushdown.py``), so only the rows that can qualify leave the
store. Both answer with the schema ``describe`` gives (the sandbox's, over empty tables).

Visibility is a predicate over namespace names: a namespace the caller may not read is neither listed
nor loadable, so a statement naming one fails exactly as for a namespace that does not exist.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from thresher.core.types import PATH_COLUMN, FieldType
from thresher.services.metadata import nearest
from thresher.services.metadata.domain_errors import InvalidArgument
from thresher.services.metadata.sql import rewrite, sandbox
from thresher.services.metadata.sql.pushdown import pushed_filter
from thresher.services.metadata.store import SqlStore, Store
from thresher.services.server_extra import require
from thresher.v1 import common_pb2

if TYPE_CHECKING:
    import duckdb
else:  # imported through require, so that a missing server extra is named (the checker reads the stubs)
    duckdb = require("duckdb")

log = logging.getLogger(__name__)

Visible = Callable[[str], bool]
_PAGE = 1000
_Record = TypeVar("_Record")
DEFAULT_BATCH_ROWS = 131072
# Field types SQL over the store reads as they are stored (annotations and vectors go through the sandbox).
_SCALAR_TYPES = {FieldType.INT, FieldType.FLOAT, FieldType.BOOL, FieldType.STRING, FieldType.DATETIME, FieldType.BLOB}


class TableKind(enum.Enum):
    DATASOURCE = "datasource"
    DATASET = "dataset"


@dataclass(frozen=True)
class SqlTableInfo:
    """A table SQL sees; ``schema`` is filled in only when asked for."""

    namespace: str
    name: str
    kind: TableKind
    key: int  # the datasource's or dataset's id
    schema: pa.Schema | None = None


class SqlEngine:
    """Runs read-only SQL for one caller at a time over ``store``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # The store SQL can run in: the one store over DuckDB or PostgreSQL (any other only feeds the sandbox).
        self._sql_store = (
            store if isinstance(store, SqlStore) and store.dialect.name in (rewrite.DUCKDB, rewrite.POSTGRES) else None
        )

    # Catalog ------------------------------------------------------------------------------------

    def namespaces(self, visible: Visible) -> list[str]:
        """Every namespace ``visible`` admits, by name."""
        return [record.name for record in _all(self._store.list_namespaces) if visible(record.name)]

    def tables(self, visible: Visible, namespace: str = "", include_schema: bool = False) -> list[SqlTableInfo]:
        """The tables of one namespace (or of every visible one), datasources first, then datasets.

        A dataset named like a datasource of its namespace is left out: the datasource owns the name.
        """
        names = [namespace] if namespace else self.namespaces(visible)
        found: list[SqlTableInfo] = []
        for name in names:
            if not visible(name):
                continue
            taken: set[str] = set()
            for record in _all(functools.partial(self._store.list_datasources, name)):
                taken.add(record.name)
                found.append(SqlTableInfo(name, record.name, TableKind.DATASOURCE, record.id))
            for dataset in _all(functools.partial(self._store.list_datasets, name)):
                if dataset.name in taken:
                    log.warning(
                        "dataset %r of %r is hidden from SQL by the datasource of that name", dataset.name, name
                    )
                    continue
                found.append(SqlTableInfo(name, dataset.name, TableKind.DATASET, dataset.id))
        if include_schema:
            found = [SqlTableInfo(t.namespace, t.name, t.kind, t.key, self._table_schema(t)) for t in found]
        return found

    # Statements ---------------------------------------------------------------------------------

    def describe(self, sql: str, parameters: Sequence[Any] | None, visible: Visible) -> pa.Schema:
        """The result schema of ``sql``: from the embedded store where it can run the statement (planned,
        nothing read), else from the sandbox over empty tables of the right schemas."""
        sandbox.check_statement(sql)
        # PostgreSQL's own types differ (a sum is numeric): its results are conformed to the sandbox's description.
        found = self._rewritten(sql, parameters or (), visible) if self._engine() == rewrite.DUCKDB else None
        if found is not None and self._sql_store is not None:
            try:
                schema, batches = self._sql_store.stream_read_only(
                    f"SELECT * FROM ({found[1].sql}) AS described LIMIT 0", found[1].params, 1
                )
                close = getattr(batches, "close", None)
                if close is not None:
                    close()  # ends the read-only transaction (and returns a PostgreSQL connection)
                return schema
            except Exception as error:  # noqa: BLE001 - the sandbox describes it or explains why not
                log.info("SQL is described in the sandbox: the store could not plan its rewrite (%s)", error)
        connection = self._prepare(sql, visible, empty=True)
        try:
            if parameters is None:
                # Placeholders without values: DuckDB describes the statement with NULLs bound in their place.
                parameters = [None] * _placeholder_count(sql)
            return _run(connection, sql, parameters).limit(0).to_arrow_table().schema
        finally:
            connection.close()

    def execute(
        self, sql: str, parameters: Sequence[Any], visible: Visible, max_batch_rows: int = 0
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result schema and its batches, streamed; the batches must be read or closed."""
        sandbox.check_statement(sql)
        in_store = self.execute_in_store(sql, parameters, visible, max_batch_rows)
        if in_store is not None:
            return in_store
        connection = self._prepare(sql, visible, empty=False, parameters=parameters)
        try:
            reader = _run(connection, sql, parameters).to_arrow_reader(max_batch_rows or DEFAULT_BATCH_ROWS)
        except BaseException:
            connection.close()
            raise
        return reader.schema, _batches(connection, reader)

    def execute_in_store(
        self, sql: str, parameters: Sequence[Any], visible: Visible, max_batch_rows: int = 0
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]] | None:
        """``sql`` (already checked) run by the store itself, or None where it must run in the sandbox."""
        found = self._rewritten(sql, parameters, visible)
        if found is None or self._sql_store is None:
            return None
        engine, rewritten = found
        try:
            schema, batches = self._sql_store.stream_read_only(
                rewritten.sql, rewritten.params, max_batch_rows or DEFAULT_BATCH_ROWS
            )
        except Exception as error:  # noqa: BLE001 - what the store cannot run, the sandbox runs or explains
            log.info("SQL runs in the sandbox: the store could not run its rewrite (%s)", error)
            return None
        if engine == rewrite.POSTGRES:
            # PostgreSQL's types (numeric sums, lower-cased names) become the ones the statement was described with.
            expected = self.describe(sql, parameters, visible)
            if expected != schema:
                return expected, _conformed(batches, expected)
        return schema, _checked(batches)

    def _rewritten(self, sql: str, parameters: Sequence[Any], visible: Visible) -> tuple[str, rewrite.Rewritten] | None:
        """The store's engine and ``sql`` rewritten for it, or None where the sandbox must run it."""
        engine = self._engine()
        if engine is None:
            return None
        tree = sandbox.parse(sql)
        if tree is None:
            return None
        try:
            return engine, rewrite.rewrite(tree, self._relations(tree, visible, engine), engine, parameters or ())
        except rewrite.GiveUp as reason:
            log.debug("SQL runs in the sandbox: the statement holds %s", reason)
            return None

    def _engine(self) -> str | None:
        """The store's engine where SQL can run in it."""
        return self._sql_store.dialect.name if self._sql_store is not None else None

    def _relations(self, tree: dict[str, Any], visible: Visible, engine: str) -> rewrite.Resolve:
        """Resolves a statement's (schema, table) names to the store's SQL for the visible tables."""
        named = frozenset(rewrite.base_tables(tree))
        found: dict[tuple[str, str], SqlTableInfo] = {}
        taken: set[tuple[str, str]] = set()
        # One lookup by name (the catalog listing ``_resolve`` walks costs a statement per namespace).
        store = self._sql_store
        assert store is not None  # only asked for where the store runs SQL (``_engine``)
        for namespace, name, is_dataset, key in store.find_sql_tables(named) if named else []:
            if not visible(namespace) or (is_dataset and (namespace, name) in taken):
                continue  # invisible, or a dataset hidden by the datasource of its name
            taken.add((namespace, name))
            folded = (namespace.lower(), name.lower())
            if folded in found:
                raise rewrite.GiveUp("two tables whose names differ in case only")
            found[folded] = SqlTableInfo(
                namespace, name, TableKind.DATASET if is_dataset else TableKind.DATASOURCE, key
            )
        made: dict[tuple[str, str], rewrite.Relation] = {}

        def resolve(schema: str, name: str) -> rewrite.Relation | None:
            table = found.get((schema, name))
            if table is None:
                return None
            if (schema, name) not in made:
                made[(schema, name)] = self._relation(table, engine)
            return made[(schema, name)]

        return resolve

    def _relation(self, table: SqlTableInfo, engine: str) -> rewrite.Relation:
        query = self._query(table, None)
        if nearest.is_nearest(query):
            raise rewrite.GiveUp("a dataset of nearest neighbours")
        try:
            assert self._sql_store is not None
            sql, columns = self._sql_store.sql_relation(query, lower_names=engine == rewrite.POSTGRES)
        except Exception as error:  # noqa: BLE001 - e.g. a dataset whose fields are gone: the sandbox explains
            raise rewrite.GiveUp(f"a table the store cannot compile ({error})") from None
        names = tuple(column.name for column in columns)
        if any(column.type is not None and column.type not in _SCALAR_TYPES for column in columns):
            raise rewrite.GiveUp("a table with annotation or vector fields")
        if len({name.lower() for name in names}) != len(names):
            raise rewrite.GiveUp("a table with columns whose names differ in case only")
        return rewrite.Relation(sql, names)

    def _prepare(
        self, sql: str, visible: Visible, empty: bool, parameters: Sequence[Any] = ()
    ) -> duckdb.DuckDBPyConnection:
        """A locked sandbox holding views of the tables ``sql`` names (empty ones when ``empty``)."""
        sandbox.check_statement(sql)
        connection = sandbox.open_sandbox()
        try:
            refs = sandbox.references(connection, sql)
            tables = self._resolve(refs.tables, visible)
            for index, table in enumerate(tables):
                query = self._query(table, refs.columns)
                if not empty and len(tables) == 1 and table.kind is TableKind.DATASOURCE:
                    found = pushed_filter(connection, sql, self._columns(table), parameters or ())
                    if found is not None:
                        query.filter.CopyFrom(found)
                data = self._data(query, empty)
                connection.register(f"_thresher_source_{index}", data)
                schema = sandbox.quote(table.namespace)
                connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                connection.execute(
                    f"CREATE VIEW {schema}.{sandbox.quote(table.name)} AS SELECT * FROM _thresher_source_{index}"
                )
            sandbox.lock(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _resolve(self, named: frozenset[tuple[str, str]], visible: Visible) -> list[SqlTableInfo]:
        """The visible tables among (schema, table) names; DuckDB matches names ignoring case."""
        wanted = {(schema.lower(), table.lower()) for schema, table in named if schema}
        if not wanted:
            return []
        schemas = {schema for schema, _ in wanted}
        namespaces = [name for name in self.namespaces(visible) if name.lower() in schemas]
        return [
            table
            for name in namespaces
            for table in self.tables(visible, name)
            if (table.namespace.lower(), table.name.lower()) in wanted
        ]

    def _table_schema(self, table: SqlTableInfo) -> pa.Schema:
        return _schema_only(self._store, self._query(table, None))

    def _query(self, table: SqlTableInfo, columns: frozenset[str] | None) -> common_pb2.Query:
        if table.kind is TableKind.DATASET:
            # The saved query as it is: its own select and order are part of what the dataset is.
            saved: common_pb2.Query = common_pb2.Query.FromString(self._store.get_dataset(table.key).query)
            return saved
        query = common_pb2.Query(datasource_id=table.key)
        if columns is not None:
            fields = [f.name for f in self._store.get_datasource(table.key).fields]
            needed = [name for name in fields if name.lower() in columns]
            # An empty select means every field; one field is the least a query can read.
            query.select.extend(common_pb2.SelectItem(field=name) for name in (needed or fields[:1]))
        return query

    def _columns(self, table: SqlTableInfo) -> dict[str, FieldType]:
        fields = {f.name: f.type for f in self._store.get_datasource(table.key).fields}
        return {PATH_COLUMN: FieldType.STRING, **fields}

    def _data(self, query: common_pb2.Query, empty: bool) -> pa.Table | pa.RecordBatchReader:
        if empty:
            return _schema_only(self._store, query).empty_table()
        schema, batches = self._store.query(query)
        # Read whole: a statement naming a table twice (a self-join, a UNION of it) or sampling it scans
        # its view more than once, which a one-pass reader cannot serve.
        return pa.Table.from_batches(list(batches), schema)


def _schema_only(store: Store, query: common_pb2.Query) -> pa.Schema:
    """``query``'s result schema; with a limit of 0 the store's row count costs nothing."""
    bounded = common_pb2.Query()
    bounded.CopyFrom(query)
    bounded.limit = 0
    return store.describe(bounded)[0]


def _run(connection: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[Any]) -> duckdb.DuckDBPyRelation:
    try:
        return connection.sql(sql, params=list(parameters) if parameters else None)
    except duckdb.Error as error:
        raise InvalidArgument(f"SQL failed: {error}") from None


def _placeholder_count(sql: str) -> int:
    try:
        return len(duckdb.extract_statements(sql)[0].named_parameters)
    except (duckdb.Error, IndexError):
        return 0


def _checked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The store's batches; an engine's failure mid-way becomes a clear error."""
    try:
        yield from batches
    except InvalidArgument:
        raise
    except Exception as error:  # noqa: BLE001 - DuckDB's and ADBC's errors alike
        raise InvalidArgument(f"SQL failed while running: {error}") from None
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _conformed(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The store's batches with ``schema``'s names and types."""
    for batch in _checked(batches):
        try:
            columns = [
                column if column.type == field.type else column.cast(field.type)
                for column, field in zip(batch.columns, schema, strict=True)
            ]
        except (pa.ArrowException, ValueError) as error:
            raise InvalidArgument(f"SQL failed while running: a result column does not fit its type: {error}") from None
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def _batches(connection: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, duckdb.Error) as error:
                raise InvalidArgument(f"SQL failed while running: {error}") from None
            yield batch
    finally:
        connection.close()


def _all(list_page: Callable[[int, int], list[_Record]]) -> Iterator[_Record]:
    """Every record of a store's paged listing."""
    offset = 0
    while True:
        page = list_page(offset, _PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        offset += _PAGE


def parameters_from_arrow(table: pa.Table | None) -> list[Any] | None:
    """The values of a one-row parameter table, in column order; None when there is no table."""
    if table is None:
        return None
    if table.num_rows != 1:
        raise InvalidArgument(f"SQL parameters must be one row of values, got {table.num_rows} rows")
    return [column[0].as_py() for column in table.columns]
