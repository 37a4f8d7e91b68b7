"""The MetadataService gRPC adapter: protobuf in, store calls, protobuf out, errors as statuses."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator

import grpc
import pyarrow as pa

from thresher.core.arrow_io import read_batch, read_schema, serialize_batches, serialize_schema, serialize_table
from thresher.core.types import FieldType
from thresher.v1 import metadata_service_pb2 as pb, metadata_service_pb2_grpc

from thresher.services.auth import current_identity

from . import convert, nearest, vector_index
from .coercion import table_from_proto_rows
from .errors import AlreadyExists, FailedPrecondition, InvalidArgument, MetadataError, NotFound
from .small_reads import DEFAULT_MAX_ROWS, read_small
from .sql import SqlEngine, TableKind
from .sql.engine import parameters_from_arrow
from .staging import StagingArea
from .store import Store

log = logging.getLogger(__name__)

ACTOR_METADATA_KEY = "thresher-user"

_STATUS = {NotFound: grpc.StatusCode.NOT_FOUND, AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
           InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT, FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION}


def status_of(error: MetadataError) -> grpc.StatusCode:
    """The gRPC status a domain error is answered with."""
    for kind, code in _STATUS.items():
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


def _rpc(method):
    """Maps domain errors onto status codes; anything unexpected is logged and becomes INTERNAL."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except MetadataError as error:
            context.abort(status_of(error), str(error))
        except grpc.RpcError:
            raise
        except Exception as error:  # noqa: BLE001 - the client gets a status, the log gets the traceback
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed: {type(error).__name__}: {error}")

    return wrapper


def _stream_rpc(method):
    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            yield from method(self, request, context)
        except MetadataError as error:
            context.abort(status_of(error), str(error))
        except Exception as error:  # noqa: BLE001
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed: {type(error).__name__}: {error}")

    return wrapper


def _actor(context: grpc.ServicerContext) -> str:
    # With auth on, the token's subject; the self-reported user name only where no token is checked.
    identity = current_identity()
    if identity is not None:
        return identity.subject
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_METADATA_KEY and value:
            return value[:256]
    return "anonymous"


def _require_id(value: int, what: str) -> int:
    if value <= 0:
        raise InvalidArgument(f"{what} must be a positive id, got {value}")
    return value


def _readable() -> Callable[[str], bool]:
    """Which namespaces the caller may read: all of them where no token is checked."""
    identity = current_identity()
    return (lambda _namespace: True) if identity is None else identity.may


