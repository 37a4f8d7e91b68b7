"""The one metadata store, over an engine dialect (``duckdb.py`` embedded, ``postgres.py`` for replicas).

Layout (``LAYOUT_VERSION`` 3). Each datasource has two tables:

* ``cur_<id>``, the **current state and the truth of each datapoint's latest write**: one row per
  datapoint ever seen (ids stay stable when a path comes back), a liveness flag, one column ``f<n>``
  per field with the latest value, and ``unlogged``: the write whose row the log does not hold yet.
  Until another write touches the datapoint, that write's log row is derivable from the current row:
  every value the row has among the write's fields (``writes.fields``) where the write created the
  datapoint or set all the fields it could; otherwise those listed in the row's ``unlogged_set``.
  The current table is indexed on ``path``: a lookup by path is a seek, not a scan.
* ``log_<id>``, append-only: one row per datapoint per *earlier* write, holding the values that
  write set, or the fields it cleared, or a datapoint deletion. A write that touches a datapoint
  first moves the datapoint's unlogged row into the log: the log keeps what a write superseded.

So an upload of new datapoints writes each value once (the current table), and an update writes
the new values once plus the rows they supersede. Uploads are written chunk by chunk as their
batches arrive (``StreamedWrite``), inside one transaction that commits after the last. The full
log, used by ``as_of``, ``history`` and ``changes``, is the log table plus the unlogged rows
(``_log_relation``). Current-state queries scan the plain current table.

Behaviour held the same on every engine (each has a test in tests/metadata/test_store_behaviour.py):
write times strictly increase *per datasource* (a write's time is the store's clock, or 1 µs after
the datasource's last write), and ``as_of`` reads a datasource's own writes up to that instant; tag
merges keep first-occurrence order; "not found" for paths names the first missing path in request
order; a field created by a write has that write's time as its ``created_at``; names are unique by
constraint in both engines (an insert that conflicts inserts nothing), datapoint paths are unique
because every write to a datasource holds its lock and duplicates in an upload are refused in Arrow.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.core.scan_status import ScanStatus
from thresher.core.storage.blobs import BlobStore
from thresher.core.types import PATH_COLUMN, TYPE_METADATA_KEY, FieldType
from thresher.services.metadata import facets, nearest, path_index, vector_fields
from thresher.services.metadata.annotations import stored_values
from thresher.services.metadata.coercion import CoercedColumn, duplicate_path_error
from thresher.services.metadata.domain_errors import AlreadyExists, InvalidArgument, NotFound, UnknownPaths
from thresher.services.metadata.query_compiler import (
    DUCKDB_LITERALS,
    Column,
    CompiledQuery,
    OutputColumn,
    compile_query,
    timestamp_or_none,
)
from thresher.services.metadata.query_compiler import Dialect as QueryDialect
from thresher.services.metadata.store.common import (
    LOG_OPERATIONS,
    OP_DELETE_DATAPOINT,
    OP_DELETE_VALUES,
    OP_UPSERT,
    check_new_datasource,
    check_reuse,
    check_same_type,
    coerce_write,
    conform,
    field_id,
    result_schema,
    timed_select_items,
)
from thresher.services.metadata.store.dialect import EngineDialect, Session, T
from thresher.services.metadata.store.interface import Store, utc_now
from thresher.services.metadata.store.migrations import path_index_sql, prepare_schema
from thresher.services.metadata.store.records import (
    BagDatasetRecord,
    DatasetRecord,
    DatasourceRecord,
    FieldRecord,
    NamespaceRecord,
    WriteResult,
)
from thresher.services.metadata.validation import validate_bag_uri, validate_datasource_name, validate_namespace
from thresher.v1 import common_pb2

log = logging.getLogger(__name__)

# Advisory lock keys: a datasource's id (positive) for its writes; this one for the catalog.
CATALOG_LOCK = -1
SLOW_WRITE_SECONDS = 1.0
DEFAULT_BATCH_ROWS = 131072
UNKNOWN_PATHS_SHOWN = 10
# An upload is written in chunks of about this many rows as its batches arrive; into an empty
# datasource the first is smaller, so that writing starts early. Into a datasource that has rows,
# each chunk scans the current table (paths, then the rows it supersedes) whatever its size, so the
# first is as large as the rest: an update of 100k of 1M rows in one chunk rather than two took
# about a quarter less CPU time.
CHUNK_ROWS = 262144
FIRST_CHUNK_ROWS = 65536
# A first chunk of at least this many new rows into an empty datasource is a "first load" (see
# ``EngineDialect.index_after_first_load``); smaller writes keep the indexes up as they go.
INDEX_AFTER_ROWS = 10000

DATASOURCE_COLUMNS = (
    "id, namespace, name, source_uri, revision, created_at, scan_state, files_seen, "
    "datapoints_added, datapoints_updated, datapoints_removed, files_per_second, "
    "failure_reason, scan_started_at, scan_finished_at"
)
NAMESPACE_COLUMNS = "name, repository_uri, created_at"
DATASET_COLUMNS = "id, namespace, name, datasource_id, query, created_at"
BAG_DATASET_COLUMNS = "namespace, name, uri, registered_at"


# How many one-path lookups the store keeps the rows of, each at most this many bytes (see
# ``SqlStore.query_bounded``): 256 MiB at the very most.
LOOKED_UP_ROWS = 4096
LOOKED_UP_ROW_BYTES = 64 * 1024


def current_table(datasource_id: int) -> str:
    return f"cur_{int(datasource_id)}"


def log_table(datasource_id: int) -> str:
    return f"log_{int(datasource_id)}"


_NO_EXISTING = pa.table(
    {
        "row_index": pa.array([], pa.int64()),
        "datapoint_id": pa.array([], pa.int64()),
        "alive": pa.array([], pa.bool_()),
        "row_key": pa.array([], pa.int64()),
        "has_set": pa.array([], pa.bool_()),
        "unlogged": pa.array([], pa.int64()),
    }
)
# An update names the writes whose unlogged rows it moves into the log, rather than joining the
# ``writes`` table for each row, when they are at most this many (see ``SqlStore._spill``).
NAMED_WRITES = 64


class SqlStore(Store):
    """The store over ``dialect``'s engine. ``clock`` gives write times (tests may turn it)."""

    def __init__(self, dialect: EngineDialect, blobs: BlobStore, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.dialect = dialect
        self._blobs = blobs
        self._clock = clock
        self._datasources: dict[int, DatasourceRecord] = {}
        self._generation = 0
        self._commits = 0  # writes this process committed (or tried): a single writer's change marker
        # Per datasource, the compiled lookup of one path and its schema, with the record they were
        # compiled from: valid while that record is the cached one (see ``_point_lookup``).
        self._point_lookups: dict[int, tuple[DatasourceRecord, str, pa.Schema]] = {}
        # Per datasource, its live datapoints counted at a write marker (a single writer's only): a
        # notebook's ``len(ds)`` between writes costs no statement (see ``count``).
        self._live_counts: dict[int, tuple[int, int]] = {}
        # Per datasource, its current table's rows and id bounds at a write marker (a single writer's
        # only): the estimate a flight plans partitions on, read once between writes (``estimate_with_ids``).
        self._table_bounds: dict[int, tuple[int, int, tuple[int, int]]] = {}
        # Rows of one-path lookups, each with the write marker it was read at and valid while that is
        # the marker: a path read again between writes costs no statement (a single writer's only).
        self._looked_up: dict[tuple[int, str], tuple[int, pa.Table]] = {}
        # Per datasource looked up by path again and again between writes, its live rows in memory by
        # path, read in the background (a single writer's only; see ``path_index``).
        self.path_indexes = path_index.PathIndexes(self._read_path_index)
        try:
            dialect.write(CATALOG_LOCK, lambda s: prepare_schema(s, dialect, log))
        except BaseException:
            dialect.close()
            raise

    def close(self) -> None:
        self.path_indexes.wait_idle(60)  # an index being read holds a cursor of the engine
        self.dialect.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.dialect.read() as session:
            return session.rows(sql, params)

    def _write(self, lock_key: int, work: Callable[[Session], T], forget: int | None = None) -> T:
        """Runs ``work`` as one locked transaction; drops the cached record of ``forget`` whatever happens."""
        try:
            return self.dialect.write(lock_key, work)
        finally:
            # Counted after the commit (or the rollback): a reader that saw the old count and then read
            # the new rows caches them under a count that is already gone.
            self._commits += 1
            self.path_indexes.drop_stale(self._commits)  # their rows are the old ones: free them now
            if forget is not None:
                self._generation += 1
                self._datasources.pop(forget, None)

    # Namespaces ---------------------------------------------------------------------------------

    def create_namespace(self, name: str, repository_uri: str = "") -> NamespaceRecord:
        validate_namespace(name)
        record = NamespaceRecord(name, repository_uri, utc_now())

        def work(session: Session) -> None:
            if (
                session.one(
                    "INSERT INTO namespaces VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING name",
                    [name, repository_uri, record.created_at],
                )
                is None
            ):
                raise AlreadyExists(f"namespace {name!r} already exists")

        self._write(CATALOG_LOCK, work)
        return record

    def get_namespace(self, name: str) -> NamespaceRecord:
        rows = self._rows(f"SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name = $1", [name])
        if not rows:
            raise NotFound(f"namespace {name!r} not found")
        return NamespaceRecord(*rows[0])

    def list_namespaces(self, offset: int, limit: int) -> list[NamespaceRecord]:
        rows = self._rows(
            f"SELECT {NAMESPACE_COLUMNS} FROM namespaces ORDER BY name LIMIT $1 OFFSET $2", [limit, offset]
        )
        return [NamespaceRecord(*row) for row in rows]

    # Datasources --------------------------------------------------------------------------------

    def _create_datasource(
        self, namespace: str, name: str, source_uri: str, revision: str, reuse: bool
    ) -> tuple[DatasourceRecord, bool]:
        check_new_datasource(namespace, name, source_uri)
        text = self.dialect.text_type

        def work(session: Session) -> tuple[int, bool]:
            existing = session.one(
                f"SELECT {DATASOURCE_COLUMNS} FROM datasources WHERE namespace = $1 AND name = $2", [namespace, name]
            )
            if existing is not None:
                check_reuse(self._datasource_record(session, existing), source_uri, revision, reuse)
                return existing[0], False
            session.execute("INSERT INTO namespaces VALUES ($1, '', $2) ON CONFLICT DO NOTHING", [namespace, utc_now()])
            datasource_id = session.value("SELECT nextval('datasource_ids')")
            session.execute(
                f"INSERT INTO datasources ({DATASOURCE_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, 0, 0, 0, 0, '', NULL, NULL)",
                [datasource_id, namespace, name, source_uri, revision, utc_now()],
            )
            session.execute(
                f"CREATE TABLE {current_table(datasource_id)} (datapoint_id BIGINT NOT NULL, "
                f"path {text} NOT NULL, alive BOOLEAN NOT NULL, unlogged BIGINT, unlogged_set INTEGER[]"
                f"{self.dialect.current_table_key})"
            )
            session.execute(
                f"CREATE TABLE {log_table(datasource_id)} (write_id BIGINT NOT NULL, "
                "datapoint_id BIGINT NOT NULL, op SMALLINT NOT NULL, cleared INTEGER[])"
            )
            session.execute(path_index_sql(datasource_id))
            return datasource_id, True

        datasource_id, created = self._write(CATALOG_LOCK, work)
        return self.get_datasource(datasource_id), created

    def get_datasource(self, datasource_id: int) -> DatasourceRecord:
        # Every query starts here. A single writer drops the cached record on each change, so it is
        # exact; the generation check keeps a read that raced a change from caching stale data.
        if self.dialect.single_writer:
            cached = self._datasources.get(datasource_id)
            if cached is not None:
                return cached
        generation = self._generation
        with self.dialect.read() as session:
            record = self._datasource(session, datasource_id)
        if self.dialect.single_writer and generation == self._generation:
            self._datasources[datasource_id] = record
        return record

    def _datasource(self, session: Session, datasource_id: int) -> DatasourceRecord:
        row = session.one(f"SELECT {DATASOURCE_COLUMNS} FROM datasources WHERE id = $1", [datasource_id])
        if row is None:
            raise NotFound(f"datasource {datasource_id} not found")
        return self._datasource_record(session, row)

    def find_datasource(self, namespace: str, name: str) -> DatasourceRecord:
        rows = self._rows("SELECT id FROM datasources WHERE namespace = $1 AND name = $2", [namespace, name])
        if not rows:
            raise NotFound(f"datasource {name!r} not found in namespace {namespace!r}")
        return self.get_datasource(rows[0][0])

    def list_datasources(self, namespace: str, offset: int, limit: int) -> list[DatasourceRecord]:
        with self.dialect.read() as session:
            rows = session.rows(
                f"SELECT {DATASOURCE_COLUMNS} FROM datasources WHERE namespace = $1 ORDER BY id LIMIT $2 OFFSET $3",
                [namespace, limit, offset],
            )
            return [self._datasource_record(session, row) for row in rows]

    def _datasource_record(self, session: Session, row: tuple[Any, ...]) -> DatasourceRecord:
        (datasource_id, namespace, name, source_uri, revision, created_at, *scan) = row
        return DatasourceRecord(
            datasource_id,
            namespace,
            name,
            source_uri,
            revision,
            created_at,
            ScanStatus(*scan),
            self._fields(session, datasource_id),
        )

    @staticmethod
    def _fields(session: Session, datasource_id: int, at: dt.datetime | None = None) -> list[FieldRecord]:
        sql = "SELECT name, type, tags, created_at, field_id FROM fields WHERE datasource_id = $1"
        params: list[Any] = [datasource_id]
        if at is not None:
            sql += " AND created_at <= $2"
            params.append(at)
        rows = session.rows(sql + " ORDER BY field_id", params)
        return [
            vector_fields.field_record(name, kind, tuple(tags), created, f"f{number}")
            for name, kind, tags, created, number in rows
        ]

    def _locked_fields(self, session: Session, datasource_id: int) -> dict[str, FieldRecord]:
        """The datasource's fields, read inside its write transaction (NotFound when it is gone)."""
        return {f.name: f for f in self._datasource(session, datasource_id).fields}

    def delete_datasource(self, datasource_id: int) -> None:
        def work(session: Session) -> None:
            self._datasource(session, datasource_id)
            for statement in (
                "DELETE FROM datasets WHERE datasource_id = $1",
                "DELETE FROM fields WHERE datasource_id = $1",
                "DELETE FROM datasources WHERE id = $1",
            ):
                session.execute(statement, [datasource_id])
            self.dialect.before_ddl(session)
            session.execute(f"DROP TABLE {current_table(datasource_id)}")
            session.execute(f"DROP TABLE {log_table(datasource_id)}")

        # The catalog lock too: a dataset saved meanwhile must not outlive its datasource.
        self._write(CATALOG_LOCK, lambda s: self._with_lock(s, datasource_id, work), forget=datasource_id)

    def _with_lock(self, session: Session, key: int, work: Callable[[Session], T]) -> T:
        """Takes a second write lock inside a transaction (always after the catalog's), then works."""
        self.dialect.lock(session, key)
        return work(session)

    def update_scan(self, datasource_id: int, scan: ScanStatus) -> DatasourceRecord:
        def work(session: Session) -> None:
            updated = session.one(
                "UPDATE datasources SET scan_state = $1, files_seen = $2, datapoints_added = $3, "
                "datapoints_updated = $4, datapoints_removed = $5, files_per_second = $6, failure_reason = $7, "
                "scan_started_at = $8::TIMESTAMPTZ, scan_finished_at = $9::TIMESTAMPTZ WHERE id = $10 RETURNING id",
                [
                    scan.state,
                    scan.files_seen,
                    scan.datapoints_added,
                    scan.datapoints_updated,
                    scan.datapoints_removed,
                    float(scan.files_per_second),
                    scan.failure_reason,
                    scan.started_at,
                    scan.finished_at,
                    datasource_id,
                ],
            )
            if updated is None:
                raise NotFound(f"datasource {datasource_id} not found")

        self._write(datasource_id, work, forget=datasource_id)
        return self.get_datasource(datasource_id)

    # Fields -------------------------------------------------------------------------------------

    def define_fields(
        self, datasource_id: int, fields: Sequence[tuple[str, FieldType, tuple[str, ...]]]
    ) -> list[FieldRecord]:
        def work(session: Session) -> list[FieldRecord]:
            known = self._locked_fields(session, datasource_id)
            wanted: dict[str, tuple[FieldType, tuple[str, ...]]] = {}
            for name, kind, tags in fields:
                check_same_type(name, known.get(name), kind)
                previous = wanted.get(name, (kind, ()))[1]
                wanted[name] = (kind, merge_tags(previous, tags))
            at = self._write_time(session, datasource_id)
            self._add_fields(
                session, datasource_id, known, [(n, k, t) for n, (k, t) in wanted.items() if n not in known], at
            )
            for name, (_, tags) in wanted.items():
                if name in known and tags:
                    merged = merge_tags(known[name].tags, tags)
                    if merged != known[name].tags:
                        session.execute(
                            "UPDATE fields SET tags = $1::TEXT[] WHERE datasource_id = $2 AND name = $3",
                            [list(merged), datasource_id, name],
                        )
            return [f for f in self._fields(session, datasource_id) if f.name in wanted]

        return self._write(datasource_id, work, forget=datasource_id)

    def _add_fields(
        self,
        session: Session,
        datasource_id: int,
        known: dict[str, FieldRecord],
        new: Sequence[tuple[str, vector_fields.FieldKind, tuple[str, ...]]],
        at: dt.datetime,
    ) -> dict[str, FieldRecord]:
        """Creates fields inside the caller's transaction, created at ``at`` (the write's time);
        returns every field by name. A new vector field comes as its spec (its dimension makes the column)."""
        if not new:
            return known
        next_id = session.value(
            "SELECT coalesce(max(field_id), 0) + 1 FROM fields WHERE datasource_id = $1", [datasource_id]
        )
        fields = dict(known)
        self.dialect.before_ddl(session)
        for offset, (name, kind, tags) in enumerate(new):
            number = next_id + offset
            column = f"f{number}"
            session.execute(
                "INSERT INTO fields VALUES ($1, $2, $3, $4, $5::TEXT[], $6)",
                [datasource_id, number, name, vector_fields.stored_type_name(kind), list(tags), at],
            )
            for table in (current_table(datasource_id), log_table(datasource_id)):
                session.execute(f"ALTER TABLE {table} ADD COLUMN {column} {self.dialect.column_type(kind)}")
            fields[name] = vector_fields.field_record(name, kind, tuple(tags), at, column)
        return fields

    # Writes -------------------------------------------------------------------------------------

    def _write_time(self, session: Session, datasource_id: int) -> dt.datetime:
        """The store's clock, but strictly after the datasource's last write (the caller holds its lock)."""
        last = session.value("SELECT max(written_at) FROM writes WHERE datasource_id = $1", [datasource_id])
        now = self._clock()
        if last is not None and now <= last:
            now = last + dt.timedelta(microseconds=1)
        return now

    @staticmethod
    def _begin_write(
        session: Session,
        datasource_id: int,
        at: dt.datetime,
        actor: str,
        kind: str,
        rows: int,
        fields: Sequence[int] = (),
    ) -> int:
        write_id: int = session.value("SELECT nextval('write_ids')")
        session.execute(
            "INSERT INTO writes VALUES ($1, $2, $3, $4, $5, $6, $7::INTEGER[])",
            [write_id, datasource_id, at, actor, kind, rows, list(fields)],
        )
        return write_id

    def upsert(
        self, datasource_id: int, table: pa.Table, path_column: str, actor: str, create_missing: bool = False
    ) -> WriteResult:
        return self.upsert_batches(datasource_id, table.schema, table.to_batches(), path_column, actor, create_missing)

    def upsert_batches(
        self,
        datasource_id: int,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        path_column: str,
        actor: str,
        create_missing: bool = False,
    ) -> WriteResult:
        """Writes ``batches`` into the store as they arrive, in one transaction committed after the last
        (so an iterator that raises, e.g. at a missing end message, writes nothing)."""
        started = time.perf_counter()
        attempts: list[int] = []

        def work(session: Session) -> WriteResult:
            if attempts:
                # The batches are consumed: a transaction that must run again cannot.
                raise InvalidArgument(
                    f"the upload into datasource {datasource_id} conflicted with another "
                    "write and was rolled back; send it again"
                )
            attempts.append(1)
            write = StreamedWrite(self, session, datasource_id, schema, path_column, actor, create_missing)
            chunks = _chunks(schema, batches, FIRST_CHUNK_ROWS if write.first_new_id == 1 else CHUNK_ROWS)
            if isinstance(batches, (list, tuple)):  # all in memory: nothing to wait for while writing
                for chunk in chunks:
                    write.add(chunk)
            else:
                _add_while_reading(write, chunks)
            return write.finish()

        forget = None
        if self.dialect.single_writer:
            known = {f.name for f in self.get_datasource(datasource_id).fields}
            if any(name != path_column and name not in known for name in schema.names):
                forget = datasource_id
        result = self._write(datasource_id, work, forget=forget)
        took = time.perf_counter() - started
        if took > SLOW_WRITE_SECONDS:
            log.info(
                "upsert of %d rows x %d columns into datasource %d took %.2f s",
                result.datapoints_written,
                len(schema) - 1,
                datasource_id,
                took,
            )
        return result

    def _drop_current_indexes(self, session: Session, datasource_id: int) -> None:
        """Drops the current table's key and path index, inside the caller's write (see ``StreamedWrite``)."""
        current = current_table(datasource_id)
        self.dialect.before_ddl(session)
        session.execute(f"DROP INDEX {current}_by_path")
        if self.dialect.current_table_key:
            session.execute(f"ALTER TABLE {current} DROP CONSTRAINT {current}_pkey")

    def _build_current_indexes(self, session: Session, datasource_id: int) -> None:
        """Builds again what ``_drop_current_indexes`` dropped, over the rows now in the table."""
        if self.dialect.current_table_key:
            key = self.dialect.current_table_key.lstrip(", ")
            session.execute(f"ALTER TABLE {current_table(datasource_id)} ADD {key}")
        session.execute(path_index_sql(datasource_id))
        self.dialect.after_first_load(session, current_table(datasource_id))

    def _stored(self, column: CoercedColumn) -> pa.Array:
        if column.type is FieldType.BLOB:
            # Content-addressed, so bytes stored by a write that then fails are harmless.
            return pa.array(self._blobs.put_many(column.values.to_pylist()), pa.string())
        if column.type.is_annotation:  # segmentation masks go to the blob store the same way
            return stored_values(column.type, column.values, self._blobs.put_many)
        return column.values

    def _existing(self, session: Session, datasource_id: int, paths: pa.Array, below: int) -> pa.Table:
        """For the paths that have a datapoint with an id below ``below``: ``row_index`` (in ``paths``),
        ``datapoint_id``, ``alive``, ``row_key`` (the dialect's ``row_key``, to find the row again in this
        transaction), ``has_set`` (its unlogged row lists its fields) and ``unlogged``. Ids grow with each
        write, so this skips rows the current write added."""
        current = current_table(datasource_id)
        if below <= 1:
            return _NO_EXISTING
        session.stage("staged_paths", pa.table({"path": paths, "row_index": np.arange(len(paths), dtype=np.int64)}))
        try:
            return session.table(
                f"SELECT s.row_index, c.datapoint_id, c.alive, c.{self.dialect.row_key} AS row_key, "
                "c.unlogged_set IS NOT NULL AS has_set, c.unlogged FROM staged_paths s "
                f"JOIN {current} c ON c.path = s.path AND c.datapoint_id < $1",
                [below],
            )
        finally:
            session.unstage("staged_paths")

    def _spill(
        self,
        session: Session,
        datasource_id: int,
        fields: Sequence[FieldRecord],
        targets: str,
        key: str = "datapoint_id",
        writes: Sequence[int] | None = None,
    ) -> None:
        """Moves the unlogged rows of the datapoints in relation ``targets`` into the log: their ``datapoint_id``,
        or with ``key="row_key"`` their ``row_key`` column (the dialect's ``row_key``, read in this transaction).

        ``writes``, when given, are all the writes those rows are unlogged by, and none of the rows lists
        its fields (``unlogged_set``): each field's value is then copied where one of the writes that set
        it is the row's, without joining ``writes`` and testing each row's list of fields (an update of
        100k of 1M rows: the statement's CPU time fell by about a third)."""
        columns = "".join(f", {f.column}" for f in fields)
        found = (
            f"c.datapoint_id IN (SELECT datapoint_id FROM {targets})"
            if key == "datapoint_id"
            else f"c.{self.dialect.row_key} IN (SELECT row_key FROM {targets})"
        )
        if writes is None:
            values, source = self._unlogged_values(fields), "JOIN writes w ON w.write_id = c.unlogged "
        else:
            values, source = self._values_set_by(session, fields, writes), ""
        session.execute(
            f"INSERT INTO {log_table(datasource_id)} (write_id, datapoint_id, op, cleared{columns}) "
            f"SELECT c.unlogged, c.datapoint_id, {OP_UPSERT}, NULL{values} "
            f"FROM {current_table(datasource_id)} c {source}"
            f"WHERE c.unlogged IS NOT NULL AND {found}"
        )

    @staticmethod
    def _values_set_by(session: Session, fields: Sequence[FieldRecord], writes: Sequence[int]) -> str:
        """The values of unlogged rows without a list of fields, unlogged by one of ``writes`` (``c``: the row)."""
        named = ", ".join(str(int(w)) for w in writes) or "NULL"
        setters: dict[int, list[int]] = {}
        for write_id, numbers in session.rows(f"SELECT write_id, fields FROM writes WHERE write_id IN ({named})"):
            for number in numbers or ():
                setters.setdefault(int(number), []).append(int(write_id))
        values = []
        for field in fields:
            by = setters.get(field_id(field), [])
            if len(by) == len(writes):
                values.append(f", c.{field.column}")
            elif by:
                values.append(f", CASE WHEN c.unlogged IN ({', '.join(map(str, by))}) THEN c.{field.column} END")
            else:
                values.append(", NULL")
        return "".join(values)

    def _unlogged_values(self, fields: Sequence[FieldRecord]) -> str:
        """The values of an unlogged row as its write set them (``c``: the current row, ``w``: the write)."""
        set_by_write = "coalesce(c.unlogged_set, w.fields)"
        return "".join(
            f", CASE WHEN {self.dialect.list_contains(set_by_write, str(field_id(f)))} THEN c.{f.column} END"
            for f in fields
        )

    def _live_ids(self, session: Session, datasource_id: int, paths: Sequence[str]) -> pa.Table:
        """The ids of live datapoints at ``paths``; NotFound names the first path, in request order, that has none."""
        unique = pa.array(list(dict.fromkeys(paths)), pa.string())
        session.stage("requested_paths", pa.table({"path": unique, "i": np.arange(len(unique), dtype=np.int64)}))
        found = session.table(
            f"SELECT r.i, c.datapoint_id FROM requested_paths r JOIN "
            f"{current_table(datasource_id)} c ON c.path = r.path AND c.alive"
        )
        session.unstage("requested_paths")
        if found.num_rows < len(unique):
            present = np.zeros(len(unique), dtype=bool)
            present[found["i"].to_numpy()] = True
            first_missing = int(np.argmin(present))
            raise NotFound(f"datapoint {unique[first_missing].as_py()!r} not found in datasource {datasource_id}")
        return found.select(["datapoint_id"])

    def delete_metadata(self, datasource_id: int, paths: Sequence[str], fields: Sequence[str], actor: str) -> int:
        def work(session: Session) -> int:
            known = self._locked_fields(session, datasource_id)
            for name in fields:
                if name not in known:
                    raise NotFound(f"field {name!r} not found in datasource {datasource_id}")
            chosen = [known[name] for name in dict.fromkeys(fields)] if fields else list(known.values())
            if not paths or not chosen:
                return 0
            current = current_table(datasource_id)
            ids = self._live_ids(session, datasource_id, paths)
            session.stage("target_ids", ids)
            present = " + ".join(f"(CASE WHEN {f.column} IS NULL THEN 0 ELSE 1 END)" for f in chosen)
            deleted = session.value(
                f"SELECT CAST(coalesce(sum({present}), 0) AS BIGINT) FROM {current} "
                "WHERE datapoint_id IN (SELECT datapoint_id FROM target_ids)"
            )
            at = self._write_time(session, datasource_id)
            write_id = self._begin_write(session, datasource_id, at, actor, "delete_metadata", ids.num_rows)
            self._spill(session, datasource_id, list(known.values()), "target_ids")
            session.execute(
                f"INSERT INTO {log_table(datasource_id)} (write_id, datapoint_id, op, cleared) "
                f"SELECT $1, datapoint_id, {OP_DELETE_VALUES}, $2::INTEGER[] FROM target_ids",
                [write_id, [field_id(f) for f in chosen]],
            )
            assignments = "".join(f", {f.column} = NULL" for f in chosen)
            session.execute(
                f"UPDATE {current} SET unlogged = NULL, unlogged_set = NULL{assignments} "
                "WHERE datapoint_id IN (SELECT datapoint_id FROM target_ids)"
            )
            session.unstage("target_ids")
            return int(deleted)

        return self._write(datasource_id, work)

    def delete_datapoints(self, datasource_id: int, paths: Sequence[str], actor: str) -> int:
        def work(session: Session) -> int:
            known = list(self._locked_fields(session, datasource_id).values())
            if not paths:
                return 0
            ids = self._live_ids(session, datasource_id, paths)
            session.stage("target_ids", ids)
            at = self._write_time(session, datasource_id)
            write_id = self._begin_write(session, datasource_id, at, actor, "delete_datapoints", ids.num_rows)
            self._spill(session, datasource_id, known, "target_ids")
            session.execute(
                f"INSERT INTO {log_table(datasource_id)} (write_id, datapoint_id, op) "
                f"SELECT $1, datapoint_id, {OP_DELETE_DATAPOINT} FROM target_ids",
                [write_id],
            )
            assignments = "".join(f", {f.column} = NULL" for f in known)
            session.execute(
                f"UPDATE {current_table(datasource_id)} SET alive = FALSE, unlogged = NULL, "
                f"unlogged_set = NULL{assignments} "
                "WHERE datapoint_id IN (SELECT datapoint_id FROM target_ids)"
            )
            session.unstage("target_ids")
            deleted: int = ids.num_rows
            return deleted

        return self._write(datasource_id, work)

    # Versioning ---------------------------------------------------------------------------------

    def _log_relation(self, datasource_id: int, fields: Sequence[FieldRecord], chosen: str = "") -> str:
        """The full log: logged rows, then each datapoint's unlogged row as its write set it. ``chosen``,
        a condition on ``datapoint_id``, keeps both parts to those datapoints (written into each, so
        neither engine has to push it through the union)."""
        columns = "".join(f", {f.column}" for f in fields)
        logged = f" WHERE {chosen}" if chosen else ""
        unlogged = f" AND c.{chosen}" if chosen else ""
        return (
            f"(SELECT write_id, datapoint_id, op, cleared{columns} FROM {log_table(datasource_id)}{logged} "
            f"UNION ALL SELECT c.unlogged AS write_id, c.datapoint_id, {OP_UPSERT} AS op, NULL AS cleared"
            f"{self._unlogged_values(fields)} FROM {current_table(datasource_id)} c "
            f"JOIN writes w ON w.write_id = c.unlogged WHERE c.unlogged IS NOT NULL{unlogged})"
        )

    def write_marker(self, datasource_id: int) -> int:
        """A number that changes whenever a write to the datasource commits, for caches of its query
        results. A single writer (DuckDB) counts its own commits in memory, with no statement; other
        engines have several writers and read the latest write id (``last_write_id``)."""
        if self.dialect.single_writer:
            return self._commits
        return self.last_write_id(datasource_id)

    def _touched(self, column: str, number: int, prefix: str = "") -> str:
        """The condition: the log row set (non-NULL), cleared or deleted the field."""
        return (
            f"(({prefix}op = {OP_UPSERT} AND {prefix}{column} IS NOT NULL) OR "
            f"({prefix}op = {OP_DELETE_VALUES} AND "
            f"{self.dialect.list_contains(prefix + 'cleared', str(number))}) OR "
            f"{prefix}op = {OP_DELETE_DATAPOINT})"
        )

    def last_write_id(self, datasource_id: int) -> int:
        """The id of the datasource's latest committed write (-1: none): one index lookup, so a cache of
        query results (e.g. the ids a vector search's filter keeps) can tell cheaply that nothing changed."""
        # Write ids and times both grow with each write of a datasource (its writes hold its lock).
        rows = self._rows(
            "SELECT write_id FROM writes WHERE datasource_id = $1 ORDER BY written_at DESC LIMIT 1", [datasource_id]
        )
        return rows[0][0] if rows else -1

    def _last_write_before(self, session: Session, datasource_id: int, at: dt.datetime) -> int:
        """The datasource's last write at or before ``at`` (-1: none)."""
        row = session.one(
            "SELECT max(write_id) FROM writes WHERE datasource_id = $1 AND written_at <= $2", [datasource_id, at]
        )
        return -1 if row is None or row[0] is None else row[0]

    def _as_of_relation(
        self, datasource_id: int, fields: Sequence[FieldRecord], last_write: int, only: Sequence[int] | None = None
    ) -> str:
        """A subquery with each datapoint's values as they were after write ``last_write``; with ``only``,
        of those datapoints alone (a lookup by path then folds their log rows, not the whole log's).

        It binds no parameters: the write id is an int of the store's own, written as a literal, so a
        query over it binds nothing (PostgreSQL's driver then reads the result through COPY)."""
        last_by = self.dialect.last_by
        chosen = ""
        if only is not None:
            chosen = f"datapoint_id IN ({', '.join(f'{int(i):d}' for i in only) or 'NULL'})"
        selected = "".join(
            f", {last_by(f.column, 'write_id', self._touched(f.column, field_id(f)), _is_array(f))} AS {f.column}"
            for f in fields
        )
        outer = "".join(f", g.{f.column}" for f in fields)
        return (
            f"(SELECT g.datapoint_id, c.path{outer} FROM (SELECT datapoint_id, "
            f"{last_by('op', 'write_id', f'op <> {OP_DELETE_VALUES}')} AS last_op{selected} "
            f"FROM {self._log_relation(datasource_id, fields, chosen)} l WHERE write_id <= {int(last_write):d} "
            f"GROUP BY datapoint_id) g JOIN {current_table(datasource_id)} c ON c.datapoint_id = g.datapoint_id "
            f"WHERE g.last_op = {OP_UPSERT}{f' AND c.{chosen}' if chosen else ''})"
        )

    def _ids_at(self, session: Session, datasource_id: int, paths: Sequence[str]) -> list[int]:
        """The ids of the datapoints ever at ``paths`` (deleted ones too: an earlier state may hold them)."""
        if not paths:
            return []
        placeholders = ", ".join(f"${n}" for n in range(1, len(paths) + 1))
        rows = session.rows(
            f"SELECT datapoint_id FROM {current_table(datasource_id)} WHERE path IN ({placeholders})", list(paths)
        )
        return sorted(row[0] for row in rows)

    # Queries ------------------------------------------------------------------------------------

    def _catalog_record(self, session: Session, datasource_id: int) -> DatasourceRecord:
        """The datasource's record read in one statement (its row joined with its fields): a query on
        an engine with other writers reads it afresh each time, and a round trip is most of a lookup."""
        columns = ", ".join(f"d.{name.strip()}" for name in DATASOURCE_COLUMNS.split(","))
        rows = session.rows(
            f"SELECT {columns}, f.name, f.type, f.tags, f.created_at, f.field_id FROM datasources d "
            "LEFT JOIN fields f ON f.datasource_id = d.id WHERE d.id = $1 ORDER BY f.field_id",
            [datasource_id],
        )
        if not rows:
            raise NotFound(f"datasource {datasource_id} not found")
        (datasource_id, namespace, name, source_uri, revision, created_at, *scan) = rows[0][:-5]
        fields = [
            vector_fields.field_record(field, kind, tuple(tags), created, f"f{number}")
            for field, kind, tags, created, number in (row[-5:] for row in rows)
            if field is not None
        ]
        return DatasourceRecord(
            datasource_id, namespace, name, source_uri, revision, created_at, ScanStatus(*scan), fields
        )

    def _compile(
        self, session: Session, query: common_pb2.Query, dialect: QueryDialect | None = None
    ) -> tuple[DatasourceRecord, CompiledQuery]:
        datasource = (
            self._catalog_record(session, query.datasource_id)
            if not self.dialect.single_writer
            else self.get_datasource(query.datasource_id)
        )
        # The relation binds no parameters (write ids are written as literals, see ``_as_of_relation``):
        # only the query's own values may be bound, and a dialect that renders them as literals binds none.
        as_of = timestamp_or_none(query.as_of)
        if as_of is None:
            fields, base, row_filter = datasource.fields, current_table(datasource.id), "alive"
        else:
            fields = self._fields(session, datasource.id, at=as_of)
            last_write = self._last_write_before(session, datasource.id, as_of)
            paths = looked_up_paths(query)
            only = self._ids_at(session, datasource.id, paths) if paths is not None else None
            base, row_filter = self._as_of_relation(datasource.id, fields, last_write, only), ""
        columns = {f.name: Column(f.column, f.type, f.vector) for f in fields}
        query, timed = timed_select_items(query, columns, lambda at: self._fields(session, datasource.id, at=at))
        if not timed:
            relation = f"{base} AS rows" if base.startswith("(") else base
        else:
            joins, extra = [], []
            for name, field, at in timed:
                last_write = int(self._last_write_before(session, datasource.id, at))  # a literal, as above
                latest = self.dialect.last_by(
                    field.column, "write_id", self._touched(field.column, field_id(field)), _is_array(field)
                )
                joins.append(
                    f"LEFT JOIN (SELECT datapoint_id, {latest} AS v FROM "
                    f"{self._log_relation(datasource.id, [field])} l WHERE write_id <= "
                    f"{last_write:d} GROUP BY datapoint_id) {name} "
                    f"ON {name}.datapoint_id = base.datapoint_id"
                )
                extra.append(f", {name}.v AS {name}")
            relation = f"(SELECT base.*{''.join(extra)} FROM {base} AS base {' '.join(joins)}) AS timed"
        compiled = compile_query(query, columns, relation, dialect or self.dialect.query_dialect, row_filter=row_filter)
        compiled.count_sql += " AS counted"
        compiled.total_sql += " AS counted"
        return datasource, compiled

    def find_sql_tables(self, names: Iterable[tuple[str, str]]) -> list[tuple[str, str, bool, int]]:
        """The datasources and datasets whose (namespace, name), compared in lower case, is among ``names``
        (lower case): (namespace, name, is a dataset, id) each, datasources first. One statement."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        pairs = " OR ".join(
            f"(lower(namespace) = ${2 * i + 1} AND lower(name) = ${2 * i + 2})" for i in range(len(wanted))
        )
        params = [part for pair in wanted for part in pair]
        rows = self._rows(
            f"SELECT namespace, name, FALSE AS dataset, id FROM datasources WHERE {pairs} UNION ALL "
            f"SELECT namespace, name, TRUE AS dataset, id FROM datasets WHERE {pairs} "
            "ORDER BY dataset, id",
            params,
        )
        return [(namespace, name, bool(dataset), int(key)) for namespace, name, dataset, key in rows]

    def sql_relation(self, query: common_pb2.Query, lower_names: bool = False) -> tuple[str, list[OutputColumn]]:
        """``query`` as one SELECT of this engine's SQL with every value a literal (nothing bound), its
        columns named as the result's (quoted; in lower case with ``lower_names``), and those columns:
        what SQL over the store reads as a table."""
        literal_dialect = DUCKDB_LITERALS if self.dialect.query_dialect.literals is None else None
        with self.dialect.read() as session:
            _, compiled = self._compile(session, query, literal_dialect)
        prefix = "SELECT " + ", ".join(compiled.select_sql) + " FROM "
        if compiled.params or not compiled.sql.startswith(prefix):
            raise InvalidArgument("the query does not compile to one SELECT without parameters")
        named = ", ".join(
            f"{sql} AS {_quote(column.name.lower() if lower_names else column.name)}"
            for sql, column in zip(compiled.select_sql, compiled.columns, strict=True)
        )
        return f"SELECT {named} FROM {compiled.sql[len(prefix) :]}", compiled.columns

    def stream_read_only(
        self, sql: str, params: Sequence[Any], max_rows: int
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result of a read-only statement (``sql_relation``'s tables inside), run by the engine in a
        read-only transaction, streamed in batches of at most ``max_rows``."""
        return self.dialect.stream_read_only(sql, params, max_rows or DEFAULT_BATCH_ROWS)

    def query(self, query: common_pb2.Query, max_batch_rows: int = 0) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        if nearest.is_nearest(query):  # answered through this method's clause-free queries
            return nearest.query(self, query, max_batch_rows)
        with self.dialect.read() as session:
            datasource, compiled = self._compile(session, query)
        schema = result_schema(datasource, compiled.columns)
        batches = self.dialect.stream(compiled.sql, compiled.params, max_batch_rows or DEFAULT_BATCH_ROWS)
        return schema, _conformed(batches, schema)

    def query_bounded(self, query: common_pb2.Query, max_rows: int) -> tuple[pa.Schema, list[pa.RecordBatch]] | None:
        """``query``'s schema and whole result, read in one session; None past ``max_rows`` rows."""
        if nearest.is_nearest(query):  # ranked by the nearest-neighbour pass, which reads through query()
            schema, batches = self.query(query)
            kept = [conform(batch, schema) for batch in batches]
            return None if sum(batch.num_rows for batch in kept) > max_rows else (schema, kept)
        path = _one_path_lookup(query) if self.dialect.single_writer else None
        if path is not None:
            lookup = self._point_lookup(query)
            if lookup is not None:
                record, sql, schema = lookup
                # Read before the rows: a write committing meanwhile leaves them under a past marker.
                marker = self.write_marker(query.datasource_id)
                key = (query.datasource_id, path)
                earlier = self._looked_up.get(key)
                index = self.path_indexes.find(query.datasource_id, marker, record)
                if index is not None:
                    few: pa.Table | None = index.rows_of(path)
                    self.path_indexes.served += 1
                elif earlier is not None and earlier[0] == marker:
                    few = earlier[1]
                else:
                    with self.dialect.read() as session:
                        few = session.few_rows(sql, [path], schema, max_rows + 1)
                    # A path is at most one live datapoint; a row of long texts is read again instead.
                    if few is not None and few.num_rows <= 1 and few.nbytes <= LOOKED_UP_ROW_BYTES:
                        if len(self._looked_up) >= LOOKED_UP_ROWS:
                            self._looked_up = {}  # rather than an order of use to keep per lookup
                        self._looked_up[key] = (marker, few)
                if few is not None:
                    return None if few.num_rows > max_rows else (schema, few.to_batches())
        # Several paths (one path was asked of the index above: it is not counted twice).
        paths = _paths_alone(query) if self.dialect.single_writer and path is None else None
        if paths is not None:
            record = self.get_datasource(query.datasource_id)
            index = self.path_indexes.find(query.datasource_id, self.write_marker(query.datasource_id), record)
            found = None if index is None else index.rows_of_paths(paths)
            # A limit that cuts the rows found leaves which to keep to the statement.
            if found is not None and not (query.HasField("limit") and found.num_rows > query.limit):
                self.path_indexes.served += 1
                return None if found.num_rows > max_rows else (found.schema, found.to_batches())
        query = _without_redundant_limit(query)
        with self.dialect.read() as session:
            datasource, compiled = self._compile(session, query)
            schema = result_schema(datasource, compiled.columns)
            few = session.few_rows(compiled.sql, compiled.params, schema, max_rows + 1)
            if few is not None:
                return None if few.num_rows > max_rows else (schema, few.to_batches())
            kept, rows = [], 0
            batches = session.batches(compiled.sql, compiled.params, max_rows + 1)
            try:
                for batch in batches:
                    rows += batch.num_rows
                    if rows > max_rows:
                        return None
                    kept.append(conform(batch, schema))
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()  # a PostgreSQL cursor must finish before the session's next statement
        return schema, kept

    def _point_lookup(self, query: common_pb2.Query) -> tuple[DatasourceRecord, str, pa.Schema] | None:
        """The datasource record, SQL (one parameter: the path) and schema of ``query``, a lookup of one
        path, compiled once per version of its datasource's record: a single writer replaces the cached
        record on every change to the datasource (fields, scan state), which makes the compiled one stale."""
        record = self.get_datasource(query.datasource_id)
        cached = self._point_lookups.get(query.datasource_id)
        if cached is not None and cached[0] is record:
            return cached
        template = common_pb2.Query(datasource_id=query.datasource_id)
        template.filter.CopyFrom(query.filter)
        with self.dialect.read() as session:
            datasource, compiled = self._compile(session, template)
        if datasource is not record or len(compiled.params) != 1:
            return None  # changed meanwhile, or compiled some other way: the general path serves it
        schema = result_schema(datasource, compiled.columns)
        self._point_lookups[query.datasource_id] = (record, compiled.sql, schema)
        return record, compiled.sql, schema

    def _read_path_index(self, datasource_id: int, max_bytes: int) -> path_index.PathIndex | None:
        """The datasource's live rows in its point lookup's columns, indexed by path (``path_index``);
        None when they pass ``max_bytes`` or its record changed meanwhile. Runs off the request threads."""
        started = time.perf_counter()
        # Read before the rows, as for ``_looked_up``: a write committing meanwhile leaves the index
        # under a marker that is already gone.
        marker = self.write_marker(datasource_id)
        record = self.get_datasource(datasource_id)
        with self.dialect.read() as session:
            # The lookup's view without its path filter: the same columns, every live datapoint.
            datasource, compiled = self._compile(session, common_pb2.Query(datasource_id=datasource_id))
            if datasource is not record:
                return None
            schema = result_schema(datasource, compiled.columns)
            kept, nbytes = [], 0
            batches = session.batches(compiled.sql, compiled.params, DEFAULT_BATCH_ROWS)
            try:
                for batch in batches:
                    nbytes += batch.nbytes + path_index.ROW_BYTES * batch.num_rows
                    if nbytes > max_bytes:  # stopped early: a large datasource keeps the statement path
                        log.info("datasource %d passes %d bytes: no path index", datasource_id, max_bytes)
                        return None
                    kept.append(conform(batch, schema))
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
        rows = pa.Table.from_batches(kept, schema)
        return path_index.build(marker, record, rows, PATH_COLUMN, started)

    def describe(self, query: common_pb2.Query) -> tuple[pa.Schema, int]:
        schema, total, _ = self.describe_with_ids(query)
        return schema, total

    def describe_with_ids(self, query: common_pb2.Query) -> tuple[pa.Schema, int, tuple[int, int]]:
        """``describe`` plus the (smallest, largest) datapoint id of the result, (0, 0) when it is empty
        or is a nearest-neighbour result (ordered by distance: read whole, never split by id)."""
        if nearest.is_nearest(query):
            schema, total = nearest.describe(self, query)
            return schema, total, (0, 0)
        with self.dialect.read() as session:
            datasource, compiled = self._compile(session, query)
            total, low, high = session.row(compiled.count_sql, compiled.count_params)
        return result_schema(datasource, compiled.columns), int(total), (int(low or 0), int(high or 0))

    def count(self, query: common_pb2.Query) -> int:
        if nearest.is_nearest(query):
            return self.describe(query)[1]
        whole = self.dialect.single_writer and _counts_every_live_datapoint(query)
        if whole:
            # The marker is read before the count: a write committing meanwhile moves it past what is
            # kept, so the next count runs the statement again instead of reusing a stale total.
            marker = self.write_marker(query.datasource_id)
            kept = self._live_counts.get(query.datasource_id)
            if kept is not None and kept[0] == marker:
                self.get_datasource(query.datasource_id)  # a deleted datasource is still NotFound
                return kept[1]
        with self.dialect.read() as session:
            _, compiled = self._compile(session, query)
            row = session.one(compiled.total_sql, compiled.count_params)
        total = int(row[0]) if row is not None else 0  # COUNT(*) always answers one row
        if whole:
            self._live_counts[query.datasource_id] = (marker, total)
        return total

    def estimate_with_ids(self, query: common_pb2.Query) -> tuple[pa.Schema, int, tuple[int, int]]:
        """``describe_with_ids`` without running the query: its rows as the engine's planner estimates
        them, or, where the planner cannot tell (DuckDB), bounded by every row the current table holds,
        which its column statistics count without a scan. The id bounds are those of every datapoint
        the datasource ever had (the current table keeps deleted ones too), which hold the result's at
        any ``as_of``."""
        if nearest.is_nearest(query):
            return self.describe_with_ids(query)
        # Read before the statement, as ``count``'s: a write committing meanwhile outdates what is kept.
        marker = self.write_marker(query.datasource_id) if self.dialect.single_writer else None
        with self.dialect.read() as session:
            datasource, compiled = self._compile(session, query)
            schema = result_schema(datasource, compiled.columns)
            rows = self.dialect.planned_rows(session, compiled.sql, compiled.params)
            table = current_table(datasource.id)
            if rows is None:
                # The same for every query of the datasource until its next write: kept per write marker
                # (a single writer's only), since a flight's DoGet asks for it before every result.
                kept = self._table_bounds.get(datasource.id)
                if kept is not None and kept[0] == marker:
                    return schema, kept[1], kept[2]
                total, low, high = session.row(f"SELECT count(*), min(datapoint_id), max(datapoint_id) FROM {table}")
            else:  # PostgreSQL counts by scanning, and reads these two from its primary key's index
                total, (low, high) = rows, session.row(f"SELECT min(datapoint_id), max(datapoint_id) FROM {table}")
        bounds = (int(low or 0), int(high or 0))
        if rows is None and marker is not None:
            self._table_bounds[datasource.id] = (marker, int(total), bounds)
        return schema, int(total), bounds

    def count_values(self, query: common_pb2.Query, field: str, bins: int, max_values: int) -> facets.Facet:
        if nearest.is_nearest(query):
            raise InvalidArgument("facets count the datapoints of a filtered view, not a nearest-neighbour result")
        narrowed, request = facets.facet_query(query, field, bins, max_values)
        with self.dialect.read() as session:
            _, compiled = self._compile(session, narrowed)
            return facets.count_values(compiled, request, self.dialect.query_dialect, session.table)

    def history(self, datasource_id: int, path: str, field: str | None = None) -> pa.Table:
        with self.dialect.read() as session:
            known = self._datasource(session, datasource_id).fields
            chosen = [f for f in known if f.name == field] if field else known
            if field and not chosen:
                raise NotFound(f"field {field!r} not found in datasource {datasource_id}")
            condition = "c.path = $2"
            if field:
                condition += f" AND {self._touched(chosen[0].column, field_id(chosen[0]), 'l.')}"
            table = self._log_rows(session, datasource_id, chosen, condition, [path])
            if (
                table.num_rows == 0
                and session.one(f"SELECT 1 FROM {current_table(datasource_id)} WHERE path = $1", [path]) is None
            ):
                raise NotFound(f"datapoint {path!r} not found in datasource {datasource_id}")
            return table

    def changes(self, datasource_id: int, since: dt.datetime | None, until: dt.datetime | None) -> pa.Table:
        with self.dialect.read() as session:
            fields = self._datasource(session, datasource_id).fields
            conditions, params = ["TRUE"], []
            for bound, operator in ((since, ">="), (until, "<=")):
                if bound is not None:
                    params.append(bound)
                    conditions.append(f"w.written_at {operator} ${len(params) + 1}")
            return self._log_rows(session, datasource_id, fields, " AND ".join(conditions), params)

    def _log_rows(
        self, session: Session, datasource_id: int, fields: Sequence[FieldRecord], condition: str, params: list[Any]
    ) -> pa.Table:
        """Log rows with when, who and what: one row per datapoint per write, values as written.

        ``condition`` numbers its parameters from ``$2``; ``$1`` is the datasource id.
        """
        values = "".join(f", l.{f.column}" for f in fields)
        operation = " ".join(f"WHEN {op} THEN '{name}'" for op, name in LOG_OPERATIONS.items())
        cleared = self.dialect.list_agg("f.name", "f.field_id")
        contains = self.dialect.list_contains("l.cleared", "f.field_id")
        sql = (
            f"SELECT w.written_at, w.actor, l.write_id, c.path, CASE l.op {operation} END AS operation, "
            f"coalesce((SELECT {cleared} FROM fields f WHERE f.datasource_id = $1 AND {contains}), "
            f"{self.dialect.empty_text_list()}) AS cleared{values} "
            f"FROM {self._log_relation(datasource_id, fields)} l JOIN writes w ON w.write_id = l.write_id "
            f"JOIN {current_table(datasource_id)} c ON c.datapoint_id = l.datapoint_id "
            f"WHERE {condition} ORDER BY l.write_id, c.path"
        )
        table = session.table(sql, [datasource_id, *params])
        schema = pa.schema(
            [
                pa.field("written_at", pa.timestamp("us", tz="UTC")),
                pa.field("actor", pa.string()),
                pa.field("write_id", pa.int64()),
                pa.field("path", pa.string()),
                pa.field("operation", pa.string()),
                pa.field("cleared", pa.list_(pa.string())),
            ]
            + [
                pa.field(
                    f.name,
                    vector_fields.arrow_type(f.type, f.vector),
                    metadata={TYPE_METADATA_KEY: f.type.value.encode()},
                )
                for f in fields
            ]
        )
        return conform(table, schema)

    # Datasets -----------------------------------------------------------------------------------

    def save_dataset(self, namespace: str, name: str, datasource_id: int, query: bytes) -> DatasetRecord:
        validate_namespace(namespace)
        validate_datasource_name(name, what="dataset")

        def work(session: Session) -> int:
            # The datasource's lock too: it cannot be deleted until this dataset is saved.
            self.dialect.lock(session, datasource_id)
            row = session.one("SELECT namespace FROM datasources WHERE id = $1", [datasource_id])
            if row is None:
                raise NotFound(f"datasource {datasource_id} not found")
            if row[0] != namespace:
                raise InvalidArgument(f"datasource {datasource_id} belongs to namespace {row[0]!r}, not {namespace!r}")
            inserted = session.one(
                "INSERT INTO datasets VALUES (nextval('dataset_ids'), $1, $2, $3, $4, $5) "
                "ON CONFLICT DO NOTHING RETURNING id",
                [namespace, name, datasource_id, query, utc_now()],
            )
            if inserted is None:
                raise AlreadyExists(f"dataset {name!r} already exists in namespace {namespace!r}")
            dataset_id: int = inserted[0]
            return dataset_id

        return self.get_dataset(self._write(CATALOG_LOCK, work))

    def get_dataset(self, dataset_id: int) -> DatasetRecord:
        rows = self._rows(f"SELECT {DATASET_COLUMNS} FROM datasets WHERE id = $1", [dataset_id])
        if not rows:
            raise NotFound(f"dataset {dataset_id} not found")
        return DatasetRecord(*rows[0])

    def find_dataset(self, namespace: str, name: str) -> DatasetRecord:
        rows = self._rows(
            f"SELECT {DATASET_COLUMNS} FROM datasets WHERE namespace = $1 AND name = $2", [namespace, name]
        )
        if not rows:
            raise NotFound(f"dataset {name!r} not found in namespace {namespace!r}")
        return DatasetRecord(*rows[0])

    def list_datasets(self, namespace: str, offset: int, limit: int) -> list[DatasetRecord]:
        rows = self._rows(
            f"SELECT {DATASET_COLUMNS} FROM datasets WHERE namespace = $1 ORDER BY id LIMIT $2 OFFSET $3",
            [namespace, limit, offset],
        )
        return [DatasetRecord(*row) for row in rows]

    def delete_dataset(self, dataset_id: int) -> None:
        def work(session: Session) -> None:
            if session.one("DELETE FROM datasets WHERE id = $1 RETURNING id", [dataset_id]) is None:
                raise NotFound(f"dataset {dataset_id} not found")

        self._write(CATALOG_LOCK, work)

    # Bag datasets ---------------------------------------------------------------------------------

    def register_bag_dataset(self, namespace: str, name: str, uri: str) -> BagDatasetRecord:
        validate_namespace(namespace)
        validate_datasource_name(name, what="bag dataset")
        validate_bag_uri(uri)

        def work(session: Session) -> tuple[Any, ...]:
            # An upsert: it returns the row whether it inserted or updated it.
            return session.row(
                "INSERT INTO bag_datasets VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, name) "
                "DO UPDATE SET uri = EXCLUDED.uri, registered_at = EXCLUDED.registered_at "
                f"RETURNING {BAG_DATASET_COLUMNS}",
                [namespace, name, uri, utc_now()],
            )

        return BagDatasetRecord(*self._write(CATALOG_LOCK, work))

    def find_bag_dataset(self, namespace: str, name: str) -> BagDatasetRecord:
        rows = self._rows(
            f"SELECT {BAG_DATASET_COLUMNS} FROM bag_datasets WHERE namespace = $1 AND name = $2", [namespace, name]
        )
        if not rows:
            raise NotFound(f"bag dataset {name!r} not found in namespace {namespace!r}")
        return BagDatasetRecord(*rows[0])

    def list_bag_datasets(self, namespace: str, offset: int, limit: int) -> list[BagDatasetRecord]:
        rows = self._rows(
            f"SELECT {BAG_DATASET_COLUMNS} FROM bag_datasets WHERE namespace = $1 ORDER BY name LIMIT $2 OFFSET $3",
            [namespace, limit, offset],
        )
        return [BagDatasetRecord(*row) for row in rows]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class StreamedWrite:
    """One upsert, written chunk by chunk inside the caller's transaction.

    New datapoints are appended to the current table (written once); existing ones first move their
    unlogged row into the log, then take the new values. Paths repeated across chunks are found in
    Arrow at the end, before anything commits. Paths the datasource lacks, without ``create_missing``,
    stop the writing; the rest of the upload is still read, to count them all for the refusal.
    """

    def __init__(
        self,
        store: SqlStore,
        session: Session,
        datasource_id: int,
        schema: pa.Schema,
        path_column: str,
        actor: str,
        create_missing: bool,
    ) -> None:
        self.store, self.session, self.datasource_id = store, session, datasource_id
        # The columns that can become fields (a column of Arrow's null type never does).
        self.settable = [f.name for f in schema if f.name != path_column and not pa.types.is_null(f.type)]
        self.path_column, self.actor, self.create_missing = path_column, actor, create_missing
        self.current = current_table(datasource_id)
        self.fields = store._locked_fields(session, datasource_id)
        # Datapoints with ids from here on are this write's own.
        self.first_new_id: int = session.value(f"SELECT coalesce(max(datapoint_id), 0) + 1 FROM {self.current}")
        self.next_id = self.first_new_id
        self.indexes_dropped = False
        self.write_id: int | None = None
        self.at: dt.datetime | None = None
        self.numbers: dict[int, None] = {}
        self.unique = UniquePaths()
        self.unknown: list[pa.Array] = []
        self.count = self.created = 0

    def add(self, chunk: pa.Table) -> None:
        paths, columns = coerce_write(chunk, self.path_column, self.fields)
        if len(paths) == 0:
            return
        self.unique.add(paths)
        found = self.store._existing(self.session, self.datasource_id, paths, self.first_new_id)
        row_ids = found["row_index"].to_numpy().astype(np.int64, copy=False)
        alive = found["alive"].to_numpy(zero_copy_only=False).astype(bool, copy=False)
        ids = np.full(len(paths), -1, dtype=np.int64)
        ids[row_ids] = found["datapoint_id"].to_numpy()
        is_new = ids < 0
        if not self.create_missing:
            unknown = is_new.copy()
            unknown[row_ids[~alive]] = True
            if unknown.any():
                self.unknown.append(paths.filter(pa.array(unknown)))
        if self.unknown:
            return
        new_count = int(is_new.sum())
        if self.next_id == 1 and new_count >= INDEX_AFTER_ROWS and self.store.dialect.index_after_first_load:
            # A large first load of an empty datasource, on an engine that builds indexes faster than
            # it keeps them up: the current table's indexes go, and come back in ``finish`` (in this
            # transaction, so a failed upload leaves them as they were). Its rows are all new: nothing
            # is looked up by path until then.
            self.store._drop_current_indexes(self.session, self.datasource_id)
            self.indexes_dropped = True
        ids[is_new] = np.arange(self.next_id, self.next_id + new_count, dtype=np.int64)
        self.next_id += new_count
        self.count += len(paths)
        self.created += new_count + int(np.count_nonzero(~alive))
        values, numbers = self._values(columns)
        if new_count:
            self._append(ids, paths, values, is_new, new_count)
        if found.num_rows:
            self._update(found, values, numbers)

    def _values(self, columns: list[CoercedColumn]) -> tuple[dict[str, pa.Array], list[int]]:
        """The chunk's columns in storage form by store column, creating its new fields (at the write's time)."""
        at = self.at  # set with write_id, by the first chunk
        if self.write_id is None or at is None:
            at = self.at = self.store._write_time(self.session, self.datasource_id)
            self.write_id = self.store._begin_write(self.session, self.datasource_id, at, self.actor, "upsert", 0)
        new = [(c.name, vector_fields.new_field_kind(c), ()) for c in columns if c.name not in self.fields]
        self.fields = self.store._add_fields(self.session, self.datasource_id, self.fields, new, at)
        values = {
            self.fields[c.name].column: self.store.dialect.storage_array(c.type, self.store._stored(c)) for c in columns
        }
        numbers = [field_id(self.fields[c.name]) for c in columns]
        self.numbers.update(dict.fromkeys(numbers))
        return values, numbers

    def _append(
        self, ids: np.ndarray, paths: pa.Array, values: dict[str, pa.Array], is_new: np.ndarray, new_count: int
    ) -> None:
        # A new datapoint's unlogged row needs no field list: every value it has, this write set.
        chosen = None if new_count == len(paths) else pa.array(is_new)
        rows = {
            "datapoint_id": pa.array(ids if chosen is None else ids[is_new]),
            "path": paths if chosen is None else paths.filter(chosen),
            "alive": pa.array(np.ones(new_count, dtype=bool)),
            "unlogged": pa.array(np.full(new_count, self.write_id, dtype=np.int64)),
        }
        for column, array in values.items():
            rows[column] = array if chosen is None else array.filter(chosen)
        self.session.append(self.current, pa.table(rows))

    def _update(self, found: pa.Table, values: dict[str, pa.Array], numbers: list[int]) -> None:
        """The existing datapoints of a chunk (``found``, from ``_existing``) take their new values, after
        their unlogged rows move into the log. Rows are found again by the dialect's row key, so each
        statement joins the few staged rows to the table rather than matching ids over it."""
        # An existing datapoint keeps values other writes set. Where a row sets every field the upload
        # can set, its unlogged row is "the write's fields" (no list: DuckDB rewrites whole rows to
        # update a list column, so the list column is only written where a row needs or had a list).
        order = found["row_index"]
        kept = {column: array.take(order) for column, array in values.items()}
        complete = len(values) == len(self.settable)
        full = np.full(found.num_rows, complete, dtype=bool)
        for array in kept.values():
            if array.null_count:
                full &= array.is_valid().to_numpy(zero_copy_only=False)
        staged = {"row_key": found["row_key"], **kept}
        lists = not full.all() or pc.any(found["has_set"]).as_py()
        if lists:
            staged["unlogged_set"] = set_fields(kept, numbers, unset=full)
        current, session = self.current, self.session
        session.stage("staged_values", pa.table(staged))
        try:
            writes = None
            if not pc.any(found["has_set"]).as_py():
                unique = pc.unique(found["unlogged"].drop_null())
                if len(unique) <= NAMED_WRITES:
                    writes = unique.to_pylist()
            fields = list(self.fields.values())
            self.store._spill(session, self.datasource_id, fields, "staged_values", key="row_key", writes=writes)
            key = self.store.dialect.row_key
            # Only what changes is assigned: a column read back from the table costs a scan of it, so
            # the old value is read only where the upload leaves some of a column's rows NULL (kept),
            # and ``alive`` only where a deleted datapoint comes back.
            assignments = "".join(
                f", {n} = coalesce(s.{n}, {current}.{n})" if array.null_count else f", {n} = s.{n}"
                for n, array in kept.items()
            )
            if not pc.all(found["alive"]).as_py():
                assignments += ", alive = TRUE"
            if lists:
                assignments += ", unlogged_set = s.unlogged_set"
            session.execute(
                f"UPDATE {current} SET unlogged = $1{assignments} FROM staged_values s "
                f"WHERE {current}.{key} = s.row_key",
                [self.write_id],
            )
        finally:
            session.unstage("staged_values")

    def finish(self) -> WriteResult:
        if self.unknown:
            raise unknown_paths_error(pa.concat_arrays(self.unknown), self.datasource_id)
        self.unique.check()
        if self.indexes_dropped:
            self.store._build_current_indexes(self.session, self.datasource_id)
        if self.write_id is not None:
            self.session.execute(
                "UPDATE writes SET rows = $1, fields = $2::INTEGER[] WHERE write_id = $3",
                [self.count, list(self.numbers), self.write_id],
            )
        return WriteResult(self.count, self.created)


def _add_while_reading(write: StreamedWrite, chunks: Iterator[pa.Table]) -> None:
    """Adds each chunk on a helper thread while this thread reads the next one from the upload.

    The engine's statements then overlap receiving and decoding the rest of the upload, rather than
    stopping the sender while they run. The upload is read on this thread only (a stream may be read
    only by its call's handler), and a chunk's statements run only after the previous chunk's have
    finished, so the session is never used by two threads at once. An error of either side stops both:
    this thread reads no further once a chunk failed, and waits for the chunk in flight before raising.
    """
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="upload-writer") as pool:
        pending: concurrent.futures.Future[None] | None = None
        try:
            for chunk in chunks:
                if pending is not None:
                    pending.result()
                pending = pool.submit(write.add, chunk)
        except BaseException:
            if pending is not None:
                concurrent.futures.wait([pending])
            raise
        if pending is not None:
            pending.result()


