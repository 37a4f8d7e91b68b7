"""Read-only SQL over the datasources and datasets a caller may read (docs/design.md, "The Flight surface")."""

from thresher.services.metadata.sql.engine import SqlEngine, SqlTableInfo, TableKind

__all__ = ["SqlEngine", "SqlTableInfo", "TableKind"]
