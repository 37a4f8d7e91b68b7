"""Stores behind the metadata service: DuckDB (embedded default) and PostgreSQL (replicas)."""

from .base import Store
from .duckdb_store import DuckDBStore
from .postgres_store import PostgresStore

__all__ = ["DuckDBStore", "PostgresStore", "Store"]
