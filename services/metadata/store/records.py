"""Plain records the store returns; the servicer turns them into protobuf messages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from thresher.core.scan_status import ScanStatus
from thresher.core.types import FieldType
from thresher.core.vectors import VectorSpec

SCAN_STATES = ("pending", "scanning", "ready", "failed")


@dataclass(frozen=True)
class NamespaceRecord:
    name: str
    repository_uri: str
    created_at: dt.datetime


@dataclass(frozen=True)
class FieldRecord:
    name: str
    type: FieldType
    tags: tuple[str, ...]
    created_at: dt.datetime
    # The store's column for this field; never shown to users.
    column: str
    vector: VectorSpec | None = None  # a vector field's dimension and element type


@dataclass
class DatasourceRecord:
    id: int
    namespace: str
    name: str
    source_uri: str
    revision: str
    created_at: dt.datetime
    scan: ScanStatus
    fields: list[FieldRecord] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    namespace: str
    name: str
    datasource_id: int
    # The serialized thresher.v1.Query.
    query: bytes
    created_at: dt.datetime


@dataclass(frozen=True)
class BagDatasetRecord:
    namespace: str
    name: str
    # The dataset's root folder (local path, s3:// or gs:// URI).
    uri: str
    registered_at: dt.datetime


@dataclass(frozen=True)
class WriteResult:
    datapoints_written: int
    datapoints_created: int
