from google.protobuf import timestamp_pb2 as _timestamp_pb2
from thresher.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SqlTableKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SQL_TABLE_KIND_UNSPECIFIED: _ClassVar[SqlTableKind]
    SQL_TABLE_KIND_DATASOURCE: _ClassVar[SqlTableKind]
    SQL_TABLE_KIND_DATASET: _ClassVar[SqlTableKind]
SQL_TABLE_KIND_UNSPECIFIED: SqlTableKind
SQL_TABLE_KIND_DATASOURCE: SqlTableKind
SQL_TABLE_KIND_DATASET: SqlTableKind

class CreateNamespaceRequest(_message.Message):
    __slots__ = ("name", "repository_uri")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_URI_FIELD_NUMBER: _ClassVar[int]
    name: str
    repository_uri: str
    def __init__(self, name: _Optional[str] = ..., repository_uri: _Optional[str] = ...) -> None: ...

class CreateNamespaceResponse(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: _common_pb2.Namespace
    def __init__(self, namespace: _Optional[_Union[_common_pb2.Namespace, _Mapping]] = ...) -> None: ...

class GetNamespaceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetNamespaceResponse(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: _common_pb2.Namespace
    def __init__(self, namespace: _Optional[_Union[_common_pb2.Namespace, _Mapping]] = ...) -> None: ...

class ListNamespacesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListNamespacesResponse(_message.Message):
    __slots__ = ("namespaces", "next_page_token")
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[_common_pb2.Namespace]
    next_page_token: str
    def __init__(self, namespaces: _Optional[_Iterable[_Union[_common_pb2.Namespace, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateDatasourceRequest(_message.Message):
    __slots__ = ("namespace", "name", "source_uri", "revision")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    source_uri: str
    revision: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., source_uri: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class CreateDatasourceResponse(_message.Message):
    __slots__ = ("datasource",)
    DATASOURCE_FIELD_NUMBER: _ClassVar[int]
    datasource: _common_pb2.Datasource
    def __init__(self, datasource: _Optional[_Union[_common_pb2.Datasource, _Mapping]] = ...) -> None: ...

class GetDatasourceRequest(_message.Message):
    __slots__ = ("id", "namespace", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    namespace: str
    name: str
    def __init__(self, id: _Optional[int] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetDatasourceResponse(_message.Message):
    __slots__ = ("datasource",)
    DATASOURCE_FIELD_NUMBER: _ClassVar[int]
    datasource: _common_pb2.Datasource
    def __init__(self, datasource: _Optional[_Union[_common_pb2.Datasource, _Mapping]] = ...) -> None: ...

class GetOrCreateDatasourceRequest(_message.Message):
    __slots__ = ("namespace", "name", "source_uri", "revision")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    source_uri: str
    revision: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., source_uri: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class GetOrCreateDatasourceResponse(_message.Message):
    __slots__ = ("datasource", "created")
    DATASOURCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    datasource: _common_pb2.Datasource
    created: bool
    def __init__(self, datasource: _Optional[_Union[_common_pb2.Datasource, _Mapping]] = ..., created: bool = ...) -> None: ...

class ListDatasourcesRequest(_message.Message):
    __slots__ = ("namespace", "page_size", "page_token")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    page_size: int
    page_token: str
    def __init__(self, namespace: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasourcesResponse(_message.Message):
    __slots__ = ("datasources", "next_page_token")
    DATASOURCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasources: _containers.RepeatedCompositeFieldContainer[_common_pb2.Datasource]
    next_page_token: str
    def __init__(self, datasources: _Optional[_Iterable[_Union[_common_pb2.Datasource, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDatasourceRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteDatasourceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateScanStatusRequest(_message.Message):
    __slots__ = ("datasource_id", "scan")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    scan: _common_pb2.ScanStatus
    def __init__(self, datasource_id: _Optional[int] = ..., scan: _Optional[_Union[_common_pb2.ScanStatus, _Mapping]] = ...) -> None: ...

class UpdateScanStatusResponse(_message.Message):
    __slots__ = ("datasource",)
    DATASOURCE_FIELD_NUMBER: _ClassVar[int]
    datasource: _common_pb2.Datasource
    def __init__(self, datasource: _Optional[_Union[_common_pb2.Datasource, _Mapping]] = ...) -> None: ...

class DefineFieldsRequest(_message.Message):
    __slots__ = ("datasource_id", "fields")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    fields: _containers.RepeatedCompositeFieldContainer[_common_pb2.Field]
    def __init__(self, datasource_id: _Optional[int] = ..., fields: _Optional[_Iterable[_Union[_common_pb2.Field, _Mapping]]] = ...) -> None: ...

class DefineFieldsResponse(_message.Message):
    __slots__ = ("fields",)
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[_common_pb2.Field]
    def __init__(self, fields: _Optional[_Iterable[_Union[_common_pb2.Field, _Mapping]]] = ...) -> None: ...

class DatapointValues(_message.Message):
    __slots__ = ("path", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.Value, _Mapping]] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    path: str
    values: _containers.MessageMap[str, _common_pb2.Value]
    def __init__(self, path: _Optional[str] = ..., values: _Optional[_Mapping[str, _common_pb2.Value]] = ...) -> None: ...

class UpsertMetadataRequest(_message.Message):
    __slots__ = ("datasource_id", "datapoints", "create_missing")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_MISSING_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    datapoints: _containers.RepeatedCompositeFieldContainer[DatapointValues]
    create_missing: bool
    def __init__(self, datasource_id: _Optional[int] = ..., datapoints: _Optional[_Iterable[_Union[DatapointValues, _Mapping]]] = ..., create_missing: bool = ...) -> None: ...

class UpsertMetadataResponse(_message.Message):
    __slots__ = ("datapoints_written", "datapoints_created")
    DATAPOINTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_CREATED_FIELD_NUMBER: _ClassVar[int]
    datapoints_written: int
    datapoints_created: int
    def __init__(self, datapoints_written: _Optional[int] = ..., datapoints_created: _Optional[int] = ...) -> None: ...

class UpsertTableHeader(_message.Message):
    __slots__ = ("datasource_id", "path_column", "create_missing", "staging_session", "block_index")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_COLUMN_FIELD_NUMBER: _ClassVar[int]
    CREATE_MISSING_FIELD_NUMBER: _ClassVar[int]
    STAGING_SESSION_FIELD_NUMBER: _ClassVar[int]
    BLOCK_INDEX_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    path_column: str
    create_missing: bool
    staging_session: str
    block_index: int
    def __init__(self, datasource_id: _Optional[int] = ..., path_column: _Optional[str] = ..., create_missing: bool = ..., staging_session: _Optional[str] = ..., block_index: _Optional[int] = ...) -> None: ...

class UpsertTableEnd(_message.Message):
    __slots__ = ("record_batches", "rows")
    RECORD_BATCHES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    record_batches: int
    rows: int
    def __init__(self, record_batches: _Optional[int] = ..., rows: _Optional[int] = ...) -> None: ...

class UpsertTableRequest(_message.Message):
    __slots__ = ("header", "schema", "record_batch", "end")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RECORD_BATCH_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    header: UpsertTableHeader
    schema: bytes
    record_batch: bytes
    end: UpsertTableEnd
    def __init__(self, header: _Optional[_Union[UpsertTableHeader, _Mapping]] = ..., schema: _Optional[bytes] = ..., record_batch: _Optional[bytes] = ..., end: _Optional[_Union[UpsertTableEnd, _Mapping]] = ...) -> None: ...

class UpsertTableResponse(_message.Message):
    __slots__ = ("datapoints_written", "datapoints_created")
    DATAPOINTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_CREATED_FIELD_NUMBER: _ClassVar[int]
    datapoints_written: int
    datapoints_created: int
    def __init__(self, datapoints_written: _Optional[int] = ..., datapoints_created: _Optional[int] = ...) -> None: ...

class CommitStagedUploadRequest(_message.Message):
    __slots__ = ("staging_session", "datasource_id", "block_count", "create_missing")
    STAGING_SESSION_FIELD_NUMBER: _ClassVar[int]
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_MISSING_FIELD_NUMBER: _ClassVar[int]
    staging_session: str
    datasource_id: int
    block_count: int
    create_missing: bool
    def __init__(self, staging_session: _Optional[str] = ..., datasource_id: _Optional[int] = ..., block_count: _Optional[int] = ..., create_missing: bool = ...) -> None: ...

class CommitStagedUploadResponse(_message.Message):
    __slots__ = ("datapoints_written", "datapoints_created")
    DATAPOINTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_CREATED_FIELD_NUMBER: _ClassVar[int]
    datapoints_written: int
    datapoints_created: int
    def __init__(self, datapoints_written: _Optional[int] = ..., datapoints_created: _Optional[int] = ...) -> None: ...

class AbortStagedUploadRequest(_message.Message):
    __slots__ = ("staging_session", "datasource_id")
    STAGING_SESSION_FIELD_NUMBER: _ClassVar[int]
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    staging_session: str
    datasource_id: int
    def __init__(self, staging_session: _Optional[str] = ..., datasource_id: _Optional[int] = ...) -> None: ...

class AbortStagedUploadResponse(_message.Message):
    __slots__ = ("blocks_dropped",)
    BLOCKS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    blocks_dropped: int
    def __init__(self, blocks_dropped: _Optional[int] = ...) -> None: ...

class DeleteMetadataRequest(_message.Message):
    __slots__ = ("datasource_id", "paths", "fields")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    paths: _containers.RepeatedScalarFieldContainer[str]
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, datasource_id: _Optional[int] = ..., paths: _Optional[_Iterable[str]] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteMetadataResponse(_message.Message):
    __slots__ = ("values_deleted",)
    VALUES_DELETED_FIELD_NUMBER: _ClassVar[int]
    values_deleted: int
    def __init__(self, values_deleted: _Optional[int] = ...) -> None: ...

class DeleteDatapointsRequest(_message.Message):
    __slots__ = ("datasource_id", "paths")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, datasource_id: _Optional[int] = ..., paths: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteDatapointsResponse(_message.Message):
    __slots__ = ("datapoints_deleted",)
    DATAPOINTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    datapoints_deleted: int
    def __init__(self, datapoints_deleted: _Optional[int] = ...) -> None: ...

class ExecuteQueryRequest(_message.Message):
    __slots__ = ("query", "max_batch_rows")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.Query
    max_batch_rows: int
    def __init__(self, query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ..., max_batch_rows: _Optional[int] = ...) -> None: ...

class ExecuteQueryResponse(_message.Message):
    __slots__ = ("schema", "record_batch")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RECORD_BATCH_FIELD_NUMBER: _ClassVar[int]
    schema: bytes
    record_batch: bytes
    def __init__(self, schema: _Optional[bytes] = ..., record_batch: _Optional[bytes] = ...) -> None: ...

class DescribeQueryRequest(_message.Message):
    __slots__ = ("query", "estimate", "count_only")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_ONLY_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.Query
    estimate: bool
    count_only: bool
    def __init__(self, query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ..., estimate: bool = ..., count_only: bool = ...) -> None: ...

class DescribeQueryResponse(_message.Message):
    __slots__ = ("schema", "total_rows", "min_datapoint_id", "max_datapoint_id")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    MIN_DATAPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_DATAPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    schema: bytes
    total_rows: int
    min_datapoint_id: int
    max_datapoint_id: int
    def __init__(self, schema: _Optional[bytes] = ..., total_rows: _Optional[int] = ..., min_datapoint_id: _Optional[int] = ..., max_datapoint_id: _Optional[int] = ...) -> None: ...

class CountValuesRequest(_message.Message):
    __slots__ = ("query", "field", "bins", "max_values")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUES_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.Query
    field: str
    bins: int
    max_values: int
    def __init__(self, query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ..., field: _Optional[str] = ..., bins: _Optional[int] = ..., max_values: _Optional[int] = ...) -> None: ...

class CountValuesResponse(_message.Message):
    __slots__ = ("counts", "total_rows", "missing")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    counts: bytes
    total_rows: int
    missing: int
    def __init__(self, counts: _Optional[bytes] = ..., total_rows: _Optional[int] = ..., missing: _Optional[int] = ...) -> None: ...

class ReadQueryRequest(_message.Message):
    __slots__ = ("query", "max_rows")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.Query
    max_rows: int
    def __init__(self, query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ..., max_rows: _Optional[int] = ...) -> None: ...

class ReadQueryResponse(_message.Message):
    __slots__ = ("arrow_stream", "too_large")
    ARROW_STREAM_FIELD_NUMBER: _ClassVar[int]
    TOO_LARGE_FIELD_NUMBER: _ClassVar[int]
    arrow_stream: bytes
    too_large: bool
    def __init__(self, arrow_stream: _Optional[bytes] = ..., too_large: bool = ...) -> None: ...

class ExecuteSqlRequest(_message.Message):
    __slots__ = ("sql", "parameters", "max_batch_rows")
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    sql: str
    parameters: bytes
    max_batch_rows: int
    def __init__(self, sql: _Optional[str] = ..., parameters: _Optional[bytes] = ..., max_batch_rows: _Optional[int] = ...) -> None: ...

class ExecuteSqlResponse(_message.Message):
    __slots__ = ("schema", "record_batch")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RECORD_BATCH_FIELD_NUMBER: _ClassVar[int]
    schema: bytes
    record_batch: bytes
    def __init__(self, schema: _Optional[bytes] = ..., record_batch: _Optional[bytes] = ...) -> None: ...

class DescribeSqlRequest(_message.Message):
    __slots__ = ("sql", "parameters")
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    sql: str
    parameters: bytes
    def __init__(self, sql: _Optional[str] = ..., parameters: _Optional[bytes] = ...) -> None: ...

class DescribeSqlResponse(_message.Message):
    __slots__ = ("schema",)
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    schema: bytes
    def __init__(self, schema: _Optional[bytes] = ...) -> None: ...

class ListSqlTablesRequest(_message.Message):
    __slots__ = ("namespace", "include_schema")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    include_schema: bool
    def __init__(self, namespace: _Optional[str] = ..., include_schema: bool = ...) -> None: ...

class SqlTable(_message.Message):
    __slots__ = ("namespace", "name", "kind", "schema")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    kind: SqlTableKind
    schema: bytes
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[SqlTableKind, str]] = ..., schema: _Optional[bytes] = ...) -> None: ...

class ListSqlTablesResponse(_message.Message):
    __slots__ = ("tables",)
    TABLES_FIELD_NUMBER: _ClassVar[int]
    tables: _containers.RepeatedCompositeFieldContainer[SqlTable]
    def __init__(self, tables: _Optional[_Iterable[_Union[SqlTable, _Mapping]]] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("datasource_id", "path", "field")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    path: str
    field: str
    def __init__(self, datasource_id: _Optional[int] = ..., path: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("schema", "record_batch")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RECORD_BATCH_FIELD_NUMBER: _ClassVar[int]
    schema: bytes
    record_batch: bytes
    def __init__(self, schema: _Optional[bytes] = ..., record_batch: _Optional[bytes] = ...) -> None: ...

class ListChangesRequest(_message.Message):
    __slots__ = ("datasource_id", "since", "until")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, datasource_id: _Optional[int] = ..., since: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListChangesResponse(_message.Message):
    __slots__ = ("schema", "record_batch")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RECORD_BATCH_FIELD_NUMBER: _ClassVar[int]
    schema: bytes
    record_batch: bytes
    def __init__(self, schema: _Optional[bytes] = ..., record_batch: _Optional[bytes] = ...) -> None: ...

class SaveDatasetRequest(_message.Message):
    __slots__ = ("namespace", "name", "query")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    query: _common_pb2.Query
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ...) -> None: ...

class SaveDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _common_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_common_pb2.Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("id", "namespace", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    namespace: str
    name: str
    def __init__(self, id: _Optional[int] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _common_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_common_pb2.Dataset, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("namespace", "page_size", "page_token")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    page_size: int
    page_token: str
    def __init__(self, namespace: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_common_pb2.Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[_common_pb2.Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BagDataset(_message.Message):
    __slots__ = ("namespace", "name", "uri", "registered_at")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    uri: str
    registered_at: _timestamp_pb2.Timestamp
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., uri: _Optional[str] = ..., registered_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterBagDatasetRequest(_message.Message):
    __slots__ = ("namespace", "name", "uri")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    uri: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., uri: _Optional[str] = ...) -> None: ...

class RegisterBagDatasetResponse(_message.Message):
    __slots__ = ("bag_dataset",)
    BAG_DATASET_FIELD_NUMBER: _ClassVar[int]
    bag_dataset: BagDataset
    def __init__(self, bag_dataset: _Optional[_Union[BagDataset, _Mapping]] = ...) -> None: ...

class GetBagDatasetRequest(_message.Message):
    __slots__ = ("namespace", "name")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetBagDatasetResponse(_message.Message):
    __slots__ = ("bag_dataset",)
    BAG_DATASET_FIELD_NUMBER: _ClassVar[int]
    bag_dataset: BagDataset
    def __init__(self, bag_dataset: _Optional[_Union[BagDataset, _Mapping]] = ...) -> None: ...

class ListBagDatasetsRequest(_message.Message):
    __slots__ = ("namespace", "page_size", "page_token")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    page_size: int
    page_token: str
    def __init__(self, namespace: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBagDatasetsResponse(_message.Message):
    __slots__ = ("bag_datasets", "next_page_token")
    BAG_DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    bag_datasets: _containers.RepeatedCompositeFieldContainer[BagDataset]
    next_page_token: str
    def __init__(self, bag_datasets: _Optional[_Iterable[_Union[BagDataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateVectorIndexRequest(_message.Message):
    __slots__ = ("datasource_id", "field", "metric", "connectivity", "expansion_add", "expansion_search")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CONNECTIVITY_FIELD_NUMBER: _ClassVar[int]
    EXPANSION_ADD_FIELD_NUMBER: _ClassVar[int]
    EXPANSION_SEARCH_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    field: str
    metric: _common_pb2.DistanceMetric
    connectivity: int
    expansion_add: int
    expansion_search: int
    def __init__(self, datasource_id: _Optional[int] = ..., field: _Optional[str] = ..., metric: _Optional[_Union[_common_pb2.DistanceMetric, str]] = ..., connectivity: _Optional[int] = ..., expansion_add: _Optional[int] = ..., expansion_search: _Optional[int] = ...) -> None: ...

class CreateVectorIndexResponse(_message.Message):
    __slots__ = ("field", "metric", "size", "built_at", "digest", "build_seconds")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    field: str
    metric: _common_pb2.DistanceMetric
    size: int
    built_at: _timestamp_pb2.Timestamp
    digest: str
    build_seconds: float
    def __init__(self, field: _Optional[str] = ..., metric: _Optional[_Union[_common_pb2.DistanceMetric, str]] = ..., size: _Optional[int] = ..., built_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., digest: _Optional[str] = ..., build_seconds: _Optional[float] = ...) -> None: ...
