"""Read-only SQL over the datasources and datasets a caller may read (docs/design.md, "The Flight surface")."""

from .engine import SqlEngine, SqlTableInfo, TableKind

__all__ = ["SqlEngine", "SqlTableInfo", "TableKind"]
