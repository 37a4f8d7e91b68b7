"""Stores behind the metadata service: DuckDB (embedded default) and PostgreSQL (replicas)."""

from .base import Store
from .duckdb_store import DuckDBStore

__all__ = ["DuckDBStore", "Store"]