def _sql_parameters(raw: bytes) -> list | None:
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
    def CreateNamespace(self, request, context):
        record = self.store.create_namespace(request.name, request.repository_uri)
        return pb.CreateNamespaceResponse(namespace=convert.namespace_message(record))

    @_rpc
    def GetNamespace(self, request, context):
        return pb.GetNamespaceResponse(namespace=convert.namespace_message(self.store.get_namespace(request.name)))

    @_rpc
    def ListNamespaces(self, request, context):
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_namespaces(offset, size + 1)
        return pb.ListNamespacesResponse(namespaces=[convert.namespace_message(r) for r in records[:size]],
                                         next_page_token=convert.next_token(offset, size, len(records)))

    # Datasources
    @_rpc
    def CreateDatasource(self, request, context):
        record = self.store.create_datasource(request.namespace, request.name, request.source_uri, request.revision)
        return pb.CreateDatasourceResponse(datasource=convert.datasource_message(record))

    @_rpc
    def GetDatasource(self, request, context):
        if request.id:
            record = self.store.get_datasource(request.id)
        elif request.namespace and request.name:
            record = self.store.find_datasource(request.namespace, request.name)
        else:
            raise InvalidArgument("GetDatasource needs an id, or a namespace and a name")
        return pb.GetDatasourceResponse(datasource=convert.datasource_message(record))

    @_rpc
    def GetOrCreateDatasource(self, request, context):
        record, created = self.store.get_or_create_datasource(request.namespace, request.name, request.source_uri,
                                                              request.revision)
        return pb.GetOrCreateDatasourceResponse(datasource=convert.datasource_message(record), created=created)

    @_rpc
    def ListDatasources(self, request, context):
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_datasources(request.namespace, offset, size + 1)
        return pb.ListDatasourcesResponse(datasources=[convert.datasource_message(r) for r in records[:size]],
                                          next_page_token=convert.next_token(offset, size, len(records)))

    @_rpc
    def DeleteDatasource(self, request, context):
        self.store.delete_datasource(_require_id(request.id, "id"))
        return pb.DeleteDatasourceResponse()

    @_rpc
    def UpdateScanStatus(self, request, context):
        record = self.store.update_scan(_require_id(request.datasource_id, "datasource_id"),
                                        convert.scan_status(request.scan))
        return pb.UpdateScanStatusResponse(datasource=convert.datasource_message(record))

    # Fields and metadata
    @_rpc
    def DefineFields(self, request, context):
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
    def CreateVectorIndex(self, request, context):
        datasource_id = _require_id(request.datasource_id, "datasource_id")
        metric = nearest.METRICS.get(request.metric)
        if metric is None:
            raise InvalidArgument(f"unknown distance metric {request.metric}")
        pointer, seconds = vector_index.build(self.store, datasource_id, request.field, metric, request.connectivity,
                                              request.expansion_add, request.expansion_search)
        response = pb.CreateVectorIndexResponse(field=pointer.field, metric=request.metric or 1, size=pointer.size,
                                                digest=pointer.digest, build_seconds=seconds)
        response.built_at.FromDatetime(pointer.built_at)
        return response

    @_rpc
    def UpsertMetadata(self, request, context):
        datasource_id = _require_id(request.datasource_id, "datasource_id")
        types = {f.name: f.type for f in self.store.get_datasource(datasource_id).fields}
        table = table_from_proto_rows(request.datapoints, types)
        result = self.store.upsert(datasource_id, table, "path", _actor(context),
                                   create_missing=request.create_missing)
        return pb.UpsertMetadataResponse(datapoints_written=result.datapoints_written,
                                         datapoints_created=result.datapoints_created)

    @_rpc
    def UpsertTable(self, request_iterator, context):
        upload = _Upload(request_iterator)
        header = upload.header
        datasource_id = _require_id(header.datasource_id, "datasource_id")
        path_column = header.path_column or (upload.schema.names[0] if upload.schema.names else "")
        if header.staging_session:  # one block of a staged upload: kept aside until its session commits
            if path_column not in upload.schema.names:
                raise InvalidArgument(f"path column {path_column!r} is not among the uploaded columns "
                                      f"{upload.schema.names}")
            # A block is read whole (batches() checks its end message) before it is kept.
            table = pa.Table.from_batches(list(upload.batches()), upload.schema)
            self.staging.put(header.staging_session, datasource_id, header.block_index, path_column, table)
            return pb.UpsertTableResponse()
        result = self.store.upsert_batches(datasource_id, upload.schema, upload.batches(), path_column,
                                           _actor(context), create_missing=header.create_missing)
        return pb.UpsertTableResponse(datapoints_written=result.datapoints_written,
                                      datapoints_created=result.datapoints_created)

    @_rpc
    def CommitStagedUpload(self, request, context):
        datasource_id = _require_id(request.datasource_id, "datasource_id")
        table, path_column = self.staging.take(request.staging_session, datasource_id, request.block_count)
        result = self.store.upsert(datasource_id, table, path_column, _actor(context),
                                   create_missing=request.create_missing)
        self.staging.drop(request.staging_session)
        return pb.CommitStagedUploadResponse(datapoints_written=result.datapoints_written,
                                             datapoints_created=result.datapoints_created)

    @_rpc
    def AbortStagedUpload(self, request, context):
        return pb.AbortStagedUploadResponse(blocks_dropped=self.staging.drop(request.staging_session))

    @_rpc
    def DeleteMetadata(self, request, context):
        deleted = self.store.delete_metadata(_require_id(request.datasource_id, "datasource_id"), list(request.paths),
                                             list(request.fields), _actor(context))
        return pb.DeleteMetadataResponse(values_deleted=deleted)

    @_rpc
    def DeleteDatapoints(self, request, context):
        deleted = self.store.delete_datapoints(_require_id(request.datasource_id, "datasource_id"),
                                               list(request.paths), _actor(context))
        return pb.DeleteDatapointsResponse(datapoints_deleted=deleted)

    # Queries
    @_stream_rpc
    def ExecuteQuery(self, request, context):
        if request.max_batch_rows < 0:
            raise InvalidArgument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        schema, batches = self.store.query(request.query, request.max_batch_rows)
        yield pb.ExecuteQueryResponse(schema=serialize_schema(schema))
        for message in serialize_batches(batches):
            yield pb.ExecuteQueryResponse(record_batch=message)

    @_rpc
    def DescribeQuery(self, request, context):
        describe = self.store.estimate_with_ids if request.estimate else self.store.describe_with_ids
        schema, total, ids = describe(request.query)
        low, high = ids or (0, 0)
        return pb.DescribeQueryResponse(schema=serialize_schema(schema), total_rows=total, min_datapoint_id=low,
                                        max_datapoint_id=high)

    @_rpc
    def CountValues(self, request, context):
        facet = self.store.count_values(request.query, request.field, request.bins, request.max_values)
        return pb.CountValuesResponse(counts=serialize_table(facet.counts), total_rows=facet.total_rows,
                                      missing=facet.missing)

    @_rpc
    def ReadQuery(self, request, context):
        if request.max_rows < 0:
            raise InvalidArgument(f"max_rows must not be negative, got {request.max_rows}")
        payload = read_small(self.store, request.query, request.max_rows or DEFAULT_MAX_ROWS)
        return pb.ReadQueryResponse(too_large=True) if payload is None else pb.ReadQueryResponse(arrow_stream=payload)

    # SQL
    @_stream_rpc
    def ExecuteSql(self, request, context):
        if request.max_batch_rows < 0:
            raise InvalidArgument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        schema, batches = self.sql.execute(request.sql, _sql_parameters(request.parameters) or [], _readable(),
                                           request.max_batch_rows)
        yield pb.ExecuteSqlResponse(schema=serialize_schema(schema))
        for message in serialize_batches(batches):
            yield pb.ExecuteSqlResponse(record_batch=message)

    @_rpc
    def DescribeSql(self, request, context):
        schema = self.sql.describe(request.sql, _sql_parameters(request.parameters), _readable())
        return pb.DescribeSqlResponse(schema=serialize_schema(schema))

    @_rpc
    def ListSqlTables(self, request, context):
        tables = self.sql.tables(_readable(), request.namespace, request.include_schema)
        return pb.ListSqlTablesResponse(tables=[
            pb.SqlTable(namespace=t.namespace, name=t.name, kind=_SQL_TABLE_KINDS[t.kind],
                        schema=serialize_schema(t.schema) if t.schema is not None else b"") for t in tables])

    @_stream_rpc
    def GetHistory(self, request, context):
        if not request.path:
            raise InvalidArgument("GetHistory needs the datapoint's path")
        table = self.store.history(_require_id(request.datasource_id, "datasource_id"), request.path,
                                   request.field or None)
        yield from _arrow_stream(table, pb.GetHistoryResponse)

    @_stream_rpc
    def ListChanges(self, request, context):
        table = self.store.changes(_require_id(request.datasource_id, "datasource_id"),
                                   convert.datetime_or_none(request.since), convert.datetime_or_none(request.until))
        yield from _arrow_stream(table, pb.ListChangesResponse)

    # Datasets
    @_rpc
    def SaveDataset(self, request, context):
        query = request.query
        record = self.store.save_dataset(request.namespace, request.name,
                                         _require_id(query.datasource_id, "query.datasource_id"),
                                         query.SerializeToString(deterministic=True))
        return pb.SaveDatasetResponse(dataset=convert.dataset_message(record))

    @_rpc
    def GetDataset(self, request, context):
        if request.id:
            record = self.store.get_dataset(request.id)
        elif request.namespace and request.name:
            record = self.store.find_dataset(request.namespace, request.name)
        else:
            raise InvalidArgument("GetDataset needs an id, or a namespace and a name")
        return pb.GetDatasetResponse(dataset=convert.dataset_message(record))

    @_rpc
    def ListDatasets(self, request, context):
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_datasets(request.namespace, offset, size + 1)
        return pb.ListDatasetsResponse(datasets=[convert.dataset_message(r) for r in records[:size]],
                                       next_page_token=convert.next_token(offset, size, len(records)))

    @_rpc
    def DeleteDataset(self, request, context):
        self.store.delete_dataset(_require_id(request.id, "id"))
        return pb.DeleteDatasetResponse()

    # Bag datasets
    @_rpc
    def RegisterBagDataset(self, request, context):
        record = self.store.register_bag_dataset(request.namespace, request.name, request.uri)
        return pb.RegisterBagDatasetResponse(bag_dataset=convert.bag_dataset_message(record))

    @_rpc
    def GetBagDataset(self, request, context):
        record = self.store.find_bag_dataset(request.namespace, request.name)
        return pb.GetBagDatasetResponse(bag_dataset=convert.bag_dataset_message(record))

    @_rpc
    def ListBagDatasets(self, request, context):
        offset, size = convert.page(request.page_size, request.page_token)
        records = self.store.list_bag_datasets(request.namespace, offset, size + 1)
        return pb.ListBagDatasetsResponse(bag_datasets=[convert.bag_dataset_message(r) for r in records[:size]],
                                          next_page_token=convert.next_token(offset, size, len(records)))


