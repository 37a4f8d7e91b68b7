"""What the scanner needs from the metadata service, as plain interfaces (the gRPC adapter implements them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Protocol

import pyarrow as pa

from thresher.core.scan_status import ScanStatus


class DatasourceNotFound(LookupError):
    """No datasource has this id."""


class MetadataError(Exception):
    """The metadata service refused or failed a call; the message says which and why."""


class MetadataUnavailable(MetadataError):
    """The metadata service could not be reached."""


@dataclasses.dataclass(frozen=True)
class DatasourceRef:
    id: int
    source_uri: str
    revision: str
    progress: ScanStatus
    repository_uri: str = ""
    """The git repository of the datasource's namespace, for a source that is a path in it ("" otherwise)."""


class Index(Protocol):
    """One datasource's datapoints, as a scan reads and writes them."""

    def prepare(self, stamp: str) -> None:
        """Declares the automatic fields a scan compares by (size and ``stamp``: ``modified`` or ``etag``),
        so a first scan can query them."""
        ...

    def indexed(self, stamp: str) -> Mapping[str, tuple[int | None, int | str | None]]:
        """Every indexed path with its (size, stamp): ``modified`` in microseconds since the epoch, or ``etag``."""
        ...

    def upsert(self, batch: pa.RecordBatch) -> None:
        """Writes (path, fields...) rows atomically."""
        ...

    def delete(self, paths: list[str]) -> None: ...

    def report(self, progress: ScanStatus) -> None:
        """Records the scan's state on the datasource."""
        ...


class Catalog(Protocol):
    """The datasources a scanner can be asked to scan."""

    def datasource(self, datasource_id: int) -> DatasourceRef:
        """Raises DatasourceNotFound."""
        ...

    def unfinished(self) -> Iterable[DatasourceRef]:
        """Datasources left pending or scanning, e.g. by a scanner that stopped."""
        ...

    def index(self, datasource_id: int) -> Index: ...
