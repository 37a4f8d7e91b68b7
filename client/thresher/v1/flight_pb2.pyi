from thresher.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueryTicket(_message.Message):
    __slots__ = ("query", "id_range", "unless_partitioned")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ID_RANGE_FIELD_NUMBER: _ClassVar[int]
    UNLESS_PARTITIONED_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.Query
    id_range: DatapointIdRange
    unless_partitioned: bool
    def __init__(self, query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ..., id_range: _Optional[_Union[DatapointIdRange, _Mapping]] = ..., unless_partitioned: bool = ...) -> None: ...

class DatapointIdRange(_message.Message):
    __slots__ = ("start", "stop")
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    start: int
    stop: int
    def __init__(self, start: _Optional[int] = ..., stop: _Optional[int] = ...) -> None: ...

class FileTicket(_message.Message):
    __slots__ = ("datasource_id", "path", "offset", "length")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    path: str
    offset: int
    length: int
    def __init__(self, datasource_id: _Optional[int] = ..., path: _Optional[str] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class BlobTicket(_message.Message):
    __slots__ = ("sha256", "datasource_id")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    datasource_id: int
    def __init__(self, sha256: _Optional[str] = ..., datasource_id: _Optional[int] = ...) -> None: ...

class BagShardTicket(_message.Message):
    __slots__ = ("dataset", "shard", "start", "stop", "keys")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    shard: int
    start: int
    stop: int
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dataset: _Optional[str] = ..., shard: _Optional[int] = ..., start: _Optional[int] = ..., stop: _Optional[int] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class FlightTicket(_message.Message):
    __slots__ = ("query", "file", "blob", "bag_shard")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    BAG_SHARD_FIELD_NUMBER: _ClassVar[int]
    query: QueryTicket
    file: FileTicket
    blob: BlobTicket
    bag_shard: BagShardTicket
    def __init__(self, query: _Optional[_Union[QueryTicket, _Mapping]] = ..., file: _Optional[_Union[FileTicket, _Mapping]] = ..., blob: _Optional[_Union[BlobTicket, _Mapping]] = ..., bag_shard: _Optional[_Union[BagShardTicket, _Mapping]] = ...) -> None: ...

class UpsertCommand(_message.Message):
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

class BagDatasetCommand(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    def __init__(self, dataset: _Optional[str] = ...) -> None: ...

class EstimatedQueryCommand(_message.Message):
    __slots__ = ("query",)
    QUERY_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.Query
    def __init__(self, query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ...) -> None: ...

class FlightCommand(_message.Message):
    __slots__ = ("query", "upsert", "bag_dataset", "estimated_query")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    BAG_DATASET_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_QUERY_FIELD_NUMBER: _ClassVar[int]
    query: _common_pb2.Query
    upsert: UpsertCommand
    bag_dataset: BagDatasetCommand
    estimated_query: EstimatedQueryCommand
    def __init__(self, query: _Optional[_Union[_common_pb2.Query, _Mapping]] = ..., upsert: _Optional[_Union[UpsertCommand, _Mapping]] = ..., bag_dataset: _Optional[_Union[BagDatasetCommand, _Mapping]] = ..., estimated_query: _Optional[_Union[EstimatedQueryCommand, _Mapping]] = ...) -> None: ...