def _chunks(schema: pa.Schema, batches: Iterable[pa.RecordBatch], first: int) -> Iterator[pa.Table]:
    """``batches`` regrouped into tables of about ``CHUNK_ROWS`` rows (fewer, larger statements); the
    first of ``first`` rows (see ``FIRST_CHUNK_ROWS``)."""
    pending: list[pa.RecordBatch] = []
    rows, wanted = 0, first
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= wanted:
            yield pa.Table.from_batches(pending, schema)
            pending, rows, wanted = [], 0, CHUNK_ROWS
    if pending or rows == 0:
        yield pa.Table.from_batches(pending, schema)


def _conformed(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    try:
        for batch in batches:
            yield conform(batch, schema)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


# A filter naming more paths than this is read as any other filter (its ids would make a long literal list).
LOOKUP_PATHS = 1000


def looked_up_paths(query: common_pb2.Query) -> list[str] | None:
    """The paths a query's filter keeps the result to (``path == p`` or ``path.isin([...])``, alone or
    ANDed with other conditions), or None when it is not such a lookup."""
    if not query.HasField("filter"):
        return None
    nodes = [query.filter]
    if query.filter.WhichOneof("node") == "all_of":
        nodes = list(query.filter.all_of.filters)
    for node in nodes:
        if node.WhichOneof("node") != "comparison":
            continue
        comparison = node.comparison
        if comparison.field != "path" or comparison.HasField("measure"):
            continue
        if comparison.op == common_pb2.COMPARISON_OPERATOR_EQ and comparison.WhichOneof("operand") == "value":
            values = [comparison.value]
        elif comparison.op == common_pb2.COMPARISON_OPERATOR_ISIN and comparison.WhichOneof("operand") == "values":
            values = list(comparison.values.values)
        else:
            continue
        if len(values) <= LOOKUP_PATHS and all(v.WhichOneof("kind") == "string_value" for v in values):
            return list(dict.fromkeys(v.string_value for v in values))
    return None


def _one_path_lookup(query: common_pb2.Query) -> str | None:
    """The path of a query that is ``path == p`` and nothing more (no select, order, as_of or
    nearest; a limit of at least one cannot cut it), or None."""
    if query.select or query.order_by or query.HasField("as_of") or query.HasField("nearest"):
        return None
    if query.HasField("limit") and query.limit < 1:
        return None
    # Only `path == p` compiles to one bound path; `isin` of one path binds a list.
    if (
        query.filter.WhichOneof("node") != "comparison"
        or query.filter.comparison.op != common_pb2.COMPARISON_OPERATOR_EQ
    ):
        return None
    paths = looked_up_paths(query)
    return paths[0] if paths else None


def _paths_alone(query: common_pb2.Query) -> list[str] | None:
    """The paths of a query that is ``path.isin([...])`` or ``path == p`` and nothing more (no select,
    order, as_of or nearest; a limit aside), or None."""
    if query.select or query.order_by or query.HasField("as_of") or query.HasField("nearest"):
        return None
    if query.filter.WhichOneof("node") != "comparison":
        return None
    return looked_up_paths(query)


def _counts_every_live_datapoint(query: common_pb2.Query) -> bool:
    """Whether ``query`` is its datasource's every live datapoint now, as it is: no filter, limit,
    as_of or nearest, and no selection or order (whose names compiling it would check)."""
    return not (
        query.HasField("filter")
        or query.HasField("limit")
        or query.HasField("as_of")
        or query.HasField("nearest")
        or query.select
        or query.order_by
    )


def _without_redundant_limit(query: common_pb2.Query) -> common_pb2.Query:
    """``query`` without its limit when it is a lookup of paths alone whose limit cannot cut it (a
    path is at most one live datapoint): a bound LIMIT costs an engine's point lookup about a tenth of
    its time, and ``query_bounded`` reads no more rows than it was asked for anyway."""
    if not query.HasField("limit") or query.order_by or query.HasField("nearest"):
        return query
    if query.filter.WhichOneof("node") != "comparison":  # ANDed conditions keep theirs: rare, and cheap
        return query
    paths = looked_up_paths(query)
    if paths is None or query.limit < len(paths):
        return query
    unlimited = common_pb2.Query()
    unlimited.CopyFrom(query)
    unlimited.ClearField("limit")
    return unlimited


def _is_array(field: FieldRecord) -> bool:
    return field.type is FieldType.VECTOR


def merge_tags(existing: Sequence[str], added: Sequence[str]) -> tuple[str, ...]:
    """``existing`` then the new ones of ``added``, each tag once, in first-occurrence order."""
    return tuple(dict.fromkeys([*existing, *added]))


def check_unique_paths(paths: pa.Array) -> None:
    """Refuses a write that names a path twice, naming the first such path (checked in Arrow)."""
    if len(pc.unique(paths)) == len(paths):
        return
    counts = pc.value_counts(paths)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    raise duplicate_path_error(repeated.field("values")[0].as_py())


class UniquePaths:
    """Checks that an upload names each path once, chunk by chunk, in Arrow.

    Uploads usually come sorted (listings, frames built from them): while every chunk's paths strictly
    increase, also across chunks, they are unique and one vectorised comparison per chunk proves it.
    Otherwise every path is hashed once at the end (``check_unique_paths``)."""

    def __init__(self) -> None:
        self._chunks: list[pa.Array] = []
        self._increasing = True

    def add(self, paths: pa.Array) -> None:
        if self._increasing and len(paths):
            previous = self._chunks[-1][-1] if self._chunks else None
            if previous is not None and not pc.less(previous, paths[0]).as_py():
                self._increasing = False
            elif len(paths) > 1:
                self._increasing = pc.all(pc.less(paths.slice(0, len(paths) - 1), paths.slice(1))).as_py()
        self._chunks.append(paths)

    def check(self) -> None:
        """Raises the duplicate-path error naming the first repeated path, if any path repeats."""
        if not self._increasing:
            check_unique_paths(pa.concat_arrays(self._chunks))


def set_fields(values: dict[str, pa.Array], numbers: Sequence[int], unset: np.ndarray | None = None) -> pa.Array:
    """Per row, the ids of the fields it sets (its non-NULL values), as a list column; NULL in the rows
    where ``unset`` is true."""
    rows = len(next(iter(values.values()))) if values else 0
    mask = None if unset is None else pa.array(unset)
    if not values:
        return pa.ListArray.from_arrays(
            pa.array(np.zeros(rows + 1, dtype=np.int32)), pa.array([], pa.int32()), mask=mask
        )
    valid = np.stack([array.is_valid().to_numpy(zero_copy_only=False) for array in values.values()], axis=1)
    if unset is not None:
        valid[unset] = False  # a NULL list holds no ids
    offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
    ids = np.broadcast_to(np.asarray(numbers, dtype=np.int32), valid.shape)[valid]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids, pa.int32()), mask=mask)


def unknown_paths_error(unknown: pa.Array, datasource_id: int) -> UnknownPaths:
    shown = ", ".join(repr(p) for p in unknown.slice(0, UNKNOWN_PATHS_SHOWN).to_pylist())
    more = f" (and {len(unknown) - UNKNOWN_PATHS_SHOWN} more)" if len(unknown) > UNKNOWN_PATHS_SHOWN else ""
    return UnknownPaths(
        # "paths are not in datasource ... create_missing" is what clients (this version and earlier
        # ones) recognise as UnknownPathsError: kept word for word, even for a single path.
        f"{len(unknown)} paths are not in datasource {datasource_id}: {shown}{more}; "
        "pass create_missing=True to create them",
        count=len(unknown),
    )
