"""The PostgreSQL store, for several metadata replicas over one database (layout described in ``base``).

It behaves exactly as the DuckDB store does; what differs is how writers from many processes stay
correct. Every write to a datasource runs in one transaction that first takes a transaction-level
advisory lock on the datasource's id, and only then reads the datasource's fields: so a field's type
is fixed exactly once when two replicas race to create it, datapoint ids are assigned without gaps
or collisions, and no update is lost. Creating datasources takes one catalog-wide lock. Unique
constraints (names per namespace, paths per datasource) are the last line of defence.

Write times come from the database's clock and strictly increase per datasource while its lock is
held, so write ids and write times agree and ``as_of(t)`` has one answer for every ``t``.

Results and bulk writes move as Arrow through ADBC's PostgreSQL driver. Every statement takes its
values as ``$n`` parameters; identifiers are the store's own (``cur_<id>``, ``log_<id>``, ``f<id>``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.scan import ScanStatus
from thresher.storage.blobs import BlobStore
from thresher.types import TYPE_METADATA_KEY, FieldType
from thresher.v1 import common_pb2

from ..coercion import duplicate_path_error
from .. import nearest, vectors
from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..query_compiler import POSTGRES, Column, compile_query, timestamp_or_none
from ..validation import validate_bag_uri, validate_datasource_name, validate_namespace
from .base import Store, utc_now
from .catalog_reads import BAG_DATASET_COLUMNS, CatalogReads
from .common import (LOG_OPERATIONS, OP_DELETE_DATAPOINT, OP_DELETE_VALUES, OP_UPSERT, check_new_datasource,
                     check_reuse, check_same_type, coerce_write, conform, field_id, result_schema,
                     timed_select_items)
from .postgres_connections import ConnectionPool, run_transaction
from .records import BagDatasetRecord, DatasetRecord, DatasourceRecord, FieldRecord, NamespaceRecord, WriteResult

log = logging.getLogger(__name__)

_SQL_TYPES = {
    FieldType.INT: "BIGINT",
    FieldType.FLOAT: "DOUBLE PRECISION",
    FieldType.BOOL: "BOOLEAN",
    FieldType.STRING: 'TEXT COLLATE "C"',
    FieldType.DATETIME: "TIMESTAMPTZ",
    FieldType.BLOB: 'TEXT COLLATE "C"',
}

# Strings compare byte-wise ("C"), as DuckDB and pandas do, whatever the cluster's locale.
_SCHEMA = [
    "CREATE SEQUENCE IF NOT EXISTS datasource_ids",
    "CREATE SEQUENCE IF NOT EXISTS dataset_ids",
    "CREATE SEQUENCE IF NOT EXISTS write_ids",
    """CREATE TABLE IF NOT EXISTS namespaces (
        name TEXT COLLATE "C" PRIMARY KEY, repository_uri TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS datasources (
        id BIGINT PRIMARY KEY, namespace TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        source_uri TEXT NOT NULL, revision TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        scan_state TEXT NOT NULL, files_seen BIGINT NOT NULL, datapoints_added BIGINT NOT NULL,
        datapoints_updated BIGINT NOT NULL, datapoints_removed BIGINT NOT NULL,
        files_per_second DOUBLE PRECISION NOT NULL, failure_reason TEXT NOT NULL,
        scan_started_at TIMESTAMPTZ, scan_finished_at TIMESTAMPTZ, UNIQUE (namespace, name))""",
    """CREATE TABLE IF NOT EXISTS fields (
        datasource_id BIGINT NOT NULL, field_id INTEGER NOT NULL, name TEXT COLLATE "C" NOT NULL,
        type TEXT NOT NULL, tags TEXT[] NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (datasource_id, name), UNIQUE (datasource_id, field_id))""",
    """CREATE TABLE IF NOT EXISTS datasets (
        id BIGINT PRIMARY KEY, namespace TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        datasource_id BIGINT NOT NULL, query BYTEA NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        UNIQUE (namespace, name))""",
    """CREATE TABLE IF NOT EXISTS bag_datasets (
        namespace TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, uri TEXT NOT NULL,
        registered_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (namespace, name))""",
    """CREATE TABLE IF NOT EXISTS writes (
        write_id BIGINT PRIMARY KEY, datasource_id BIGINT NOT NULL, written_at TIMESTAMPTZ NOT NULL,
        actor TEXT NOT NULL, kind TEXT NOT NULL, rows BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS writes_by_datasource ON writes (datasource_id, written_at)",
]

_DATASOURCE_COLUMNS = ("id, namespace, name, source_uri, revision, created_at, scan_state, files_seen, "
                       "datapoints_added, datapoints_updated, datapoints_removed, files_per_second, "
                       "failure_reason, scan_started_at, scan_finished_at")

# Advisory lock keys: a datasource's id (positive) for its writes; this one for the catalog.
_CATALOG_LOCK = -1
# How long DDL (adding a field's column, dropping a datasource) waits for readers before failing.
_DDL_LOCK_TIMEOUT = "60s"
DEFAULT_BATCH_ROWS = 131072


def _current(datasource_id: int) -> str:
    return f"cur_{int(datasource_id)}"


def _log(datasource_id: int) -> str:
    return f"log_{int(datasource_id)}"


def _rows(cursor: Any, sql: str, params: Sequence = ()) -> list[tuple]:
    cursor.execute(sql, tuple(params) if params else None)
    table = cursor.fetch_arrow_table()
    return list(zip(*(column.to_pylist() for column in table.columns)))


def _one(cursor: Any, sql: str, params: Sequence = ()) -> tuple | None:
    rows = _rows(cursor, sql, params)
    return rows[0] if rows else None


def _lock(cursor: Any, key: int) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock($1)", (int(key),))
    cursor.fetchall()


class PostgresStore(CatalogReads, Store):
    """The store over the PostgreSQL database at ``url`` (``postgresql://user:password@host:port/db``)."""

    dialect = POSTGRES

    def __init__(self, url: str, blobs: BlobStore, pool_size: int = 16) -> None:
        self._pool = ConnectionPool(url, pool_size)
        self._blobs = blobs
        run_transaction(self._pool, self._create_schema)

    @staticmethod
    def _create_schema(cursor: Any) -> None:
        # Replicas starting together would race on CREATE ... IF NOT EXISTS; the lock orders them.
        _lock(cursor, _CATALOG_LOCK)
        for statement in _SCHEMA:
            cursor.execute(statement)

    def close(self) -> None:
        self._pool.close()

    def _rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            return _rows(cursor, sql, params)

    # Namespaces ---------------------------------------------------------------------------------

    def create_namespace(self, name: str, repository_uri: str = "") -> NamespaceRecord:
        validate_namespace(name)
        record = NamespaceRecord(name, repository_uri, utc_now())

        def work(cursor: Any) -> None:
            inserted = _one(cursor, "INSERT INTO namespaces VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING name",
                            [name, repository_uri, record.created_at])
            if inserted is None:
                raise AlreadyExists(f"namespace {name!r} already exists")

        run_transaction(self._pool, work)
        return record

    @staticmethod
    def _ensure_namespace(cursor: Any, name: str) -> None:
        validate_namespace(name)
        cursor.execute("INSERT INTO namespaces VALUES ($1, '', $2) ON CONFLICT DO NOTHING", (name, utc_now()))

    # Datasources --------------------------------------------------------------------------------

    def _create_datasource(self, namespace: str, name: str, source_uri: str, revision: str,
                           reuse: bool) -> tuple[DatasourceRecord, bool]:
        check_new_datasource(namespace, name, source_uri)

        def work(cursor: Any) -> tuple[int, bool]:
            _lock(cursor, _CATALOG_LOCK)
            existing = _one(cursor, f"SELECT {_DATASOURCE_COLUMNS} FROM datasources WHERE namespace = $1 AND name = $2",
                            [namespace, name])
            if existing is not None:
                check_reuse(self._datasource_record(cursor, existing), source_uri, revision, reuse)
                return existing[0], False
            self._ensure_namespace(cursor, namespace)
            datasource_id = _one(cursor, "SELECT nextval('datasource_ids')")[0]
            cursor.execute(f"INSERT INTO datasources ({_DATASOURCE_COLUMNS}) "
                           "VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, 0, 0, 0, 0, '', NULL, NULL)",
                           (datasource_id, namespace, name, source_uri, revision, utc_now()))
            cursor.execute(f"CREATE TABLE {_current(datasource_id)} (datapoint_id BIGINT PRIMARY KEY, "
                           'path TEXT COLLATE "C" NOT NULL UNIQUE, alive BOOLEAN NOT NULL)')
            cursor.execute(f"CREATE TABLE {_log(datasource_id)} (write_id BIGINT NOT NULL, "
                           "datapoint_id BIGINT NOT NULL, op SMALLINT NOT NULL, cleared INTEGER[])")
            return datasource_id, True

        datasource_id, created = run_transaction(self._pool, work)
        return self.get_datasource(datasource_id), created

    def get_datasource(self, datasource_id: int) -> DatasourceRecord:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            return self._datasource(cursor, datasource_id)

    def _datasource(self, cursor: Any, datasource_id: int) -> DatasourceRecord:
        row = _one(cursor, f"SELECT {_DATASOURCE_COLUMNS} FROM datasources WHERE id = $1", [datasource_id])
        if row is None:
            raise NotFound(f"datasource {datasource_id} not found")
        return self._datasource_record(cursor, row)

    def find_datasource(self, namespace: str, name: str) -> DatasourceRecord:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            row = _one(cursor, f"SELECT {_DATASOURCE_COLUMNS} FROM datasources WHERE namespace = $1 AND name = $2",
                       [namespace, name])
            if row is None:
                raise NotFound(f"datasource {name!r} not found in namespace {namespace!r}")
            return self._datasource_record(cursor, row)

    def list_datasources(self, namespace: str, offset: int, limit: int) -> list[DatasourceRecord]:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            rows = _rows(cursor, f"SELECT {_DATASOURCE_COLUMNS} FROM datasources WHERE namespace = $1 "
                                 "ORDER BY id LIMIT $2 OFFSET $3", [namespace, limit, offset])
            return [self._datasource_record(cursor, row) for row in rows]

    def _datasource_record(self, cursor: Any, row: tuple) -> DatasourceRecord:
        (datasource_id, namespace, name, source_uri, revision, created_at, *scan) = row
        return DatasourceRecord(datasource_id, namespace, name, source_uri, revision, created_at,
                                ScanStatus(*scan), self._fields(cursor, datasource_id))

    @staticmethod
    def _fields(cursor: Any, datasource_id: int, at: dt.datetime | None = None) -> list[FieldRecord]:
        sql = "SELECT name, type, tags, created_at, field_id FROM fields WHERE datasource_id = $1"
        params: list = [datasource_id]
        if at is not None:
            sql += " AND created_at <= $2"
            params.append(at)
        rows = _rows(cursor, sql + " ORDER BY field_id", params)
        return [vectors.field_record(name, kind, tuple(tags), created, f"f{number}")
                for name, kind, tags, created, number in rows]

    def _locked_fields(self, cursor: Any, datasource_id: int) -> dict[str, FieldRecord]:
        """Takes the datasource's write lock, then reads its fields (NotFound when it is gone)."""
        _lock(cursor, datasource_id)
        return {f.name: f for f in self._datasource(cursor, datasource_id).fields}

    def delete_datasource(self, datasource_id: int) -> None:
        def work(cursor: Any) -> None:
            self._locked_fields(cursor, datasource_id)
            for statement in ("DELETE FROM datasets WHERE datasource_id = $1", "DELETE FROM fields WHERE datasource_id = $1",
                              "DELETE FROM datasources WHERE id = $1"):
                cursor.execute(statement, (datasource_id,))
            cursor.execute(f"SET LOCAL lock_timeout = '{_DDL_LOCK_TIMEOUT}'")
            cursor.execute(f"DROP TABLE {_current(datasource_id)}")
            cursor.execute(f"DROP TABLE {_log(datasource_id)}")

        run_transaction(self._pool, work)

    def update_scan(self, datasource_id: int, scan: ScanStatus) -> DatasourceRecord:
        def work(cursor: Any) -> None:
            updated = _one(cursor,
                           "UPDATE datasources SET scan_state = $1, files_seen = $2, datapoints_added = $3, "
                           "datapoints_updated = $4, datapoints_removed = $5, files_per_second = $6, "
                           "failure_reason = $7, scan_started_at = $8::timestamptz, "
                           "scan_finished_at = $9::timestamptz WHERE id = $10 RETURNING id",
                           [scan.state, scan.files_seen, scan.datapoints_added, scan.datapoints_updated,
                            scan.datapoints_removed, float(scan.files_per_second), scan.failure_reason,
                            scan.started_at, scan.finished_at, datasource_id])
            if updated is None:
                raise NotFound(f"datasource {datasource_id} not found")

        run_transaction(self._pool, work)
        return self.get_datasource(datasource_id)

    # Fields and metadata ------------------------------------------------------------------------

    def define_fields(self, datasource_id: int,
                      fields: Sequence[tuple[str, FieldType, tuple[str, ...]]]) -> list[FieldRecord]:
        def work(cursor: Any) -> list[FieldRecord]:
            known = self._locked_fields(cursor, datasource_id)
            wanted: dict[str, tuple[FieldType, tuple[str, ...]]] = {}
            for name, kind, tags in fields:
                check_same_type(name, known.get(name), kind)
                wanted[name] = (kind, tuple(tags))
            now = self._write_time(cursor, datasource_id)
            self._add_fields(cursor, datasource_id, known, [(n, k, t) for n, (k, t) in wanted.items() if n not in known],
                             now)
            for name, (_, tags) in wanted.items():
                if name in known and tags:
                    # Appends the new tags, keeping the first occurrence of each in order.
                    cursor.execute("UPDATE fields SET tags = ARRAY(SELECT t FROM unnest(tags || $1::text[]) "
                                   "WITH ORDINALITY AS u(t, i) GROUP BY t ORDER BY min(i)) "
                                   "WHERE datasource_id = $2 AND name = $3", (list(tags), datasource_id, name))
            return [f for f in self._fields(cursor, datasource_id) if f.name in wanted]

        return run_transaction(self._pool, work)

    @staticmethod
    def _add_fields(cursor: Any, datasource_id: int, known: dict[str, FieldRecord],
                    new: Sequence[tuple[str, FieldType, tuple[str, ...]]], now: dt.datetime) -> dict[str, FieldRecord]:
        """Creates fields inside the caller's transaction (which holds the lock); returns every field by name."""
        if not new:
            return known
        next_id = _one(cursor, "SELECT coalesce(max(field_id), 0) + 1 FROM fields WHERE datasource_id = $1",
                       [datasource_id])[0]
        fields = dict(known)
        cursor.execute(f"SET LOCAL lock_timeout = '{_DDL_LOCK_TIMEOUT}'")
        for offset, (name, kind, tags) in enumerate(new):
            number = next_id + offset
            column = f"f{number}"
            cursor.execute("INSERT INTO fields VALUES ($1, $2, $3, $4, $5::text[], $6)",
                           (datasource_id, number, name, vectors.stored_type_name(kind), list(tags), now))
            for table in (_current(datasource_id), _log(datasource_id)):
                cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {vectors.sql_type(kind, _SQL_TYPES, 'postgres')}")
            fields[name] = vectors.field_record(name, kind, tuple(tags), now, column)
        cursor.execute("SET LOCAL lock_timeout = 0")
        return fields

    @staticmethod
    def _write_time(cursor: Any, datasource_id: int) -> dt.datetime:
        """The database's clock, but strictly after the datasource's last write (the caller holds its lock)."""
        return _one(cursor, "SELECT greatest(clock_timestamp(), (SELECT max(written_at) FROM writes "
                            "WHERE datasource_id = $1) + interval '1 microsecond')", [datasource_id])[0]

    @staticmethod
    def _begin_write(cursor: Any, datasource_id: int, now: dt.datetime, actor: str, kind: str, rows: int) -> int:
        return _one(cursor, "INSERT INTO writes VALUES (nextval('write_ids'), $1, $2, $3, $4, $5) RETURNING write_id",
                    [datasource_id, now, actor, kind, rows])[0]

    def upsert(self, datasource_id: int, table: pa.Table, path_column: str, actor: str) -> WriteResult:
        def work(cursor: Any) -> WriteResult:
            known = self._locked_fields(cursor, datasource_id)
            paths, columns = coerce_write(table, path_column, known)
            if len(paths) == 0:
                return WriteResult(0, 0)
            values = {}
            for column in columns:
                array = column.values
                if column.type is FieldType.BLOB:
                    # Content-addressed, so bytes stored by a write that then fails are harmless.
                    array = pa.array(self._blobs.put_many(array.to_pylist()), pa.string())
                values[column.name] = array.cast(column.type.arrow_type)
            now = self._write_time(cursor, datasource_id)
            fields = self._add_fields(cursor, datasource_id, known,
                                      [(c.name, vectors.new_field_kind(c), ()) for c in columns if c.name not in known], now)
            return self._write_values(cursor, datasource_id, paths,
                                      {fields[name].column: array for name, array in values.items()}, actor, now)

        return run_transaction(self._pool, work)

    def _write_values(self, cursor: Any, datasource_id: int, paths: pa.Array, values: dict[str, pa.Array],
                      actor: str, now: dt.datetime) -> WriteResult:
        current, history = _current(datasource_id), _log(datasource_id)
        count = len(paths)
        paths = paths.cast(pa.string())
        cursor.adbc_ingest("staged_paths", pa.table({"path": paths, "row_index": np.arange(count, dtype=np.int64)}),
                           mode="create", temporary=True)
        duplicate = _one(cursor, "SELECT path FROM staged_paths GROUP BY path HAVING count(*) > 1 LIMIT 1")
        if duplicate is not None:
            raise duplicate_path_error(duplicate[0])
        cursor.execute("SELECT s.row_index, c.datapoint_id, c.alive FROM staged_paths s "
                       f"JOIN {current} c ON c.path = s.path")
        found = cursor.fetch_arrow_table()
        cursor.execute("DROP TABLE staged_paths")
        ids = np.full(count, -1, dtype=np.int64)
        ids[found["row_index"].to_numpy()] = found["datapoint_id"].to_numpy()
        is_new = ids < 0
        new_count = int(is_new.sum())
        revived = int(np.count_nonzero(~found["alive"].to_numpy(zero_copy_only=False)))
        if new_count:
            first = _one(cursor, f"SELECT coalesce(max(datapoint_id), 0) + 1 FROM {current}")[0]
            ids[is_new] = np.arange(first, first + new_count, dtype=np.int64)
        names = list(values)
        cursor.adbc_ingest("staged_values", pa.table({"datapoint_id": ids, "path": paths, "is_new": is_new, **values}),
                           mode="create", temporary=True)
        write_id = self._begin_write(cursor, datasource_id, now, actor, "upsert", count)
        value_list = "".join(f", {name}" for name in names)
        cursor.execute(f"INSERT INTO {history} (write_id, datapoint_id, op{value_list}) "
                       f"SELECT $1, datapoint_id, {OP_UPSERT}{value_list} FROM staged_values", (write_id,))
        if new_count:
            cursor.execute(f"INSERT INTO {current} (datapoint_id, path, alive{value_list}) "
                           f"SELECT datapoint_id, path, TRUE{value_list} FROM staged_values WHERE is_new")
        if new_count < count:
            assignments = "".join(f", {n} = coalesce(s.{n}, {current}.{n})" for n in names)
            cursor.execute(f"UPDATE {current} SET alive = TRUE{assignments} FROM staged_values s "
                           f"WHERE {current}.datapoint_id = s.datapoint_id AND NOT s.is_new")
        cursor.execute("DROP TABLE staged_values")
        return WriteResult(count, new_count + revived)

    @staticmethod
    def _live_ids(cursor: Any, datasource_id: int, paths: Sequence[str]) -> list[int]:
        """The ids of live datapoints at ``paths``; NotFound names the first path that has none."""
        unique = list(dict.fromkeys(paths))
        cursor.execute(f"SELECT r.path, c.datapoint_id FROM unnest($1::text[]) WITH ORDINALITY AS r(path, i) "
                       f"LEFT JOIN {_current(datasource_id)} c ON c.path = r.path AND c.alive ORDER BY r.i", (unique,))
        found = cursor.fetch_arrow_table()
        missing = found.filter(pc.is_null(found["datapoint_id"]))
        if missing.num_rows:
            raise NotFound(f"datapoint {missing['path'][0].as_py()!r} not found in datasource {datasource_id}")
        return found["datapoint_id"].to_pylist()

    def delete_metadata(self, datasource_id: int, paths: Sequence[str], fields: Sequence[str], actor: str) -> int:
        def work(cursor: Any) -> int:
            known = self._locked_fields(cursor, datasource_id)
            for name in fields:
                if name not in known:
                    raise NotFound(f"field {name!r} not found in datasource {datasource_id}")
            chosen = [known[name] for name in dict.fromkeys(fields)] if fields else list(known.values())
            if not paths or not chosen:
                return 0
            current = _current(datasource_id)
            ids = self._live_ids(cursor, datasource_id, paths)
            present = " + ".join(f"({f.column} IS NOT NULL)::INTEGER" for f in chosen)
            deleted = _one(cursor, f"SELECT coalesce(sum({present}), 0)::BIGINT FROM {current} "
                                   "WHERE datapoint_id = ANY($1::bigint[])", [ids])[0]
            write_id = self._begin_write(cursor, datasource_id, self._write_time(cursor, datasource_id), actor,
                                         "delete_metadata", len(ids))
            cursor.execute(f"INSERT INTO {_log(datasource_id)} (write_id, datapoint_id, op, cleared) "
                           f"SELECT $1, unnest($2::bigint[]), {OP_DELETE_VALUES}, $3::integer[]",
                           (write_id, ids, [field_id(f) for f in chosen]))
            assignments = ", ".join(f"{f.column} = NULL" for f in chosen)
            cursor.execute(f"UPDATE {current} SET {assignments} WHERE datapoint_id = ANY($1::bigint[])", (ids,))
            return int(deleted)

        return run_transaction(self._pool, work)

    def delete_datapoints(self, datasource_id: int, paths: Sequence[str], actor: str) -> int:
        def work(cursor: Any) -> int:
            known = self._locked_fields(cursor, datasource_id).values()
            if not paths:
                return 0
            ids = self._live_ids(cursor, datasource_id, paths)
            write_id = self._begin_write(cursor, datasource_id, self._write_time(cursor, datasource_id), actor,
                                         "delete_datapoints", len(ids))
            cursor.execute(f"INSERT INTO {_log(datasource_id)} (write_id, datapoint_id, op) "
                           f"SELECT $1, unnest($2::bigint[]), {OP_DELETE_DATAPOINT}", (write_id, ids))
            assignments = "".join(f", {f.column} = NULL" for f in known)
            cursor.execute(f"UPDATE {_current(datasource_id)} SET alive = FALSE{assignments} "
                           "WHERE datapoint_id = ANY($1::bigint[])", (ids,))
            return len(ids)

        return run_transaction(self._pool, work)

    # Queries ------------------------------------------------------------------------------------

    def _compile(self, cursor: Any, query: common_pb2.Query):
        datasource = self._datasource(cursor, query.datasource_id)
        as_of = timestamp_or_none(query.as_of)
        if as_of is None:
            fields, base, params, row_filter = datasource.fields, _current(datasource.id), [], "alive"
        else:
            fields = self._fields(cursor, datasource.id, at=as_of)
            base, params = self._as_of_relation(datasource.id, fields, self._last_write_before(cursor, datasource.id, as_of))
            row_filter = ""
        columns = {f.name: Column(f.column, f.type, f.vector) for f in fields}
        query, relation, params = self._with_fields_at_other_times(cursor, query, datasource.id, base, params, columns)
        compiled = compile_query(query, columns, relation, POSTGRES, relation_params=params, row_filter=row_filter)
        # PostgreSQL 15 wants every subquery in FROM named.
        compiled.count_sql += " AS counted"
        return datasource, compiled

    @staticmethod
    def _last_write_before(cursor: Any, datasource_id: int, at: dt.datetime) -> int:
        row = _one(cursor, "SELECT max(write_id) FROM writes WHERE datasource_id = $1 AND written_at <= $2",
                   [datasource_id, at])
        return -1 if row is None or row[0] is None else row[0]

    @staticmethod
    def _latest_value(column: str, number: int) -> str:
        """The aggregate giving a field's value after the last log row that touched it."""
        touched = (f"(op = {OP_UPSERT} AND {column} IS NOT NULL) OR "
                   f"(op = {OP_DELETE_VALUES} AND {number} = ANY(cleared)) OR op = {OP_DELETE_DATAPOINT}")
        return f"(array_agg({column} ORDER BY write_id DESC) FILTER (WHERE {touched}))[1]"

    def _as_of_relation(self, datasource_id: int, fields: Sequence[FieldRecord], last_write: int) -> tuple[str, list]:
        """A subquery with each datapoint's values as they were after write ``last_write``, from the log.

        Its one parameter is ``$1``: relation parameters come first.
        """
        selected = "".join(f", {vectors.postgres_latest_value(f, field_id(f), self._latest_value)} AS {f.column}" for f in fields)
        outer = "".join(f", g.{f.column}" for f in fields)
        relation = (f"(SELECT g.datapoint_id, c.path{outer} FROM (SELECT datapoint_id, "
                    f"(array_agg(op ORDER BY write_id DESC) FILTER (WHERE op <> {OP_DELETE_VALUES}))[1] AS last_op"
                    f"{selected} FROM {_log(datasource_id)} WHERE write_id <= $1 GROUP BY datapoint_id) g "
                    f"JOIN {_current(datasource_id)} c ON c.datapoint_id = g.datapoint_id "
                    f"WHERE g.last_op = {OP_UPSERT})")
        return relation, [last_write]

    def _with_fields_at_other_times(self, cursor: Any, query: common_pb2.Query, datasource_id: int, base: str,
                                    params: list, columns: dict[str, Column]) -> tuple[common_pb2.Query, str, list]:
        """Joins one log-derived column per select item that reads its field at its own instant."""
        query, timed = timed_select_items(query, columns, lambda at: self._fields(cursor, datasource_id, at=at))
        if not timed:
            # PostgreSQL 15 wants every subquery in FROM named.
            return query, (f"{base} AS rows" if base.startswith("(") else base), params
        joins, extra, params = [], [], list(params)
        for name, field, at in timed:
            params.append(self._last_write_before(cursor, datasource_id, at))
            joins.append(f"LEFT JOIN (SELECT datapoint_id, {vectors.postgres_latest_value(field, field_id(field), self._latest_value)} "
                         f"AS v FROM {_log(datasource_id)} WHERE write_id <= ${len(params)} GROUP BY datapoint_id) "
                         f"{name} ON {name}.datapoint_id = base.datapoint_id")
            extra.append(f", {name}.v AS {name}")
        relation = f"(SELECT base.*{''.join(extra)} FROM {base} AS base {' '.join(joins)}) AS timed"
        return query, relation, params

    def query(self, query: common_pb2.Query, max_batch_rows: int = 0) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        if nearest.is_nearest(query):
            return nearest.query(self, query, max_batch_rows)
        connection = self._pool.acquire()
        try:
            cursor = connection.cursor()
            datasource, compiled = self._compile(cursor, query)
            schema = result_schema(datasource, compiled.columns)
            cursor.execute(compiled.sql, tuple(compiled.params) or None)
            reader = cursor.fetch_record_batch()
        except BaseException:
            self._pool.release(connection)
            raise
        batches = self._batches(connection, cursor, reader, schema, max_batch_rows or DEFAULT_BATCH_ROWS)
        next(batches)  # started, so that closing it unstarted still returns the connection
        return schema, batches

    def _batches(self, connection: Any, cursor: Any, reader: pa.RecordBatchReader, schema: pa.Schema,
                 max_rows: int) -> Iterator[pa.RecordBatch]:
        try:
            yield None  # type: ignore[misc]
            for batch in reader:
                batch = conform(batch, schema)
                for start in range(0, batch.num_rows, max_rows):
                    yield batch.slice(start, max_rows)
        finally:
            try:
                reader.close()
                cursor.close()
            finally:
                self._pool.release(connection)

    def describe(self, query: common_pb2.Query) -> tuple[pa.Schema, int]:
        if nearest.is_nearest(query):
            return nearest.describe(self, query)
        with self._pool.connection() as connection, connection.cursor() as cursor:
            datasource, compiled = self._compile(cursor, query)
            total = _one(cursor, compiled.count_sql, compiled.count_params)[0]
        return result_schema(datasource, compiled.columns), int(total)

    def history(self, datasource_id: int, path: str, field: str | None = None) -> pa.Table:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            known = self._datasource(cursor, datasource_id).fields
            chosen = [f for f in known if f.name == field] if field else known
            if field and not chosen:
                raise NotFound(f"field {field!r} not found in datasource {datasource_id}")
            condition, params = "c.path = $2", [path]
            if field:
                only = chosen[0]
                condition += (f" AND ((l.op = {OP_UPSERT} AND l.{only.column} IS NOT NULL) OR l.op = {OP_DELETE_DATAPOINT}"
                              f" OR (l.op = {OP_DELETE_VALUES} AND {field_id(only)} = ANY(l.cleared)))")
            table = self._log_rows(cursor, datasource_id, chosen, condition, params)
            if table.num_rows == 0 and _one(cursor, f"SELECT 1 FROM {_current(datasource_id)} WHERE path = $1",
                                            [path]) is None:
                raise NotFound(f"datapoint {path!r} not found in datasource {datasource_id}")
            return table

    def changes(self, datasource_id: int, since: dt.datetime | None, until: dt.datetime | None) -> pa.Table:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            fields = self._datasource(cursor, datasource_id).fields
            conditions, params = ["TRUE"], []
            for bound, operator in ((since, ">="), (until, "<=")):
                if bound is not None:
                    params.append(bound)
                    conditions.append(f"w.written_at {operator} ${len(params) + 1}")
            return self._log_rows(cursor, datasource_id, fields, " AND ".join(conditions), params)

    @staticmethod
    def _log_rows(cursor: Any, datasource_id: int, fields: Sequence[FieldRecord], condition: str,
                  params: list) -> pa.Table:
        """Log rows with when, who and what: one row per datapoint per write, values as written.

        ``condition`` numbers its parameters from ``$2``; ``$1`` is the datasource id.
        """
        values = "".join(f", l.{f.column}" for f in fields)
        operation = " ".join(f"WHEN {op} THEN '{name}'" for op, name in LOG_OPERATIONS.items())
        sql = (f"SELECT w.written_at, w.actor, l.write_id, c.path, CASE l.op {operation} END AS operation, "
               f"coalesce((SELECT array_agg(f.name ORDER BY f.field_id) FROM fields f WHERE f.datasource_id = $1 "
               f"AND f.field_id = ANY(l.cleared)), '{{}}'::text[]) AS cleared{values} "
               f"FROM {_log(datasource_id)} l JOIN writes w ON w.write_id = l.write_id "
               f"JOIN {_current(datasource_id)} c ON c.datapoint_id = l.datapoint_id "
               f"WHERE {condition} ORDER BY l.write_id, c.path")
        cursor.execute(sql, (datasource_id, *params))
        table = cursor.fetch_arrow_table()
        schema = pa.schema([pa.field("written_at", pa.timestamp("us", tz="UTC")), pa.field("actor", pa.string()),
                            pa.field("write_id", pa.int64()), pa.field("path", pa.string()),
                            pa.field("operation", pa.string()), pa.field("cleared", pa.list_(pa.string()))]
                           + [pa.field(f.name, vectors.arrow_type(f.type, f.vector), metadata={TYPE_METADATA_KEY: f.type.value.encode()})
                              for f in fields])
        return conform(table, schema)

    # Datasets -----------------------------------------------------------------------------------

    def save_dataset(self, namespace: str, name: str, datasource_id: int, query: bytes) -> DatasetRecord:
        validate_namespace(namespace)
        validate_datasource_name(name, what="dataset")

        def work(cursor: Any) -> int:
            # FOR SHARE: the datasource cannot be deleted until this dataset is saved.
            row = _one(cursor, "SELECT namespace FROM datasources WHERE id = $1 FOR SHARE", [datasource_id])
            if row is None:
                raise NotFound(f"datasource {datasource_id} not found")
            if row[0] != namespace:
                raise InvalidArgument(f"datasource {datasource_id} belongs to namespace {row[0]!r}, not {namespace!r}")
            inserted = _one(cursor, "INSERT INTO datasets VALUES (nextval('dataset_ids'), $1, $2, $3, $4, $5) "
                                    "ON CONFLICT (namespace, name) DO NOTHING RETURNING id",
                            [namespace, name, datasource_id, query, utc_now()])
            if inserted is None:
                raise AlreadyExists(f"dataset {name!r} already exists in namespace {namespace!r}")
            return inserted[0]

        return self.get_dataset(run_transaction(self._pool, work))

    def delete_dataset(self, dataset_id: int) -> None:
        def work(cursor: Any) -> None:
            if _one(cursor, "DELETE FROM datasets WHERE id = $1 RETURNING id", [dataset_id]) is None:
                raise NotFound(f"dataset {dataset_id} not found")

        run_transaction(self._pool, work)

    # Bag datasets ---------------------------------------------------------------------------------

    def register_bag_dataset(self, namespace: str, name: str, uri: str) -> BagDatasetRecord:
        validate_namespace(namespace)
        validate_datasource_name(name, what="bag dataset")
        validate_bag_uri(uri)

        def work(cursor: Any) -> tuple:
            return _one(cursor, "INSERT INTO bag_datasets VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, name) "
                                "DO UPDATE SET uri = EXCLUDED.uri, registered_at = EXCLUDED.registered_at "
                                f"RETURNING {BAG_DATASET_COLUMNS}", [namespace, name, uri, utc_now()])

        return BagDatasetRecord(*run_transaction(self._pool, work))
