"""The scanner's view of the metadata service (``Catalog`` and ``Index``) over gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pyarrow as pa

from thresher.core import arrow_io
from thresher.core.scan_status import ScanStatus
from thresher.core.storage import in_repository
from thresher.core.types import PATH_COLUMN
from thresher.services.pagination import list_all
from thresher.services.scanner.automatic import FIELD_TYPES, MODIFIED, SIZE
from thresher.services.scanner.metadata_interfaces import (
    DatasourceNotFound,
    DatasourceRef,
    MetadataError,
    MetadataUnavailable,
)
from thresher.v1 import common_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb

# Small calls answer quickly or something is wrong; bulk calls move up to a batch of rows.
CALL_TIMEOUT = 30.0
BULK_TIMEOUT = 600.0
_UNFINISHED = (common_pb2.SCAN_STATE_UNSPECIFIED, common_pb2.SCAN_STATE_PENDING, common_pb2.SCAN_STATE_SCANNING)


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    return error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN


def _translate(error: grpc.RpcError, what: str) -> MetadataError:
    """A MetadataError naming the call, the status and the service's message."""
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    kind = MetadataUnavailable if _code(error) is grpc.StatusCode.UNAVAILABLE else MetadataError
    return kind(f"{what}: {_code(error).name}: {details}")


@contextlib.contextmanager
def _calling(what: str) -> Iterator[None]:
    try:
        yield
    except grpc.RpcError as error:
        raise _translate(error, what) from None


def _ref(datasource: common_pb2.Datasource, repository_uri: str = "") -> DatasourceRef:
    return DatasourceRef(
        datasource.id,
        datasource.source_uri,
        datasource.revision,
        ScanStatus.from_proto(datasource.scan),
        repository_uri,
    )


class MetadataCatalog:
    """Datasources as the metadata service lists them."""

    def __init__(self, channel: grpc.Channel) -> None:
        # The generated gRPC module has no type information: responses are annotated where they are read.
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)  # type: ignore[no-untyped-call]

    def datasource(self, datasource_id: int) -> DatasourceRef:
        try:
            response: mpb.GetDatasourceResponse = self._stub.GetDatasource(
                mpb.GetDatasourceRequest(id=datasource_id), timeout=CALL_TIMEOUT
            )
        except grpc.RpcError as error:
            if _code(error) is grpc.StatusCode.NOT_FOUND:
                raise DatasourceNotFound(f"datasource {datasource_id} not found") from None
            raise _translate(error, f"reading datasource {datasource_id}") from None
        datasource = response.datasource
        return _ref(datasource, self._repository(datasource))

    def unfinished(self) -> Iterator[DatasourceRef]:
        with _calling("listing datasources"):
            namespaces = list(self._pages(self._stub.ListNamespaces, mpb.ListNamespacesRequest(), "namespaces"))
            for namespace in namespaces:
                request = mpb.ListDatasourcesRequest(namespace=namespace.name)
                for datasource in self._pages(self._stub.ListDatasources, request, "datasources"):
                    if datasource.scan.state in _UNFINISHED:
                        yield _ref(datasource, namespace.repository_uri)

    def _repository(self, datasource: common_pb2.Datasource) -> str:
        """The repository of the datasource's namespace when its source is a path in it, else ""."""
        if not in_repository(datasource.source_uri, datasource.revision):
            return ""
        request = mpb.GetNamespaceRequest(name=datasource.namespace)
        try:
            response: mpb.GetNamespaceResponse = self._stub.GetNamespace(request, timeout=CALL_TIMEOUT)
            return response.namespace.repository_uri
        except grpc.RpcError as error:
            if _code(error) is grpc.StatusCode.NOT_FOUND:
                return ""  # no repository bound: the scan fails saying so
            raise _translate(error, f"reading namespace {datasource.namespace} of datasource {datasource.id}") from None

    def index(self, datasource_id: int) -> MetadataIndex:
        return MetadataIndex(self._stub, datasource_id)

    @staticmethod
    def _pages(call: Callable[..., Any], request: Any, field: str) -> Iterator[Any]:
        return list_all(call, request, field, timeout=CALL_TIMEOUT)


class MetadataIndex:
    """One datasource's datapoints in the metadata service."""

    def __init__(self, stub: metadata_service_pb2_grpc.MetadataServiceStub, datasource_id: int) -> None:
        self._stub = stub
        self._id = datasource_id

    def prepare(self, stamp: str) -> None:
        names = dict.fromkeys((SIZE, MODIFIED, stamp))
        fields = [common_pb2.Field(name=name, type=FIELD_TYPES[name].proto) for name in names]
        with _calling(f"declaring the automatic fields of datasource {self._id}"):
            self._stub.DefineFields(
                mpb.DefineFieldsRequest(datasource_id=self._id, fields=fields), timeout=CALL_TIMEOUT
            )

    def indexed(self, stamp: str) -> dict[str, tuple[int | None, int | str | None]]:
        query = common_pb2.Query(
            datasource_id=self._id, select=[common_pb2.SelectItem(field=SIZE), common_pb2.SelectItem(field=stamp)]
        )
        with _calling(f"reading the datapoints of datasource {self._id}"):
            responses = self._stub.ExecuteQuery(mpb.ExecuteQueryRequest(query=query), timeout=BULK_TIMEOUT)
            schema = None
            batches = []
            for response in responses:
                if response.WhichOneof("part") == "schema":
                    schema = arrow_io.read_schema(response.schema)
                else:
                    batches.append(arrow_io.read_batch(response.record_batch, schema))
        if schema is None:
            raise MetadataError(f"reading the datapoints of datasource {self._id}: the result stream had no schema")
        table = pa.Table.from_batches(batches, schema)
        stamps = table[stamp]
        if stamp == MODIFIED:
            # Compared at the precision the scanner writes: microseconds since the epoch.
            stamps = stamps.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        return dict(zip(table[PATH_COLUMN].to_pylist(), zip(table[SIZE].to_pylist(), stamps.to_pylist())))

    def upsert(self, batch: pa.RecordBatch) -> None:
        requests = arrow_io.upsert_table_requests(self._id, PATH_COLUMN, batch.schema, [batch], create_missing=True)
        with _calling(f"writing {batch.num_rows} datapoints to datasource {self._id}"):
            self._stub.UpsertTable(requests, timeout=BULK_TIMEOUT)

    def delete(self, paths: list[str]) -> None:
        with _calling(f"deleting {len(paths)} datapoints of datasource {self._id}"):
            self._stub.DeleteDatapoints(
                mpb.DeleteDatapointsRequest(datasource_id=self._id, paths=paths), timeout=BULK_TIMEOUT
            )

    def report(self, progress: ScanStatus) -> None:
        request = mpb.UpdateScanStatusRequest(datasource_id=self._id, scan=progress.to_proto())
        with _calling(f"recording the scan status of datasource {self._id}"):
            self._stub.UpdateScanStatus(request, timeout=CALL_TIMEOUT)
