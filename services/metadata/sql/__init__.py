"""Read-only SQL over the datasources and datasets a caller may read (DESIGN §5)."""

from .engine import SqlEngine, SqlTableInfo, TableKind

__all__ = ["SqlEngine", "SqlTableInfo", "TableKind"]