def _arrow_stream(table: pa.Table, response_type) -> Iterator:
    yield response_type(schema=serialize_schema(table.schema))
    for message in serialize_batches(table.to_batches()):
        yield response_type(record_batch=message)


class _Upload:
    """An UpsertTable stream read as it arrives: header and schema first, then record batches, then the end.

    ``batches()`` yields each batch as it is decoded and raises at the end unless an end message with
    matching counts arrived: gRPC may end the request stream of a client that went away as if it had
    finished, and the store, which writes batches as they come, then rolls the whole upload back.
    """

    def __init__(self, requests: Iterator[pb.UpsertTableRequest]) -> None:
        self._requests = iter(requests)
        self.header = self._expect("header", "UpsertTable needs a header and a schema").header
        self.schema = _decode(read_schema, self._expect("schema", "UpsertTable expects one schema, right after "
                                                        "the header").schema, "schema")

    def _expect(self, part: str, message: str) -> pb.UpsertTableRequest:
        request = next(self._requests, None)
        got = request.WhichOneof("part") if request is not None else None
        if got != part:
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
        if end is None:
            raise InvalidArgument("UpsertTable stream stopped before its end message: nothing was written")
        if (end.record_batches, end.rows) != (sent, rows):
            raise InvalidArgument(f"UpsertTable end announces {end.record_batches} batches of {end.rows} rows, "
                                  f"but {sent} batches of {rows} rows arrived: nothing was written")


def _decode(reader, data: bytes, what: str, *args):
    try:
        return reader(data, *args)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
        raise InvalidArgument(f"UpsertTable got a malformed Arrow {what}: {error}") from None


