"""The store's catalog schema, and the upgrade of stores written by an earlier layout, run on open.

Layout 1 (no ``store_layout`` table): every write's rows in both the log and the current table;
DuckDB without unique constraints on names. Layout 2 (``sql_store.py``): a datapoint's latest write
may live in the current table only (``unlogged``, ``unlogged_set``), writes record their fields, and
names are unique by constraint in both engines. A layout-1 log already holds every write, so the
upgrade only adds the new columns (empty: every row counts as logged) and rebuilds the catalog
tables with their constraints, in one transaction. Layout 3 adds an index on each current table's
path, so a datapoint lookup is a seek rather than a scan; upgrading to it only builds those indexes.
"""

from __future__ import annotations

import logging

from thresher.core.errors import StoreLayoutError
from thresher.services.metadata.store.dialect import EngineDialect, Session

LAYOUT_VERSION = 3


def catalog_tables(dialect: EngineDialect) -> dict[str, str]:
    """Each catalog table's column definitions (names compare byte-wise in every engine)."""
    name, double, data = dialect.text_type, dialect.float_type, dialect.bytes_type
    return {
        "namespaces": f"name {name} PRIMARY KEY, repository_uri TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL",
        "datasources": (
            f"id BIGINT PRIMARY KEY, namespace {name} NOT NULL, name {name} NOT NULL, source_uri TEXT NOT NULL, "
            "revision TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, scan_state TEXT NOT NULL, "
            "files_seen BIGINT NOT NULL, datapoints_added BIGINT NOT NULL, datapoints_updated BIGINT NOT NULL, "
            f"datapoints_removed BIGINT NOT NULL, files_per_second {double} NOT NULL, failure_reason TEXT NOT NULL, "
            "scan_started_at TIMESTAMPTZ, scan_finished_at TIMESTAMPTZ, UNIQUE (namespace, name)"
        ),
        "fields": (
            f"datasource_id BIGINT NOT NULL, field_id INTEGER NOT NULL, name {name} NOT NULL, type TEXT NOT NULL, "
            "tags TEXT[] NOT NULL, created_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (datasource_id, name), "
            "UNIQUE (datasource_id, field_id)"
        ),
        "datasets": (
            f"id BIGINT PRIMARY KEY, namespace {name} NOT NULL, name {name} NOT NULL, datasource_id BIGINT NOT NULL, "
            f"query {data} NOT NULL, created_at TIMESTAMPTZ NOT NULL, UNIQUE (namespace, name)"
        ),
        "bag_datasets": (
            f"namespace {name} NOT NULL, name {name} NOT NULL, uri TEXT NOT NULL, "
            "registered_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (namespace, name)"
        ),
        "writes": (
            "write_id BIGINT PRIMARY KEY, datasource_id BIGINT NOT NULL, written_at TIMESTAMPTZ NOT NULL, "
            "actor TEXT NOT NULL, kind TEXT NOT NULL, rows BIGINT NOT NULL, fields INTEGER[]"
        ),
    }


def _has_table(session: Session, name: str) -> bool:
    count: int = session.value(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
        [name],
    )
    return count > 0


def prepare_schema(session: Session, dialect: EngineDialect, log: logging.Logger) -> None:
    """Creates the catalog, or upgrades an older layout's; runs under the catalog lock."""
    upgraded = _has_table(session, "datasources") and not _has_table(session, "store_layout")
    if upgraded:
        log.info("upgrading the metadata store from layout 1 to layout %d", LAYOUT_VERSION)
        _upgrade_from_1(session, dialect)
    for sequence in ("datasource_ids", "dataset_ids", "write_ids"):
        session.execute(f"CREATE SEQUENCE IF NOT EXISTS {sequence} START 1")
    for table, columns in catalog_tables(dialect).items():
        session.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    session.execute("CREATE INDEX IF NOT EXISTS writes_by_datasource ON writes (datasource_id, written_at)")
    session.execute("CREATE TABLE IF NOT EXISTS store_layout (version INTEGER NOT NULL)")
    found: int | None = session.value("SELECT max(version) FROM store_layout")
    if found is None or found < LAYOUT_VERSION:
        if found is not None or upgraded:
            log.info("indexing datapoint paths for the metadata store's layout %d", LAYOUT_VERSION)
        _index_paths(session, dialect)
        session.execute("INSERT INTO store_layout VALUES ($1)", [LAYOUT_VERSION])
    elif found > LAYOUT_VERSION:
        # Opening it anyway could write rows the newer layout reads wrongly: refuse before any write.
        raise StoreLayoutError(
            f"the metadata store {dialect.location or '(in memory)'} has layout {found}, written by a newer "
            f"Thresher; this version of Thresher opens layouts up to {LAYOUT_VERSION}. Run the newer "
            "Thresher (every replica of a deployment on the same version), or restore a backup taken "
            "before it opened the store"
        )


def _upgrade_from_1(session: Session, dialect: EngineDialect) -> None:
    dialect.before_ddl(session)
    for (datasource_id,) in session.rows("SELECT id FROM datasources ORDER BY id"):
        table = f"cur_{int(datasource_id)}"
        session.execute(f"ALTER TABLE {table} ADD COLUMN unlogged BIGINT")
        session.execute(f"ALTER TABLE {table} ADD COLUMN unlogged_set INTEGER[]")
    session.execute("ALTER TABLE writes ADD COLUMN fields INTEGER[]")
    session.execute("DROP INDEX IF EXISTS writes_by_datasource")
    # Rebuilt with their constraints (DuckDB cannot add a constraint to an existing table).
    for table, columns in catalog_tables(dialect).items():
        names = ", ".join(
            r[0]
            for r in session.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = $1 ORDER BY ordinal_position",
                [table],
            )
        )
        session.execute(f"CREATE TABLE {table}_upgraded ({columns})")
        session.execute(f"INSERT INTO {table}_upgraded ({names}) SELECT {names} FROM {table}")
        session.execute(f"DROP TABLE {table}")
        session.execute(f"ALTER TABLE {table}_upgraded RENAME TO {table}")


def path_index_sql(datasource_id: int) -> str:
    """The index on a current table's paths, which turns a lookup by path into a seek."""
    return f"CREATE INDEX IF NOT EXISTS cur_{int(datasource_id)}_by_path ON cur_{int(datasource_id)} (path)"


def _index_paths(session: Session, dialect: EngineDialect) -> None:
    for (datasource_id,) in session.rows("SELECT id FROM datasources ORDER BY id"):
        session.execute(path_index_sql(datasource_id))
