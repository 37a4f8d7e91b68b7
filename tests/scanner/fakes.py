"""An in-memory Index for testing scans without a metadata service."""

from __future__ import annotations

import pyarrow as pa

from thresher.core.scan_status import ScanStatus
from thresher.services.scanner.metadata_interfaces import MetadataError


class MemoryIndex:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.upserts: list[list[str]] = []
        self.deletes: list[list[str]] = []
        self.reports: list[ScanStatus] = []
        self.fail_upsert: str | None = None

    def prepare(self, stamp: str) -> None:
        self.stamp = stamp

    def indexed(self, stamp: str):
        if stamp == "modified":
            return {path: (row.get("size"), _micros(row.get("modified"))) for path, row in self.rows.items()}
        return {path: (row.get("size"), row.get(stamp)) for path, row in self.rows.items()}

    def upsert(self, batch: pa.RecordBatch) -> None:
        if self.fail_upsert:
            raise MetadataError(self.fail_upsert)
        self.upserts.append(batch.column("path").to_pylist())
        for row in batch.to_pylist():
            self.rows[row["path"]] = row

    def delete(self, paths: list[str]) -> None:
        self.deletes.append(list(paths))
        for path in paths:
            del self.rows[path]

    def report(self, progress: ScanStatus) -> None:
        self.reports.append(progress)


def _micros(value):
    if value is None:
        return None
    return int(value.timestamp()) * 1_000_000 + value.microsecond
