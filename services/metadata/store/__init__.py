"""The metadata store: one implementation (``sql_store.py``) over DuckDB (embedded default) or PostgreSQL (replicas)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from thresher.core.storage.blobs import BlobStore
from thresher.services.metadata.store.duckdb import DuckDBDialect
from thresher.services.metadata.store.interface import Store, utc_now
from thresher.services.metadata.store.postgres import PostgresDialect
from thresher.services.metadata.store.sql_store import SqlStore


class DuckDBStore(SqlStore):
    """The embedded store in the DuckDB file at ``path`` (``":memory:"`` for throwaway use)."""

    def __init__(self, path: str, blobs: BlobStore, clock: Callable[[], dt.datetime] = utc_now) -> None:
        super().__init__(DuckDBDialect(path), blobs, clock)


class PostgresStore(SqlStore):
    """The store over the PostgreSQL database at ``url`` (``postgresql://user:password@host:port/db``)."""

    def __init__(
        self, url: str, blobs: BlobStore, pool_size: int = 16, clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        super().__init__(PostgresDialect(url, pool_size), blobs, clock)


__all__ = ["DuckDBStore", "PostgresStore", "SqlStore", "Store"]
