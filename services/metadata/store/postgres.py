"""The PostgreSQL engine, for several metadata replicas over one database.

Writers in many processes stay correct because every write runs in one transaction that first takes
a transaction-level advisory lock (a datasource's id for its writes, ``CATALOG_LOCK`` for the
catalog), and only then reads what it depends on. Results and bulk loads move as Arrow through ADBC's
PostgreSQL driver (binary COPY), never row by row.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from thresher.core.types import FieldType
from thresher.services.metadata.annotations import to_json_text
from thresher.services.metadata.query_compiler import POSTGRES
from thresher.services.metadata.store.bulk_read import planned_rows
from thresher.services.metadata.store.dialect import FIELD_STORAGE, EngineDialect, Session, T, storage_array
from thresher.services.metadata.store.postgres_connections import ConnectionPool, run_transaction, without_password

log = logging.getLogger(__name__)

# How long DDL (adding a field's column, dropping a datasource) waits for readers before failing.
DDL_LOCK_TIMEOUT = "60s"
DEFAULT_BATCH_ROWS = 131072
# The statistics target of the analysis after a large first load (PostgreSQL samples 300 rows per unit).
FIRST_LOAD_STATISTICS_TARGET = 10
# How long one statement of SQL over the store (Flight SQL) may run before PostgreSQL cancels it.
SQL_STATEMENT_TIMEOUT = "300s"


class PostgresSession(Session):
    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        # Tables this transaction loaded first, to vacuum once it has committed (see ``after_first_load``).
        self.loaded: list[str] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(sql, tuple(params) if params else None)

    def table(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        self.cursor.execute(sql, tuple(params) if params else None)
        return self.cursor.fetch_arrow_table()

    def batches(self, sql: str, params: Sequence[Any], max_rows: int) -> Iterator[pa.RecordBatch]:
        self.cursor.execute(sql, tuple(params) if params else None)
        reader = self.cursor.fetch_record_batch()
        try:
            for batch in reader:
                for start in range(0, batch.num_rows, max_rows):
                    yield batch.slice(start, max_rows)
        finally:
            reader.close()

    def stage(self, name: str, table: pa.Table) -> None:
        self.cursor.adbc_ingest(name, table, mode="create", temporary=True)
        # The driver creates a JSON column for Arrow's JSON type; the tables it meets hold JSONB.
        for column in table.schema:
            if isinstance(column.type, pa.JsonType):
                self.cursor.execute(
                    f"ALTER TABLE {name} ALTER COLUMN {column.name} TYPE JSONB USING {column.name}::jsonb"
                )
        # A temporary table has no statistics until analysed; without them the planner may join a
        # large staged table to the current table by nested loops.
        self.cursor.execute(f"ANALYZE {name}")

    def unstage(self, name: str) -> None:
        self.cursor.execute(f"DROP TABLE {name}")

    def append(self, target: str, table: pa.Table) -> None:
        # Straight into the table with COPY: the columns the table lacks take their default (NULL).
        self.cursor.adbc_ingest(target, table, mode="append")


class PostgresDialect(EngineDialect):
    name = "postgres"
    # Query values are rendered as escaped, typed literals: with nothing bound, ADBC's driver reads the
    # result through COPY (binary, bulk) rather than row by row.
    query_dialect = POSTGRES
    single_writer = False
    # Strings compare byte-wise ("C"), as DuckDB and pandas do, whatever the cluster's locale.
    text_type = 'TEXT COLLATE "C"'
    bytes_type = "BYTEA"
    # Updates and the moves into the log find their rows by id without scanning the whole table.
    current_table_key = ", PRIMARY KEY (datapoint_id)"
    float_type = "DOUBLE PRECISION"
    row_key = "datapoint_id"
    index_after_first_load = True

    def __init__(self, url: str, pool_size: int = 16) -> None:
        self.location = without_password(url)
        self._pool = ConnectionPool(url, pool_size)

    def write(self, lock_key: int, work: Callable[[Session], T]) -> T:
        loaded: list[str] = []

        def locked(cursor: Any) -> T:
            session = PostgresSession(cursor)
            self.lock(session, lock_key)
            result = work(session)
            loaded[:] = session.loaded  # those of the attempt that commits (a retried one starts afresh)
            return result

        result = run_transaction(self._pool, locked)
        for table in loaded:
            self._vacuum(table)
        return result

    def _vacuum(self, table: str) -> None:
        """Vacuums ``table`` (a store table's name, never a caller's text) outside any transaction, as
        VACUUM must run. Its rows are committed already: a failure only leaves the work to autovacuum."""
        try:
            with self._pool.connection() as connection:
                connection.adbc_connection.set_autocommit(True)
                try:
                    with connection.cursor() as cursor:
                        # SKIP_LOCKED: a DDL or drop holding the table is not waited for.
                        cursor.execute(f"VACUUM (SKIP_LOCKED) {table}")
                finally:
                    connection.adbc_connection.set_autocommit(False)
        except Exception:  # noqa: BLE001 - the upload has committed; this is only its upkeep
            log.warning("could not vacuum %s after its first load; autovacuum will", table, exc_info=True)

    def lock(self, session: Session, key: int) -> None:
        session.table("SELECT pg_advisory_xact_lock($1)", [int(key)])

    def storage_array(self, kind: FieldType, array: pa.Array) -> pa.Array:
        # A JSONB column travels as Arrow's JSON type (text), which the driver copies into JSONB.
        if FIELD_STORAGE[kind].postgres == "JSONB":
            return pa.ExtensionArray.from_storage(pa.json_(), to_json_text(array))
        return storage_array(kind, array)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            yield PostgresSession(cursor)

    def stream(self, sql: str, params: Sequence[Any], max_rows: int) -> Iterator[pa.RecordBatch]:
        connection = self._pool.acquire()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, tuple(params) or None)
            reader = cursor.fetch_record_batch()
        except BaseException:
            self._pool.release(connection)
            raise
        batches = self._batches(connection, cursor, reader, max_rows or DEFAULT_BATCH_ROWS)
        next(batches)  # started, so that closing it unstarted still returns the connection
        return batches

    def stream_read_only(
        self, sql: str, params: Sequence[Any], max_rows: int
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        connection = self._pool.acquire()  # its transaction has just begun (the pool rolls back on release)
        try:
            cursor = connection.cursor()
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(f"SET LOCAL statement_timeout = '{SQL_STATEMENT_TIMEOUT}'")
            cursor.execute(sql, tuple(params) or None)
            reader = cursor.fetch_record_batch()
        except BaseException:
            self._pool.release(connection)
            raise
        batches = self._batches(connection, cursor, reader, max_rows or DEFAULT_BATCH_ROWS)
        next(batches)
        return reader.schema, batches

    def _batches(
        self, connection: Any, cursor: Any, reader: pa.RecordBatchReader, max_rows: int
    ) -> Iterator[pa.RecordBatch]:
        try:
            yield None
            for batch in reader:
                for start in range(0, batch.num_rows, max_rows):
                    yield batch.slice(start, max_rows)
        finally:
            try:
                reader.close()
                cursor.close()
            finally:
                self._pool.release(connection)

    def planned_rows(self, session: Session, sql: str, params: Sequence[Any]) -> int | None:
        # Planner statistics; the query is not run (the result is planned into partitions on this).
        if not isinstance(session, PostgresSession):
            raise TypeError(f"PostgreSQL plans rows in its own sessions, not in a {type(session).__name__}")
        return planned_rows(session.cursor, sql, params)

    def after_first_load(self, session: Session, table: str) -> None:
        # Without statistics the planner guesses half the rows live (``alive``'s default selectivity),
        # and GetFlightInfo plans a full result's partitions on that guess: a 1M-row result planned as
        # 500k rows fit one 500k-row partition and was read by one connection instead of two. The
        # updates that follow join against this table too. Autovacuum would analyse it only later.
        # A small sample (3,000 rows) is enough for the row count and each column's rough spread, and
        # takes 22 ms on 1M rows where the default (30,000) took 390 ms of the upload; autovacuum's
        # own analyses refine it as the table changes.
        session.execute(f"SET LOCAL default_statistics_target = {FIRST_LOAD_STATISTICS_TARGET}")
        session.execute(f"ANALYZE {table}")
        session.execute("RESET default_statistics_target")
        # Vacuumed once committed: that marks its pages all-visible, and a sequential scan then skips
        # the visibility check of each row (1M rows x 20 fields, against a copy not vacuumed, 7 rounds
        # in turns: a 3-predicate query's scan median 216 -> 182 ms; the full result's COPY, whose
        # cost is sending values, unchanged; 0.14 s of vacuum). The queries that follow a load would
        # otherwise run without it until autovacuum comes (its threshold for inserted rows), and this
        # vacuum does that work in its place.
        if isinstance(session, PostgresSession):
            session.loaded.append(table)

    def before_ddl(self, session: Session) -> None:
        session.execute(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")

    def close(self) -> None:
        self._pool.close()

    def list_contains(self, list_sql: str, value_sql: str) -> str:
        return f"({value_sql} = ANY({list_sql}))"

    def list_agg(self, value_sql: str, order_sql: str) -> str:
        return f"array_agg({value_sql} ORDER BY {order_sql})"

    def empty_text_list(self) -> str:
        return "'{}'::text[]"

    def last_by(self, value_sql: str, order_sql: str, condition: str, is_array: bool = False) -> str:
        if not is_array:
            return f"(array_agg({value_sql} ORDER BY {order_sql} DESC) FILTER (WHERE {condition}))[1]"
        # array_agg of arrays builds a 2-D array (and fails on NULLs or other lengths), so the arrays
        # travel as jsonb and are rebuilt; exact, as PostgreSQL prints a real with the digits that read
        # back to the same float.
        picked = f"(array_agg(to_jsonb({value_sql}) ORDER BY {order_sql} DESC) FILTER (WHERE {condition}))[1]"
        return (
            f"(SELECT array_agg(e::real ORDER BY n) FROM jsonb_array_elements_text({picked}) "
            "WITH ORDINALITY AS elements(e, n))"
        )
