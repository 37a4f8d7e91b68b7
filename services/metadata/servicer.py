"""The MetadataService gRPC adapter: protobuf in, store calls, protobuf out, errors as statuses."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
import pyarrow as pa

from thresher.core.arrow_io import read_batch, read_schema, serialize_batches, serialize_schema, serialize_table
from thresher.core.types import FieldType
from thresher.services.auth import current_identity
from thresher.services.metadata import convert, nearest, vector_index
from thresher.services.metadata.coercion import table_from_proto_rows
from thresher.services.metadata.domain_errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MetadataError,
    NotFound,
)
from thresher.services.metadata.small_reads import DEFAULT_MAX_ROWS, read_small
from thresher.services.metadata.sql import SqlEngine, TableKind
from thresher.services.metadata.sql.engine import parameters_from_arrow
from thresher.services.metadata.staged_uploads import StagingArea
from thresher.services.metadata.store import Store
from thresher.v1 import common_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as pb

log = logging.getLogger(__name__)

ACTOR_METADATA_KEY = "thresher-user"

_Self = TypeVar("_Self")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")

_STATUS = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_of(error: MetadataError) -> grpc.StatusCode:
    """The gRPC status a domain error is answered with."""
    for kind, code in _STATUS.items():
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    # abort always raises; grpc ships no type information that would tell the checker so.
    raise AssertionError("grpc.ServicerContext.abort returned")


def _rpc(
    method: Callable[[_Self, _Request, grpc.ServicerContext], _Response],
) -> Callable[[_Self, _Request, grpc.ServicerContext], _Response]:
    """Maps domain errors onto status codes; anything unexpected is logged and becomes INTERNAL."""

    @functools.wraps(method)
    def wrapper(self: _Self, request: _Request, context: grpc.ServicerContext) -> _Response:
        try:
            return method(self, request, context)
        except MetadataError as error:
            _abort(context, status_of(error), str(error))
        except grpc.RpcError:
            raise
        except Exception as error:  # noqa: BLE001 - the client gets a status, the log gets the traceback
            log.exception("%s failed", method.__name__)
            _abort(context, grpc.StatusCode.INTERNAL, f"{method.__name__} failed: {type(error).__name__}: {error}")

    return wrapper


def _stream_rpc(
    method: Callable[[_Self, _Request, grpc.ServicerContext], Iterator[_Response]],
) -> Callable[[_Self, _Request, grpc.ServicerContext], Iterator[_Response]]:
    @functools.wraps(method)
    def wrapper(self: _Self, request: _Request, context: grpc.ServicerContext) -> Iterator[_Response]:
        try:
            yield from method(self, request, context)
        except MetadataError as error:
            _abort(context, status_of(error), str(error))
        except Exception as error:  # noqa: BLE001
            log.exception("%s failed", method.__name__)
            _abort(context, grpc.StatusCode.INTERNAL, f"{method.__name__} failed: {type(error).__name__}: {error}")

    return wrapper


def _actor(context: grpc.ServicerContext) -> str:
    return actor_of(context.invocation_metadata() or ())


def actor_of(headers: Iterable[tuple[str, Any]]) -> str:
    """Who a write is recorded as: with auth on, the token's subject; the self-reported user name
    (``headers``' ``thresher-user``) only where no token is checked."""
    identity = current_identity()
    if identity is not None:
        return identity.subject
    for key, value in headers:
        if key == ACTOR_METADATA_KEY and value:
            actor: str = value[:256]
            return actor
    return "anonymous"


def _require_id(value: int, what: str) -> int:
    if value <= 0:
        raise InvalidArgument(f"{what} must be a positive id, got {value}")
    return value


def _readable() -> Callable[[str], bool]:
    """Which namespaces the caller may read: all of them where no token is checked."""
    identity = current_identity()
    return (lambda _namespace: True) if identity is None else identity.may


def sql_parameters(raw: bytes) -> list[Any] | None:
    if not raw:
        return None
    try:
        return parameters_from_arrow(pa.ipc.open_stream(raw).read_all())
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidArgument(f"SQL parameters are not an Arrow IPC stream: {error}") from None


_SQL_TABLE_KINDS = {TableKind.DATASOURCE: pb.SQL_TABLE_KIND_DATASOURCE, TableKind.DATASET: pb.SQL_TABLE_KIND_DATASET}


class MetadataServicer(metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(self, store: Store, staging: StagingArea | None = None) -> None:
        self.store = store
        self.staging = staging or StagingArea()
        self.sql = SqlEngine(store)

    # Namespaces
    @_rpc
    def CreateNamespace(
        self, request: pb.CreateNamespaceRequest, context: grpc.ServicerContext
    ) -> pb.CreateNamespaceResponse:
        record = self.store.create_namespace(request.name, request.repository_uri)
        return pb.CreateNamespaceResponse(namespace=convert.namespace_message(record))

    @_rpc
    def GetNamespace(self, request: pb.GetNamespaceRequest, context: grpc.ServicerContext) -> pb.GetNamespaceResponse:
        return pb.GetNamespaceResponse(namespace=convert.namespace_message(self.store.get_namespace(request.name)))

    @_rpc
    def ListNamespaces(
        self, request: pb.ListNamespacesRequest, context: grpc.ServicerContext
    ) -> pb.ListNamespacesResponse:
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_namespaces(offset, size + 1)
        return pb.ListNamespacesResponse(
            namespaces=[convert.namespace_message(r) for r in records[:size]],
            next_page_token=convert.next_token(offset, size, len(records)),
        )

    # Datasources
    @_rpc
    def CreateDatasource(
        self, request: pb.CreateDatasourceRequest, context: grpc.ServicerContext
    ) -> pb.CreateDatasourceResponse:
        record = self.store.create_datasource(request.namespace, request.name, request.source_uri, request.revision)
        return pb.CreateDatasourceResponse(datasource=convert.datasource_message(record))

    @_rpc
    def GetDatasource(
        self, request: pb.GetDatasourceRequest, context: grpc.ServicerContext
    ) -> pb.GetDatasourceResponse:
        if request.id:
            record = self.store.get_datasource(request.id)
        elif request.namespace and request.name:
            record = self.store.find_datasource(request.namespace, request.name)
        else:
            raise InvalidArgument("GetDatasource needs an id, or a namespace and a name")
        return pb.GetDatasourceResponse(datasource=convert.datasource_message(record))

    @_rpc
    def GetOrCreateDatasource(
        self, request: pb.GetOrCreateDatasourceRequest, context: grpc.ServicerContext
    ) -> pb.GetOrCreateDatasourceResponse:
        record, created = self.store.get_or_create_datasource(
            request.namespace, request.name, request.source_uri, request.revision
        )
        return pb.GetOrCreateDatasourceResponse(datasource=convert.datasource_message(record), created=created)

    @_rpc
    def ListDatasources(
        self, request: pb.ListDatasourcesRequest, context: grpc.ServicerContext
    ) -> pb.ListDatasourcesResponse:
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_datasources(request.namespace, offset, size + 1)
        return pb.ListDatasourcesResponse(
            datasources=[convert.datasource_message(r) for r in records[:size]],
            next_page_token=convert.next_token(offset, size, len(records)),
        )

    @_rpc
    def DeleteDatasource(
        self, request: pb.DeleteDatasourceRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDatasourceResponse:
        self.store.delete_datasource(_require_id(request.id, "id"))
        return pb.DeleteDatasourceResponse()

    @_rpc
    def UpdateScanStatus(
        self, request: pb.UpdateScanStatusRequest, context: grpc.ServicerContext
    ) -> pb.UpdateScanStatusResponse:
        record = self.store.update_scan(
            _require_id(request.datasource_id, "datasource_id"), convert.scan_status(request.scan)
        )
        return pb.UpdateScanStatusResponse(datasource=convert.datasource_message(record))

    # Fields and metadata
    @_rpc
    def DefineFields(self, request: pb.DefineFieldsRequest, context: grpc.ServicerContext) -> pb.DefineFieldsResponse:
        wanted = []
        for field in request.fields:
            try:
                kind = FieldType.from_proto(field.type)
            except ValueError:
                raise InvalidArgument(f"field {field.name!r} needs a type") from None
            wanted.append((field.name, kind, tuple(field.tags)))
        records = self.store.define_fields(_require_id(request.datasource_id, "datasource_id"), wanted)
        return pb.DefineFieldsResponse(fields=[convert.field_message(r) for r in records])

    @_rpc
    def CreateVectorIndex(
        self, request: pb.CreateVectorIndexRequest, context: grpc.ServicerContext
    ) -> pb.CreateVectorIndexResponse:
        datasource_id = _require_id(request.datasource_id, "datasource_id")
        metric = nearest.METRICS.get(request.metric)
        if metric is None:
            raise InvalidArgument(f"unknown distance metric {request.metric}")
        pointer, seconds = vector_index.build(
            self.store,
            datasource_id,
            request.field,
            metric,
            request.connectivity,
            request.expansion_add,
            request.expansion_search,
        )
        # UNSPECIFIED means cosine; the response names the metric the index was built with.
        response = pb.CreateVectorIndexResponse(
            field=pointer.field,
            metric=request.metric or common_pb2.DISTANCE_METRIC_COSINE,
            size=pointer.size,
            digest=pointer.digest,
            build_seconds=seconds,
        )
        response.built_at.FromDatetime(pointer.built_at)
        return response

    @_rpc
    def UpsertMetadata(
        self, request: pb.UpsertMetadataRequest, context: grpc.ServicerContext
    ) -> pb.UpsertMetadataResponse:
        datasource_id = _require_id(request.datasource_id, "datasource_id")
        types = {f.name: f.type for f in self.store.get_datasource(datasource_id).fields}
        table = table_from_proto_rows(request.datapoints, types)
        result = self.store.upsert(datasource_id, table, "path", _actor(context), create_missing=request.create_missing)
        return pb.UpsertMetadataResponse(
            datapoints_written=result.datapoints_written, datapoints_created=result.datapoints_created
        )

    @_rpc
    def UpsertTable(
        self, request_iterator: Iterator[pb.UpsertTableRequest], context: grpc.ServicerContext
    ) -> pb.UpsertTableResponse:
        upload = _Upload(request_iterator)
        header = upload.header
        datasource_id = _require_id(header.datasource_id, "datasource_id")
        path_column = header.path_column or (upload.schema.names[0] if upload.schema.names else "")
        if header.staging_session:  # one block of a staged upload: kept aside until its session commits
            if path_column not in upload.schema.names:
                raise InvalidArgument(
                    f"path column {path_column!r} is not among the uploaded columns {upload.schema.names}"
                )
            # A block is read whole (batches() checks its end message) before it is kept.
            table = pa.Table.from_batches(list(upload.batches()), upload.schema)
            self.staging.put(header.staging_session, datasource_id, header.block_index, path_column, table)
            return pb.UpsertTableResponse()
        return write_upload(self.store, header, upload.schema, upload.batches(), _actor(context))

    @_rpc
    def CommitStagedUpload(
        self, request: pb.CommitStagedUploadRequest, context: grpc.ServicerContext
    ) -> pb.CommitStagedUploadResponse:
        datasource_id = _require_id(request.datasource_id, "datasource_id")
        table, path_column = self.staging.take(request.staging_session, datasource_id, request.block_count)
        result = self.store.upsert(
            datasource_id, table, path_column, _actor(context), create_missing=request.create_missing
        )
        self.staging.drop(request.staging_session)
        return pb.CommitStagedUploadResponse(
            datapoints_written=result.datapoints_written, datapoints_created=result.datapoints_created
        )

    @_rpc
    def AbortStagedUpload(
        self, request: pb.AbortStagedUploadRequest, context: grpc.ServicerContext
    ) -> pb.AbortStagedUploadResponse:
        return pb.AbortStagedUploadResponse(blocks_dropped=self.staging.drop(request.staging_session))

    @_rpc
    def DeleteMetadata(
        self, request: pb.DeleteMetadataRequest, context: grpc.ServicerContext
    ) -> pb.DeleteMetadataResponse:
        deleted = self.store.delete_metadata(
            _require_id(request.datasource_id, "datasource_id"),
            list(request.paths),
            list(request.fields),
            _actor(context),
        )
        return pb.DeleteMetadataResponse(values_deleted=deleted)

    @_rpc
    def DeleteDatapoints(
        self, request: pb.DeleteDatapointsRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDatapointsResponse:
        deleted = self.store.delete_datapoints(
            _require_id(request.datasource_id, "datasource_id"), list(request.paths), _actor(context)
        )
        return pb.DeleteDatapointsResponse(datapoints_deleted=deleted)

    # Queries
    @_stream_rpc
    def ExecuteQuery(
        self, request: pb.ExecuteQueryRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExecuteQueryResponse]:
        if request.max_batch_rows < 0:
            raise InvalidArgument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        schema, batches = self.store.query(request.query, request.max_batch_rows)
        yield pb.ExecuteQueryResponse(schema=serialize_schema(schema))
        for message in serialize_batches(batches):
            yield pb.ExecuteQueryResponse(record_batch=message)

    @_rpc
    def DescribeQuery(
        self, request: pb.DescribeQueryRequest, context: grpc.ServicerContext
    ) -> pb.DescribeQueryResponse:
        if request.count_only:
            return pb.DescribeQueryResponse(total_rows=self.store.count(request.query))
        describe = self.store.estimate_with_ids if request.estimate else self.store.describe_with_ids
        schema, total, ids = describe(request.query)
        low, high = ids or (0, 0)
        return pb.DescribeQueryResponse(
            schema=serialize_schema(schema), total_rows=total, min_datapoint_id=low, max_datapoint_id=high
        )

    @_rpc
    def CountValues(self, request: pb.CountValuesRequest, context: grpc.ServicerContext) -> pb.CountValuesResponse:
        facet = self.store.count_values(request.query, request.field, request.bins, request.max_values)
        return pb.CountValuesResponse(
            counts=serialize_table(facet.counts), total_rows=facet.total_rows, missing=facet.missing
        )

    @_rpc
    def ReadQuery(self, request: pb.ReadQueryRequest, context: grpc.ServicerContext) -> pb.ReadQueryResponse:
        if request.max_rows < 0:
            raise InvalidArgument(f"max_rows must not be negative, got {request.max_rows}")
        payload = read_small(self.store, request.query, request.max_rows or DEFAULT_MAX_ROWS)
        return pb.ReadQueryResponse(too_large=True) if payload is None else pb.ReadQueryResponse(arrow_stream=payload)

    # SQL
    @_stream_rpc
    def ExecuteSql(
        self, request: pb.ExecuteSqlRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExecuteSqlResponse]:
        if request.max_batch_rows < 0:
            raise InvalidArgument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        schema, batches = self.sql.execute(
            request.sql, sql_parameters(request.parameters) or [], _readable(), request.max_batch_rows
        )
        yield pb.ExecuteSqlResponse(schema=serialize_schema(schema))
        for message in serialize_batches(batches):
            yield pb.ExecuteSqlResponse(record_batch=message)

    @_rpc
    def DescribeSql(self, request: pb.DescribeSqlRequest, context: grpc.ServicerContext) -> pb.DescribeSqlResponse:
        schema = self.sql.describe(request.sql, sql_parameters(request.parameters), _readable())
        return pb.DescribeSqlResponse(schema=serialize_schema(schema))

    @_rpc
    def ListSqlTables(
        self, request: pb.ListSqlTablesRequest, context: grpc.ServicerContext
    ) -> pb.ListSqlTablesResponse:
        tables = self.sql.tables(_readable(), request.namespace, request.include_schema)
        return pb.ListSqlTablesResponse(
            tables=[
                pb.SqlTable(
                    namespace=t.namespace,
                    name=t.name,
                    kind=_SQL_TABLE_KINDS[t.kind],
                    schema=serialize_schema(t.schema) if t.schema is not None else b"",
                )
                for t in tables
            ]
        )

    @_stream_rpc
    def GetHistory(
        self, request: pb.GetHistoryRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.GetHistoryResponse]:
        if not request.path:
            raise InvalidArgument("GetHistory needs the datapoint's path")
        table = self.store.history(
            _require_id(request.datasource_id, "datasource_id"), request.path, request.field or None
        )
        yield from _arrow_stream(table, pb.GetHistoryResponse)

    @_stream_rpc
    def ListChanges(
        self, request: pb.ListChangesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ListChangesResponse]:
        table = self.store.changes(
            _require_id(request.datasource_id, "datasource_id"),
            convert.datetime_or_none(request.since),
            convert.datetime_or_none(request.until),
        )
        yield from _arrow_stream(table, pb.ListChangesResponse)

    # Datasets
    @_rpc
    def SaveDataset(self, request: pb.SaveDatasetRequest, context: grpc.ServicerContext) -> pb.SaveDatasetResponse:
        query = request.query
        record = self.store.save_dataset(
            request.namespace,
            request.name,
            _require_id(query.datasource_id, "query.datasource_id"),
            query.SerializeToString(deterministic=True),
        )
        return pb.SaveDatasetResponse(dataset=convert.dataset_message(record))

    @_rpc
    def GetDataset(self, request: pb.GetDatasetRequest, context: grpc.ServicerContext) -> pb.GetDatasetResponse:
        if request.id:
            record = self.store.get_dataset(request.id)
        elif request.namespace and request.name:
            record = self.store.find_dataset(request.namespace, request.name)
        else:
            raise InvalidArgument("GetDataset needs an id, or a namespace and a name")
        return pb.GetDatasetResponse(dataset=convert.dataset_message(record))

    @_rpc
    def ListDatasets(self, request: pb.ListDatasetsRequest, context: grpc.ServicerContext) -> pb.ListDatasetsResponse:
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_datasets(request.namespace, offset, size + 1)
        return pb.ListDatasetsResponse(
            datasets=[convert.dataset_message(r) for r in records[:size]],
            next_page_token=convert.next_token(offset, size, len(records)),
        )

    @_rpc
    def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDatasetResponse:
        self.store.delete_dataset(_require_id(request.id, "id"))
        return pb.DeleteDatasetResponse()

    # Bag datasets
    @_rpc
    def RegisterBagDataset(
        self, request: pb.RegisterBagDatasetRequest, context: grpc.ServicerContext
    ) -> pb.RegisterBagDatasetResponse:
        record = self.store.register_bag_dataset(request.namespace, request.name, request.uri)
        return pb.RegisterBagDatasetResponse(bag_dataset=convert.bag_dataset_message(record))

    @_rpc
    def GetBagDataset(
        self, request: pb.GetBagDatasetRequest, context: grpc.ServicerContext
    ) -> pb.GetBagDatasetResponse:
        record = self.store.find_bag_dataset(request.namespace, request.name)
        return pb.GetBagDatasetResponse(bag_dataset=convert.bag_dataset_message(record))

    @_rpc
    def ListBagDatasets(
        self, request: pb.ListBagDatasetsRequest, context: grpc.ServicerContext
    ) -> pb.ListBagDatasetsResponse:
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_bag_datasets(request.namespace, offset, size + 1)
        return pb.ListBagDatasetsResponse(
            bag_datasets=[convert.bag_dataset_message(r) for r in records[:size]],
            next_page_token=convert.next_token(offset, size, len(records)),
        )


def _arrow_stream(table: pa.Table, response_type: type[_Arrowed]) -> Iterator[_Arrowed]:
    yield response_type(schema=serialize_schema(table.schema))
    for message in serialize_batches(table.to_batches()):
        yield response_type(record_batch=message)


# The streamed responses that carry an Arrow schema and then record batches.
_Arrowed = TypeVar("_Arrowed", pb.GetHistoryResponse, pb.ListChangesResponse)
_Decoded = TypeVar("_Decoded")


class _Upload:
    """An UpsertTable stream read as it arrives: header and schema first, then record batches, then the end.

    ``batches()`` yields each batch as it is decoded and raises at the end unless an end message with
    matching counts arrived: gRPC may end the request stream of a client that went away as if it had
    finished, and the store, which writes batches as they come, then rolls the whole upload back.
    """

    def __init__(self, requests: Iterator[pb.UpsertTableRequest]) -> None:
        self._requests = iter(requests)
        self.header = self._expect("header", "UpsertTable needs a header and a schema").header
        self.schema = _decode(
            read_schema,
            self._expect("schema", "UpsertTable expects one schema, right after the header").schema,
            "schema",
        )

    def _expect(self, part: str, message: str) -> pb.UpsertTableRequest:
        request = next(self._requests, None)
        got = request.WhichOneof("part") if request is not None else None
        if request is None or got != part:
            if got == "header":
                raise InvalidArgument("UpsertTable got a second header")
            if got == "record_batch":
                raise InvalidArgument("UpsertTable got a record batch before the schema")
            raise InvalidArgument(message)
        return request

    def batches(self) -> Iterator[pa.RecordBatch]:
        sent = rows = 0
        end = None
        for request in self._requests:
            part = request.WhichOneof("part")
            if end is not None:
                raise InvalidArgument("UpsertTable got a message after its end")
            if part == "record_batch":
                batch = _decode(read_batch, request.record_batch, "record batch", self.schema)
                sent += 1
                rows += batch.num_rows
                yield batch
            elif part == "end":
                end = request.end
            elif part == "header":
                raise InvalidArgument("UpsertTable got a second header")
            elif part == "schema":
                raise InvalidArgument("UpsertTable expects one schema, right after the header")
            else:
                raise InvalidArgument("UpsertTable got a message with no part set")
        check_upload_end(end, sent, rows)


def write_upload(
    store: Store, header: pb.UpsertTableHeader, schema: pa.Schema, batches: Iterator[pa.RecordBatch], actor: str
) -> pb.UpsertTableResponse:
    """Writes an upload's batches as they arrive, committed once ``batches`` ends (it raises at a missing
    or wrong end message, so that nothing is written then); over gRPC or the data port alike."""
    datasource_id = _require_id(header.datasource_id, "datasource_id")
    path_column = header.path_column or (schema.names[0] if schema.names else "")
    result = store.upsert_batches(
        datasource_id, schema, batches, path_column, actor, create_missing=header.create_missing
    )
    return pb.UpsertTableResponse(
        datapoints_written=result.datapoints_written, datapoints_created=result.datapoints_created
    )


def check_upload_end(end: pb.UpsertTableEnd | None, batches: int, rows: int) -> None:
    """Refuses an upload whose end message is missing or announces other counts than arrived (the
    store, which has written its batches as they came, then rolls the whole upload back)."""
    if end is None:
        raise InvalidArgument("UpsertTable stream stopped before its end message: nothing was written")
    if (end.record_batches, end.rows) != (batches, rows):
        raise InvalidArgument(
            f"UpsertTable end announces {end.record_batches} batches of {end.rows} rows, "
            f"but {batches} batches of {rows} rows arrived: nothing was written"
        )


def _decode(reader: Callable[..., _Decoded], data: bytes, what: str, *args: Any) -> _Decoded:
    try:
        return reader(data, *args)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
        raise InvalidArgument(f"UpsertTable got a malformed Arrow {what}: {error}") from None
