"""The embedded store: one DuckDB file under ``$THRESHER_HOME`` (layout described in ``base``).

DuckDB allows one writer process, which is this service; writes are serialised by a lock so that a
field's type is fixed exactly once and ids are assigned without races, while reads run concurrently
on their own cursors. Every statement takes its values as parameters; identifiers are the store's
own (``cur_<id>``, ``log_<id>``, ``f<id>``), never user text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.scan import ScanStatus
from thresher.storage.blobs import BlobStore
from thresher.types import TYPE_METADATA_KEY, FieldType
from thresher.v1 import common_pb2

from ..coercion import CoercedColumn, duplicate_path_error
from .. import nearest, vectors
from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..query_compiler import DUCKDB, Column, compile_query, timestamp_or_none
from ..validation import validate_bag_uri, validate_datasource_name, validate_namespace
from .base import Store, utc_now
from .catalog_reads import CatalogReads
from .common import (OP_DELETE_DATAPOINT, OP_DELETE_VALUES, OP_UPSERT, check_new_datasource, check_reuse,
                     check_same_type, coerce_write, conform, field_id, result_schema, timed_select_items)
from .records import BagDatasetRecord, DatasetRecord, DatasourceRecord, FieldRecord, NamespaceRecord, WriteResult

log = logging.getLogger(__name__)

_SQL_TYPES = {
    FieldType.INT: "BIGINT",
    FieldType.FLOAT: "DOUBLE",
    FieldType.BOOL: "BOOLEAN",
    FieldType.STRING: "VARCHAR",
    FieldType.DATETIME: "TIMESTAMPTZ",
    FieldType.BLOB: "VARCHAR",
}

SLOW_WRITE_SECONDS = 1.0

_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS datasource_ids START 1;
CREATE SEQUENCE IF NOT EXISTS dataset_ids START 1;
CREATE SEQUENCE IF NOT EXISTS write_ids START 1;
CREATE TABLE IF NOT EXISTS namespaces (
    name VARCHAR PRIMARY KEY, repository_uri VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS datasources (
    id BIGINT PRIMARY KEY, namespace VARCHAR NOT NULL, name VARCHAR NOT NULL, source_uri VARCHAR NOT NULL,
    revision VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    scan_state VARCHAR NOT NULL, files_seen BIGINT NOT NULL, datapoints_added BIGINT NOT NULL,
    datapoints_updated BIGINT NOT NULL, datapoints_removed BIGINT NOT NULL, files_per_second DOUBLE NOT NULL,
    failure_reason VARCHAR NOT NULL, scan_started_at TIMESTAMPTZ, scan_finished_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS fields (
    datasource_id BIGINT NOT NULL, field_id INTEGER NOT NULL, name VARCHAR NOT NULL, type VARCHAR NOT NULL,
    tags VARCHAR[] NOT NULL, created_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (datasource_id, name));
CREATE TABLE IF NOT EXISTS datasets (
    id BIGINT PRIMARY KEY, namespace VARCHAR NOT NULL, name VARCHAR NOT NULL, datasource_id BIGINT NOT NULL,
    query BLOB NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS bag_datasets (
    namespace VARCHAR NOT NULL, name VARCHAR NOT NULL, uri VARCHAR NOT NULL, registered_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS writes (
    write_id BIGINT PRIMARY KEY, datasource_id BIGINT NOT NULL, written_at TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, rows BIGINT NOT NULL);
"""

_DATASOURCE_COLUMNS = ("id, namespace, name, source_uri, revision, created_at, scan_state, files_seen, "
                       "datapoints_added, datapoints_updated, datapoints_removed, files_per_second, "
                       "failure_reason, scan_started_at, scan_finished_at")


def _current(datasource_id: int) -> str:
    return f"cur_{int(datasource_id)}"


def _log(datasource_id: int) -> str:
    return f"log_{int(datasource_id)}"


