"""The store interface the metadata service needs; ``sql_store.SqlStore`` implements it (layout described there)."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa

from thresher.core.scan_status import ScanStatus
from thresher.core.storage.blobs import BlobStore
from thresher.core.types import FieldType
from thresher.services.metadata.facets import Facet
from thresher.services.metadata.store.records import (
    BagDatasetRecord,
    DatasetRecord,
    DatasourceRecord,
    FieldRecord,
    NamespaceRecord,
    WriteResult,
)
from thresher.v1 import common_pb2


class Store(abc.ABC):
    """Everything the metadata service persists. Methods raise the errors of ``..errors``."""

    # The blob store beside the store's tables: blob field values, and the vector indexes (vector_index).
    _blobs: BlobStore

    @abc.abstractmethod
    def close(self) -> None: ...

    # Namespaces
    @abc.abstractmethod
    def create_namespace(self, name: str, repository_uri: str = "") -> NamespaceRecord: ...

    @abc.abstractmethod
    def get_namespace(self, name: str) -> NamespaceRecord: ...

    @abc.abstractmethod
    def list_namespaces(self, offset: int, limit: int) -> list[NamespaceRecord]: ...

    # Datasources
    def create_datasource(self, namespace: str, name: str, source_uri: str, revision: str) -> DatasourceRecord:
        return self._create_datasource(namespace, name, source_uri, revision, reuse=False)[0]

    def get_or_create_datasource(
        self, namespace: str, name: str, source_uri: str, revision: str
    ) -> tuple[DatasourceRecord, bool]:
        return self._create_datasource(namespace, name, source_uri, revision, reuse=True)

    @abc.abstractmethod
    def _create_datasource(
        self, namespace: str, name: str, source_uri: str, revision: str, reuse: bool
    ) -> tuple[DatasourceRecord, bool]:
        """Creates the datasource, or with ``reuse`` returns the one of that name if its source matches;
        says whether it created one."""

    @abc.abstractmethod
    def get_datasource(self, datasource_id: int) -> DatasourceRecord: ...

    @abc.abstractmethod
    def find_datasource(self, namespace: str, name: str) -> DatasourceRecord: ...

    @abc.abstractmethod
    def list_datasources(self, namespace: str, offset: int, limit: int) -> list[DatasourceRecord]: ...

    @abc.abstractmethod
    def delete_datasource(self, datasource_id: int) -> None: ...

    @abc.abstractmethod
    def update_scan(self, datasource_id: int, scan: ScanStatus) -> DatasourceRecord: ...

    # Fields and metadata
    @abc.abstractmethod
    def define_fields(
        self, datasource_id: int, fields: Sequence[tuple[str, FieldType, tuple[str, ...]]]
    ) -> list[FieldRecord]: ...

    @abc.abstractmethod
    def upsert(
        self, datasource_id: int, table: pa.Table, path_column: str, actor: str, create_missing: bool = False
    ) -> WriteResult:
        """Writes a table of (path, fields...) atomically: all of it, or nothing on any error.

        Paths without a live datapoint raise ``UnknownPaths`` unless ``create_missing``."""

    @abc.abstractmethod
    def upsert_batches(
        self,
        datasource_id: int,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        path_column: str,
        actor: str,
        create_missing: bool = False,
    ) -> WriteResult:
        """``upsert`` of a stream of batches, written as they arrive and committed after the last."""

    @abc.abstractmethod
    def delete_metadata(self, datasource_id: int, paths: Sequence[str], fields: Sequence[str], actor: str) -> int: ...

    @abc.abstractmethod
    def delete_datapoints(self, datasource_id: int, paths: Sequence[str], actor: str) -> int: ...

    # Queries
    @abc.abstractmethod
    def query(self, query: common_pb2.Query, max_batch_rows: int = 0) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result schema (with field types and scan state in its metadata) and its batches."""

    @abc.abstractmethod
    def query_bounded(self, query: common_pb2.Query, max_rows: int) -> tuple[pa.Schema, list[pa.RecordBatch]] | None:
        """``query``'s schema and whole result, or None when it has more than ``max_rows`` rows."""

    @abc.abstractmethod
    def describe(self, query: common_pb2.Query) -> tuple[pa.Schema, int]: ...

    def count(self, query: common_pb2.Query) -> int:
        """How many rows ``query`` returns, counted in the store without reading them."""
        return self.describe(query)[1]

    def describe_with_ids(self, query: common_pb2.Query) -> tuple[pa.Schema, int, tuple[int, int] | None]:
        """``describe`` plus the (smallest, largest) datapoint id of the result, or None where the store
        cannot tell (then the result is served unpartitioned)."""
        schema, total = self.describe(query)
        return schema, total, None

    def estimate_with_ids(self, query: common_pb2.Query) -> tuple[pa.Schema, int, tuple[int, int] | None]:
        """As ``describe_with_ids``, as cheaply as the store can: the row count may be an estimate, and the
        id bounds a superset of the result's. By default exact."""
        return self.describe_with_ids(query)

    @abc.abstractmethod
    def count_values(self, query: common_pb2.Query, field: str, bins: int, max_values: int) -> Facet:
        """Value counts (or a histogram with ``bins`` bins) of ``field`` over the query's result."""

    @abc.abstractmethod
    def history(self, datasource_id: int, path: str, field: str | None = None) -> pa.Table:
        """Every logged write that touched the datapoint (or that field of it), oldest first."""

    @abc.abstractmethod
    def changes(self, datasource_id: int, since: dt.datetime | None, until: dt.datetime | None) -> pa.Table:
        """Every logged write of the datasource between two instants (inclusive), oldest first."""

    @abc.abstractmethod
    def last_write_id(self, datasource_id: int) -> int:
        """The id of the datasource's latest committed write (-1: none); cheap, for cache checks."""

    # Datasets
    @abc.abstractmethod
    def save_dataset(self, namespace: str, name: str, datasource_id: int, query: bytes) -> DatasetRecord: ...

    @abc.abstractmethod
    def get_dataset(self, dataset_id: int) -> DatasetRecord: ...

    @abc.abstractmethod
    def find_dataset(self, namespace: str, name: str) -> DatasetRecord: ...

    @abc.abstractmethod
    def list_datasets(self, namespace: str, offset: int, limit: int) -> list[DatasetRecord]: ...

    @abc.abstractmethod
    def delete_dataset(self, dataset_id: int) -> None: ...

    # Bag datasets: exported results, served by the flight service by name
    @abc.abstractmethod
    def register_bag_dataset(self, namespace: str, name: str, uri: str) -> BagDatasetRecord:
        """Records ``uri`` under ``namespace/name``, replacing an earlier registration of that name."""

    @abc.abstractmethod
    def find_bag_dataset(self, namespace: str, name: str) -> BagDatasetRecord: ...

    @abc.abstractmethod
    def list_bag_datasets(self, namespace: str, offset: int, limit: int) -> list[BagDatasetRecord]: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
