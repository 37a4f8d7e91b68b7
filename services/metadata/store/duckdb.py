"""The embedded engine: one DuckDB file under ``$THRESHER_HOME``.

DuckDB allows one writing process, which is this service: writes are serialised by one lock in
this process (so records cached by the store stay exact), reads run concurrently on their own cursors.
Arrow tables are staged for a statement by registering them (zero copy).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from thresher.services.metadata.query_compiler import DUCKDB
from thresher.services.metadata.store.dialect import EngineDialect, Session, T
from thresher.services.server_extra import require

if TYPE_CHECKING:
    import duckdb
else:  # imported through require, so that a missing server extra is named (the checker reads the stubs)
    duckdb = require("duckdb")

# The most rows ``few_rows`` reads as Python values: a lookup by paths or a small page, not a result
# whose conversion would cost more than the Arrow export it avoids.
FEW_ROWS = 256
_FLAT_TYPES = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_boolean,
    pa.types.is_string,
    pa.types.is_timestamp,
)


def _is_flat(kind: pa.DataType) -> bool:
    return any(test(kind) for test in _FLAT_TYPES)


#: How much the write-ahead log may hold before DuckDB checkpoints it into the file.
CHECKPOINT_WAL = "512MB"
#: A commit estimated past this many bytes of log skips the log and checkpoints at once.
SKIP_WAL_BYTES = 256 * 1024 * 1024
#: The most rows of a query result's batch, whatever larger bound the caller allows: the flight service
#: sends a batch while DuckDB still produces the next, where one batch of 131072 rows (~20 MB over 20
#: fields) was sent only once produced. A 1M-row result through the services: ~310 -> ~230 ms (medians
#: of 4 runs each, load ~2); a 31k-row one, now two batches, went from 49 to 43 ms (medians, load ~3).
STREAM_BATCH_ROWS = 16384
#: DuckDB's compression methods the store never writes (see ``DuckDBDialect.__init__``).
DISABLED_COMPRESSION = "alp,alprd"


class DuckDBSession(Session):
    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        # Read to the end: an unread result keeps the connection busy (and would block a ROLLBACK).
        self.cursor.execute(sql, list(params)).fetchall()

    def table(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.cursor.sql(sql, params=list(params)).to_arrow_table()

    def batches(self, sql: str, params: Sequence[Any], max_rows: int) -> Iterator[pa.RecordBatch]:
        return iter(self.cursor.sql(sql, params=list(params)).to_arrow_reader(max_rows))

    def few_rows(self, sql: str, params: Sequence[Any], schema: pa.Schema, max_rows: int) -> pa.Table | None:
        # DuckDB's Arrow export hands a result to its worker threads and back, which costs more than
        # the lookup itself for a row or two (and much more on a busy machine); Python rows do not.
        # Only for flat types, whose Python values Arrow takes back exactly.
        if max_rows > FEW_ROWS or not all(_is_flat(field.type) for field in schema):
            return None
        try:
            rows = self.cursor.execute(sql, list(params)).fetchmany(max_rows)
            columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
            arrays = [pa.array(values, field.type) for values, field in zip(columns, schema, strict=True)]
            return pa.Table.from_arrays(arrays, schema=schema)
        except (ValueError, OverflowError, pa.ArrowException):
            # A value Python cannot hold (a datetime past year 9999, say): Arrow's export reads it.
            return None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # Python rows straight from the result: a record, a count or a RETURNING row is a few values,
        # which DuckDB's Arrow export (a hand-off to its worker threads and back) reads slower.
        return self.cursor.execute(sql, list(params)).fetchall()

    def stage(self, name: str, table: pa.Table) -> None:
        self.cursor.register(name, table)

    def unstage(self, name: str) -> None:
        self.cursor.unregister(name)


class DuckDBDialect(EngineDialect):
    name = "duckdb"
    query_dialect = DUCKDB
    single_writer = True
    text_type = "VARCHAR"
    bytes_type = "BLOB"
    # No index: DuckDB joins by hashing whole columns, and an index would slow every bulk insert.
    current_table_key = ""
    float_type = "DOUBLE"
    # Rows are never deleted from a current table and updates keep their place, so a row's position,
    # read in the same transaction, finds it again without joining on a stored column.
    row_key = "rowid"

    def __init__(self, path: str) -> None:
        self.location = path if path == ":memory:" else os.path.abspath(path)
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._con = duckdb.connect(path)
        self._con.execute("SET TimeZone = 'UTC'")
        # Commits go to the write-ahead log (fsynced, replayed after a crash) and the file is rewritten
        # by a checkpoint once the log holds CHECKPOINT_WAL of writes. DuckDB's defaults (16 MiB; a
        # commit estimated past 100 kB skips the log and checkpoints at once) made every update of an
        # upload's size checkpoint the whole store: rewrite each row group it touched and serialise the
        # path index anew. Large appends still go straight to the file (optimistic writes) either way.
        self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_WAL}'")
        self._con.execute(f"SET auto_checkpoint_skip_wal_threshold = {SKIP_WAL_BYTES}")
        # Floating-point columns are stored plain. DuckDB's ALP and ALP-RD save little on the doubles
        # metadata holds (scores, embeddings' statistics: mostly full precision) and decoding them was
        # most of what a scan of the store cost over the same table in memory: a 3-predicate query over
        # 1M datapoints x 20 fields spent 52 ms of CPU against 44 ms plain and 39 ms in memory.
        self._con.execute(f"SET disabled_compression_methods = '{DISABLED_COMPRESSION}'")
        self._lock = threading.RLock()
        self._opening = threading.Lock()
        # Each thread keeps a cursor for short reads: opening one (and setting its time zone) costs
        # about as much as a lookup by path.
        self._idle = threading.local()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        # A DuckDB connection object is not thread-safe, and opening a cursor uses it: request threads
        # and the path index's reader open theirs one at a time.
        with self._opening:
            cursor = self._con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def write(self, lock_key: int, work: Callable[[Session], T]) -> T:
        with self._lock, self._cursor() as cursor:
            cursor.execute("BEGIN")
            try:
                result = work(DuckDBSession(cursor))
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            return result

    def lock(self, session: Session, key: int) -> None:
        pass  # every write already holds the one lock of this process

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        # The thread's idle cursor when it has one (a read inside a read opens another). Every
        # statement commits on its own, so a reused cursor sees every write committed before it.
        cursor = getattr(self._idle, "cursor", None) or self._cursor()
        self._idle.cursor = None
        try:
            yield DuckDBSession(cursor)
        except BaseException:
            cursor.close()
            raise
        self._idle.cursor = cursor

    def stream(self, sql: str, params: Sequence[Any], max_rows: int) -> Iterator[pa.RecordBatch]:
        cursor = self._cursor()
        try:
            reader = cursor.sql(sql, params=list(params)).to_arrow_reader(min(max_rows, STREAM_BATCH_ROWS))
        except BaseException:
            cursor.close()
            raise
        return self._batches(cursor, reader)

    def stream_read_only(
        self, sql: str, params: Sequence[Any], max_rows: int
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        cursor = self._cursor()
        try:
            # Refused writes are the statement's check's job; this makes them impossible in this cursor too.
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            reader = cursor.sql(sql, params=list(params)).to_arrow_reader(max_rows)
        except BaseException:
            cursor.close()
            raise
        return reader.schema, self._batches(cursor, reader)  # closing the cursor ends the transaction

    @staticmethod
    def _batches(cursor: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            cursor.close()

    def before_ddl(self, session: Session) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def list_contains(self, list_sql: str, value_sql: str) -> str:
        return f"list_contains({list_sql}, {value_sql})"

    def list_agg(self, value_sql: str, order_sql: str) -> str:
        return f"list({value_sql} ORDER BY {order_sql})"

    def empty_text_list(self) -> str:
        return "[]::VARCHAR[]"

    def last_by(self, value_sql: str, order_sql: str, condition: str, is_array: bool = False) -> str:
        # Wrapped in a struct so that a NULL value still wins (arg_max skips NULL arguments).
        return f"(arg_max({{'v': {value_sql}}}, {order_sql}) FILTER (WHERE {condition})).v"