class DuckDBStore(CatalogReads, Store):
    """The embedded DuckDB store. ``path`` may be ``":memory:"`` for throwaway use."""

    dialect = DUCKDB

    def __init__(self, path: str, blobs: BlobStore) -> None:
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._con = duckdb.connect(path)
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute(_SCHEMA)
        self._blobs = blobs
        self._write_lock = threading.RLock()
        self._last_write_at: dt.datetime | None = self._fetchone("SELECT max(written_at) FROM writes")[0]
        self._datasources: dict[int, DatasourceRecord] = {}
        self._generation = 0

    def close(self) -> None:
        with self._write_lock:
            self._con.close()

    @contextlib.contextmanager
    def _forgetting(self, datasource_id: int) -> Iterator[None]:
        """Drops the cached record after a change to it, whether the change committed or not."""
        try:
            yield
        finally:
            self._forget(datasource_id)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def _rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        # Through Arrow: DuckDB's own conversion of TIMESTAMPTZ to Python objects needs pytz.
        with self._cursor() as cursor:
            table = cursor.sql(sql, params=list(params)).to_arrow_table()
        return list(zip(*(column.to_pylist() for column in table.columns)))

    def _fetchone(self, sql: str, params: Sequence = ()) -> tuple | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # Namespaces ---------------------------------------------------------------------------------

    def create_namespace(self, name: str, repository_uri: str = "") -> NamespaceRecord:
        validate_namespace(name)
        with self._write_lock:
            if self._fetchone("SELECT 1 FROM namespaces WHERE name = ?", [name]):
                raise AlreadyExists(f"namespace {name!r} already exists")
            record = NamespaceRecord(name, repository_uri, utc_now())
            with self._cursor() as cursor:
                cursor.execute("INSERT INTO namespaces VALUES (?, ?, ?)", [name, repository_uri, record.created_at])
            return record

    def _ensure_namespace(self, cursor: duckdb.DuckDBPyConnection, name: str) -> None:
        validate_namespace(name)
        cursor.execute("INSERT INTO namespaces VALUES (?, '', ?) ON CONFLICT DO NOTHING", [name, utc_now()])

    # Datasources --------------------------------------------------------------------------------

    def _create_datasource(self, namespace: str, name: str, source_uri: str, revision: str,
                           reuse: bool) -> tuple[DatasourceRecord, bool]:
        check_new_datasource(namespace, name, source_uri)
        with self._write_lock:
            existing = self._find_datasource_id(namespace, name)
            if existing is not None:
                record = self.get_datasource(existing)
                check_reuse(record, source_uri, revision, reuse)
                return record, False
            with self._cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    self._ensure_namespace(cursor, namespace)
                    datasource_id = _scalar(cursor, "SELECT nextval('datasource_ids')")
                    cursor.execute(
                        f"INSERT INTO datasources ({_DATASOURCE_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, 0, 0, 0, 0, '', NULL, NULL)",
                        [datasource_id, namespace, name, source_uri, revision, utc_now()])
                    cursor.execute(f"CREATE TABLE {_current(datasource_id)} "
                                   "(datapoint_id BIGINT NOT NULL, path VARCHAR NOT NULL, alive BOOLEAN NOT NULL)")
                    cursor.execute(f"CREATE TABLE {_log(datasource_id)} (write_id BIGINT NOT NULL, "
                                   "datapoint_id BIGINT NOT NULL, op UTINYINT NOT NULL, cleared INTEGER[])")
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            return self.get_datasource(datasource_id), True

    def _find_datasource_id(self, namespace: str, name: str) -> int | None:
        row = self._fetchone("SELECT id FROM datasources WHERE namespace = ? AND name = ?", [namespace, name])
        return None if row is None else row[0]

    def get_datasource(self, datasource_id: int) -> DatasourceRecord:
        # Every query starts here; this process is the only writer, so a cache dropped on each change
        # is exact. The generation check keeps a read that raced a change from caching stale data.
        cached = self._datasources.get(datasource_id)
        if cached is not None:
            return cached
        generation = self._generation
        row = self._fetchone(f"SELECT {_DATASOURCE_COLUMNS} FROM datasources WHERE id = ?", [datasource_id])
        if row is None:
            raise NotFound(f"datasource {datasource_id} not found")
        record = self._datasource_record(row)
        if generation == self._generation:
            self._datasources[datasource_id] = record
        return record

    def _forget(self, datasource_id: int) -> None:
        self._generation += 1
        self._datasources.pop(datasource_id, None)

    def find_datasource(self, namespace: str, name: str) -> DatasourceRecord:
        datasource_id = self._find_datasource_id(namespace, name)
        if datasource_id is None:
            raise NotFound(f"datasource {name!r} not found in namespace {namespace!r}")
        return self.get_datasource(datasource_id)

    def list_datasources(self, namespace: str, offset: int, limit: int) -> list[DatasourceRecord]:
        rows = self._rows(f"SELECT {_DATASOURCE_COLUMNS} FROM datasources WHERE namespace = ? "
                              "ORDER BY id LIMIT ? OFFSET ?", [namespace, limit, offset])
        return [self._datasource_record(row) for row in rows]

    def _datasource_record(self, row: tuple) -> DatasourceRecord:
        (datasource_id, namespace, name, source_uri, revision, created_at, *scan) = row
        return DatasourceRecord(datasource_id, namespace, name, source_uri, revision, created_at,
                                ScanStatus(*scan), self._fields(datasource_id))

    def _fields(self, datasource_id: int, at: dt.datetime | None = None) -> list[FieldRecord]:
        sql = "SELECT name, type, tags, created_at, field_id FROM fields WHERE datasource_id = ?"
        params: list = [datasource_id]
        if at is not None:
            sql += " AND created_at <= ?"
            params.append(at)
        rows = self._rows(sql + " ORDER BY field_id", params)
        return [vectors.field_record(name, kind, tuple(tags), created, f"f{field_id}")
                for name, kind, tags, created, field_id in rows]

    def delete_datasource(self, datasource_id: int) -> None:
        with self._write_lock, self._forgetting(datasource_id):
            self.get_datasource(datasource_id)
            with self._cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    for statement in ("DELETE FROM datasets WHERE datasource_id = ?",
                                      "DELETE FROM fields WHERE datasource_id = ?",
                                      "DELETE FROM datasources WHERE id = ?"):
                        cursor.execute(statement, [datasource_id])
                    cursor.execute(f"DROP TABLE {_current(datasource_id)}")
                    cursor.execute(f"DROP TABLE {_log(datasource_id)}")
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise

    def update_scan(self, datasource_id: int, scan: ScanStatus) -> DatasourceRecord:
        with self._write_lock, self._forgetting(datasource_id):
            self.get_datasource(datasource_id)
            with self._cursor() as cursor:
                cursor.execute(
                    "UPDATE datasources SET scan_state = ?, files_seen = ?, datapoints_added = ?, "
                    "datapoints_updated = ?, datapoints_removed = ?, files_per_second = ?, failure_reason = ?, "
                    "scan_started_at = ?, scan_finished_at = ? WHERE id = ?",
                    [scan.state, scan.files_seen, scan.datapoints_added, scan.datapoints_updated,
                     scan.datapoints_removed, scan.files_per_second, scan.failure_reason, scan.started_at,
                     scan.finished_at, datasource_id])
        return self.get_datasource(datasource_id)

    # Fields and metadata ------------------------------------------------------------------------

    def define_fields(self, datasource_id: int,
                      fields: Sequence[tuple[str, FieldType, tuple[str, ...]]]) -> list[FieldRecord]:
        with self._write_lock, self._forgetting(datasource_id):
            known = {f.name: f for f in self.get_datasource(datasource_id).fields}
            wanted: dict[str, tuple[FieldType, tuple[str, ...]]] = {}
            for name, kind, tags in fields:
                check_same_type(name, known.get(name), kind)
                wanted[name] = (kind, tuple(tags))
            with self._cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    self._add_fields(cursor, datasource_id, known,
                                     [(n, k, t) for n, (k, t) in wanted.items() if n not in known])
                    for name, (_, tags) in wanted.items():
                        if name in known and tags:
                            cursor.execute("UPDATE fields SET tags = list_distinct(list_concat(tags, ?)) "
                                           "WHERE datasource_id = ? AND name = ?", [list(tags), datasource_id, name])
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            return [f for f in self._fields(datasource_id) if f.name in wanted]

    def _add_fields(self, cursor: duckdb.DuckDBPyConnection, datasource_id: int, known: dict[str, FieldRecord],
                    new: Sequence[tuple[str, FieldType, tuple[str, ...]]]) -> dict[str, FieldRecord]:
        """Creates fields inside the caller's transaction; returns every field by name."""
        if not new:
            return known
        next_id = _scalar(cursor, "SELECT coalesce(max(field_id), 0) + 1 FROM fields WHERE datasource_id = ?",
                          [datasource_id])
        fields = dict(known)
        now = utc_now()
        for offset, (name, kind, tags) in enumerate(new):
            field_id = next_id + offset
            column = f"f{field_id}"
            cursor.execute("INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?)",
                           [datasource_id, field_id, name, vectors.stored_type_name(kind), list(tags), now])
            for table in (_current(datasource_id), _log(datasource_id)):
                cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {vectors.sql_type(kind, _SQL_TYPES, 'duckdb')}")
            fields[name] = vectors.field_record(name, kind, tuple(tags), now, column)
        return fields

    def _begin_write(self, cursor: duckdb.DuckDBPyConnection, datasource_id: int, actor: str, kind: str,
                     rows: int) -> int:
        # Write times strictly increase so that as_of(t) has one answer for every t.
        now = utc_now()
        if self._last_write_at is not None and now <= self._last_write_at:
            now = self._last_write_at + dt.timedelta(microseconds=1)
        write_id = _scalar(cursor, "SELECT nextval('write_ids')")
        cursor.execute("INSERT INTO writes VALUES (?, ?, ?, ?, ?, ?)", [write_id, datasource_id, now, actor, kind, rows])
        self._pending_write_at = now
        return write_id

    def _commit(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute("COMMIT")
        self._last_write_at = self._pending_write_at

    def upsert(self, datasource_id: int, table: pa.Table, path_column: str, actor: str) -> WriteResult:
        with self._write_lock:
            started = time.perf_counter()
            known = {f.name: f for f in self.get_datasource(datasource_id).fields}
            paths, columns = coerce_write(table, path_column, known)
            checked = time.perf_counter()
            if any(c.name not in known for c in columns):
                with self._forgetting(datasource_id):
                    result = self._upsert(datasource_id, paths, columns, known, actor)
            else:
                result = self._upsert(datasource_id, paths, columns, known, actor)
            finished = time.perf_counter()
            if finished - started > SLOW_WRITE_SECONDS:
                log.info("upsert of %d rows x %d fields into datasource %d took %.2f s "
                         "(checking %.2f s, writing log and current state %.2f s)", len(paths), len(columns),
                         datasource_id, finished - started, checked - started, finished - checked)
            return result

    def _upsert(self, datasource_id: int, paths: pa.Array, columns: list[CoercedColumn],
                known: dict[str, FieldRecord], actor: str) -> WriteResult:
        if len(paths) == 0:
            return WriteResult(0, 0)
        values = {}
        for column in columns:
            array = column.values
            if column.type is FieldType.BLOB:
                # Content-addressed, so bytes stored by a write that then fails are harmless.
                array = pa.array(self._blobs.put_many(array.to_pylist()), pa.string())
            values[column.name] = array
        with self._cursor() as cursor:
            cursor.execute("BEGIN")
            try:
                fields = self._add_fields(cursor, datasource_id, known,
                                          [(c.name, vectors.new_field_kind(c), ()) for c in columns if c.name not in known])
                result = self._write_values(cursor, datasource_id, paths,
                                            {fields[name].column: array for name, array in values.items()}, actor)
                self._commit(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return result

    def _write_values(self, cursor: duckdb.DuckDBPyConnection, datasource_id: int, paths: pa.Array,
                      values: dict[str, pa.Array], actor: str) -> WriteResult:
        current, history = _current(datasource_id), _log(datasource_id)
        count = len(paths)
        staged = pa.table({"path": paths, "row_index": pa.array(np.arange(count, dtype=np.int64))})
        cursor.register("staged_paths", staged)
        try:
            duplicate = _scalar(cursor, "SELECT path FROM staged_paths GROUP BY path HAVING count(*) > 1 LIMIT 1")
            if duplicate is not None:
                raise duplicate_path_error(duplicate)
            found = cursor.sql(f"SELECT s.row_index, c.datapoint_id, c.alive FROM staged_paths s "
                               f"JOIN {current} c ON c.path = s.path").to_arrow_table()
        finally:
            cursor.unregister("staged_paths")
        ids = np.full(count, -1, dtype=np.int64)
        ids[found["row_index"].to_numpy()] = found["datapoint_id"].to_numpy()
        is_new = ids < 0
        new_count = int(is_new.sum())
        revived = int(np.count_nonzero(~found["alive"].to_numpy(zero_copy_only=False)))
        if new_count:
            first = _scalar(cursor, f"SELECT coalesce(max(datapoint_id), 0) + 1 FROM {current}")
            ids[is_new] = np.arange(first, first + new_count, dtype=np.int64)
        staged = pa.table({"datapoint_id": ids, "path": paths, "is_new": is_new, **values})
        names = list(values)
        write_id = self._begin_write(cursor, datasource_id, actor, "upsert", count)
        cursor.register("staged_values", staged)
        try:
            value_list = "".join(f", {name}" for name in names)
            cursor.execute(f"INSERT INTO {history} (write_id, datapoint_id, op{value_list}) "
                           f"SELECT ?, datapoint_id, {OP_UPSERT}{value_list} FROM staged_values", [write_id])
            if new_count:
                cursor.execute(f"INSERT INTO {current} (datapoint_id, path, alive{value_list}) "
                               f"SELECT datapoint_id, path, TRUE{value_list} FROM staged_values WHERE is_new")
            if new_count < count:
                assignments = "".join(f", {n} = coalesce(s.{n}, {current}.{n})" for n in names)
                cursor.execute(f"UPDATE {current} SET alive = TRUE{assignments} FROM staged_values s "
                               f"WHERE {current}.datapoint_id = s.datapoint_id AND NOT s.is_new")
        finally:
            cursor.unregister("staged_values")
        return WriteResult(count, new_count + revived)

    def _live_ids(self, cursor: duckdb.DuckDBPyConnection, datasource_id: int, paths: Sequence[str]) -> pa.Table:
        """The ids of live datapoints at ``paths``; NotFound names the first path that has none."""
        unique = pa.array(list(dict.fromkeys(paths)), pa.string())
        cursor.register("requested_paths", pa.table({"path": unique}))
        try:
            found = cursor.sql(f"SELECT r.path, c.datapoint_id FROM requested_paths r LEFT JOIN "
                               f"{_current(datasource_id)} c ON c.path = r.path AND c.alive").to_arrow_table()
        finally:
            cursor.unregister("requested_paths")
        missing = found.filter(pc.is_null(found["datapoint_id"]))
        if missing.num_rows:
            raise NotFound(f"datapoint {missing['path'][0].as_py()!r} not found in datasource {datasource_id}")
        return found.select(["datapoint_id"])

    def delete_metadata(self, datasource_id: int, paths: Sequence[str], fields: Sequence[str], actor: str) -> int:
        with self._write_lock:
            known = {f.name: f for f in self.get_datasource(datasource_id).fields}
            for name in fields:
                if name not in known:
                    raise NotFound(f"field {name!r} not found in datasource {datasource_id}")
            chosen = [known[name] for name in dict.fromkeys(fields)] if fields else list(known.values())
            if not paths or not chosen:
                return 0
            current = _current(datasource_id)
            with self._cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    ids = self._live_ids(cursor, datasource_id, paths)
                    cursor.register("target_ids", ids)
                    present = " + ".join(f"({f.column} IS NOT NULL)::BIGINT" for f in chosen)
                    deleted = _scalar(cursor, f"SELECT coalesce(sum({present}), 0) FROM {current} "
                                      "WHERE datapoint_id IN (SELECT datapoint_id FROM target_ids)")
                    write_id = self._begin_write(cursor, datasource_id, actor, "delete_metadata", ids.num_rows)
                    cleared = [field_id(f) for f in chosen]
                    cursor.execute(f"INSERT INTO {_log(datasource_id)} (write_id, datapoint_id, op, cleared) "
                                   f"SELECT ?, datapoint_id, {OP_DELETE_VALUES}, ? FROM target_ids", [write_id, cleared])
                    assignments = ", ".join(f"{f.column} = NULL" for f in chosen)
                    cursor.execute(f"UPDATE {current} SET {assignments} "
                                   "WHERE datapoint_id IN (SELECT datapoint_id FROM target_ids)")
                    cursor.unregister("target_ids")
                    self._commit(cursor)
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            return int(deleted)

    def delete_datapoints(self, datasource_id: int, paths: Sequence[str], actor: str) -> int:
        with self._write_lock:
            known = self.get_datasource(datasource_id).fields
            if not paths:
                return 0
            current = _current(datasource_id)
            with self._cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    ids = self._live_ids(cursor, datasource_id, paths)
                    cursor.register("target_ids", ids)
                    write_id = self._begin_write(cursor, datasource_id, actor, "delete_datapoints", ids.num_rows)
                    cursor.execute(f"INSERT INTO {_log(datasource_id)} (write_id, datapoint_id, op) "
                                   f"SELECT ?, datapoint_id, {OP_DELETE_DATAPOINT} FROM target_ids", [write_id])
                    assignments = "".join(f", {f.column} = NULL" for f in known)
                    cursor.execute(f"UPDATE {current} SET alive = FALSE{assignments} "
                                   "WHERE datapoint_id IN (SELECT datapoint_id FROM target_ids)")
                    cursor.unregister("target_ids")
                    self._commit(cursor)
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            return ids.num_rows

    # Queries ------------------------------------------------------------------------------------

    def _compile(self, query: common_pb2.Query):
        datasource = self.get_datasource(query.datasource_id)
        as_of = timestamp_or_none(query.as_of)
        if as_of is None:
            fields, base, params, row_filter = datasource.fields, _current(datasource.id), [], "alive"
        else:
            fields = self._fields(datasource.id, at=as_of)
            base, params = self._as_of_relation(datasource.id, fields, self._last_write_before(as_of))
            row_filter = ""
        columns = {f.name: Column(f.column, f.type, f.vector) for f in fields}
        query, relation, params = self._with_fields_at_other_times(query, datasource.id, base, params, columns)
        compiled = compile_query(query, columns, relation, DUCKDB, relation_params=params, row_filter=row_filter)
        return datasource, compiled

    def _last_write_before(self, at: dt.datetime) -> int:
        row = self._fetchone("SELECT max(write_id) FROM writes WHERE written_at <= ?", [at])
        return -1 if row is None or row[0] is None else row[0]

    @staticmethod
    def _latest_value(column: str, field_id: int) -> str:
        """The aggregate giving a field's value after the last log row that touched it."""
        touched = (f"(op = {OP_UPSERT} AND {column} IS NOT NULL) OR "
                   f"(op = {OP_DELETE_VALUES} AND list_contains(cleared, {field_id})) OR op = {OP_DELETE_DATAPOINT}")
        return f"(arg_max({{'v': {column}}}, write_id) FILTER (WHERE {touched})).v"

    def _as_of_relation(self, datasource_id: int, fields: Sequence[FieldRecord], last_write: int) -> tuple[str, list]:
        """A subquery with each datapoint's values as they were after write ``last_write``, from the log."""
        selected = "".join(f", {self._latest_value(f.column, field_id(f))} AS {f.column}" for f in fields)
        outer = "".join(f", g.{f.column}" for f in fields)
        relation = (f"(SELECT g.datapoint_id, c.path{outer} FROM (SELECT datapoint_id, "
                    f"arg_max(op, write_id) FILTER (WHERE op <> {OP_DELETE_VALUES}) AS last_op{selected} "
                    f"FROM {_log(datasource_id)} WHERE write_id <= ? GROUP BY datapoint_id) g "
                    f"JOIN {_current(datasource_id)} c ON c.datapoint_id = g.datapoint_id "
                    f"WHERE g.last_op = {OP_UPSERT})")
        return relation, [last_write]

    def _with_fields_at_other_times(self, query: common_pb2.Query, datasource_id: int, base: str, params: list,
                                    columns: dict[str, Column]) -> tuple[common_pb2.Query, str, list]:
        """Joins one log-derived column per select item that reads its field at its own instant."""
        query, joined = timed_select_items(query, columns, lambda at: self._fields(datasource_id, at=at))
        if not joined:
            return query, base, params
        joins, extra, params = [], [], list(params)
        for name, field, at in joined:
            joins.append(f"LEFT JOIN (SELECT datapoint_id, {self._latest_value(field.column, field_id(field))} "
                         f"AS v FROM {_log(datasource_id)} WHERE write_id <= ? GROUP BY datapoint_id) {name} "
                         f"ON {name}.datapoint_id = base.datapoint_id")
            params.append(self._last_write_before(at))
            extra.append(f", {name}.v AS {name}")
        relation = f"(SELECT base.*{''.join(extra)} FROM {base} AS base {' '.join(joins)}) AS timed"
        return query, relation, params

    def query(self, query: common_pb2.Query, max_batch_rows: int = 0) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        if nearest.is_nearest(query):
            return nearest.query(self, query, max_batch_rows)
        datasource, compiled = self._compile(query)
        schema = result_schema(datasource, compiled.columns)
        cursor = self._cursor()
        try:
            reader = cursor.sql(compiled.sql, params=compiled.params).to_arrow_reader(max_batch_rows or 131072)
        except BaseException:
            cursor.close()
            raise
        return schema, self._batches(cursor, reader, schema)

    @staticmethod
    def _batches(cursor: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader,
                 schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                yield conform(batch, schema)
        finally:
            cursor.close()

    def describe(self, query: common_pb2.Query) -> tuple[pa.Schema, int]:
        if nearest.is_nearest(query):
            return nearest.describe(self, query)
        datasource, compiled = self._compile(query)
        total = self._fetchone(compiled.count_sql, compiled.count_params)[0]
        return result_schema(datasource, compiled.columns), int(total)

    def history(self, datasource_id: int, path: str, field: str | None = None) -> pa.Table:
        known = self.get_datasource(datasource_id).fields
        chosen = [f for f in known if f.name == field] if field else known
        if field and not chosen:
            raise NotFound(f"field {field!r} not found in datasource {datasource_id}")
        condition, params = "c.path = ?", [path]
        if field:
            only = chosen[0]
            condition += (f" AND ((l.op = {OP_UPSERT} AND l.{only.column} IS NOT NULL) OR l.op = {OP_DELETE_DATAPOINT}"
                          f" OR (l.op = {OP_DELETE_VALUES} AND list_contains(l.cleared, {field_id(only)})))")
        table = self._log_rows(datasource_id, chosen, condition, params)
        if table.num_rows == 0 and not self._fetchone(f"SELECT 1 FROM {_current(datasource_id)} WHERE path = ?", [path]):
            raise NotFound(f"datapoint {path!r} not found in datasource {datasource_id}")
        return table

    def changes(self, datasource_id: int, since: dt.datetime | None, until: dt.datetime | None) -> pa.Table:
        fields = self.get_datasource(datasource_id).fields
        conditions, params = ["TRUE"], []
        if since is not None:
            conditions.append("w.written_at >= ?")
            params.append(since)
        if until is not None:
            conditions.append("w.written_at <= ?")
            params.append(until)
        return self._log_rows(datasource_id, fields, " AND ".join(conditions), params)

    def _log_rows(self, datasource_id: int, fields: Sequence[FieldRecord], condition: str, params: list) -> pa.Table:
        """Log rows with when, who and what: one row per datapoint per write, values as written."""
        values = "".join(f", l.{f.column}" for f in fields)
        sql = (f"SELECT w.written_at, w.actor, l.write_id, c.path, "
               f"CASE l.op WHEN {OP_UPSERT} THEN 'set' WHEN {OP_DELETE_VALUES} THEN 'delete_metadata' "
               f"ELSE 'delete_datapoint' END AS operation, "
               f"coalesce((SELECT list(f.name ORDER BY f.field_id) FROM fields f WHERE f.datasource_id = ? "
               f"AND list_contains(l.cleared, f.field_id)), []::VARCHAR[]) AS cleared{values} "
               f"FROM {_log(datasource_id)} l JOIN writes w ON w.write_id = l.write_id "
               f"JOIN {_current(datasource_id)} c ON c.datapoint_id = l.datapoint_id "
               f"WHERE {condition} ORDER BY l.write_id, c.path")
        with self._cursor() as cursor:
            table = cursor.sql(sql, params=[datasource_id, *params]).to_arrow_table()
        names = ["written_at", "actor", "write_id", "path", "operation", "cleared", *(f.name for f in fields)]
        arrow_fields = [pa.field(name, table.schema.field(i).type) for i, name in enumerate(names[:6])]
        arrow_fields += [pa.field(f.name, vectors.arrow_type(f.type, f.vector), metadata={TYPE_METADATA_KEY: f.type.value.encode()})
                         for f in fields]
        return conform(table, pa.schema(arrow_fields))

    # Datasets -----------------------------------------------------------------------------------

    def save_dataset(self, namespace: str, name: str, datasource_id: int, query: bytes) -> DatasetRecord:
        validate_namespace(namespace)
        validate_datasource_name(name, what="dataset")
        with self._write_lock:
            datasource = self.get_datasource(datasource_id)
            if datasource.namespace != namespace:
                raise InvalidArgument(f"datasource {datasource_id} belongs to namespace {datasource.namespace!r}, "
                                      f"not {namespace!r}")
            if self._fetchone("SELECT 1 FROM datasets WHERE namespace = ? AND name = ?", [namespace, name]):
                raise AlreadyExists(f"dataset {name!r} already exists in namespace {namespace!r}")
            with self._cursor() as cursor:
                dataset_id = _scalar(cursor, "SELECT nextval('dataset_ids')")
                cursor.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
                               [dataset_id, namespace, name, datasource_id, query, utc_now()])
        return self.get_dataset(dataset_id)

    def delete_dataset(self, dataset_id: int) -> None:
        with self._write_lock:
            self.get_dataset(dataset_id)
            with self._cursor() as cursor:
                cursor.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])

    # Bag datasets ---------------------------------------------------------------------------------

    def register_bag_dataset(self, namespace: str, name: str, uri: str) -> BagDatasetRecord:
        validate_namespace(namespace)
        validate_datasource_name(name, what="bag dataset")
        validate_bag_uri(uri)
        with self._write_lock, self._cursor() as cursor:
            cursor.execute("DELETE FROM bag_datasets WHERE namespace = ? AND name = ?", [namespace, name])
            cursor.execute("INSERT INTO bag_datasets VALUES (?, ?, ?, ?)", [namespace, name, uri, utc_now()])
        return self.find_bag_dataset(namespace, name)


def _scalar(cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()):
    """The first value of the first row, or None. Reads the whole result: DuckDB keeps a connection
    busy until its last result is exhausted, which would block the ROLLBACK after an error."""
    rows = cursor.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None
