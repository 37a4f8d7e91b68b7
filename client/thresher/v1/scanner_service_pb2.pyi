from thresher.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartScanRequest(_message.Message):
    __slots__ = ("datasource_id",)
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    def __init__(self, datasource_id: _Optional[int] = ...) -> None: ...

class StartScanResponse(_message.Message):
    __slots__ = ("scan", "started")
    SCAN_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    scan: _common_pb2.ScanStatus
    started: bool
    def __init__(self, scan: _Optional[_Union[_common_pb2.ScanStatus, _Mapping]] = ..., started: bool = ...) -> None: ...

class GetScanStatusRequest(_message.Message):
    __slots__ = ("datasource_id",)
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    def __init__(self, datasource_id: _Optional[int] = ...) -> None: ...

class GetScanStatusResponse(_message.Message):
    __slots__ = ("scan",)
    SCAN_FIELD_NUMBER: _ClassVar[int]
    scan: _common_pb2.ScanStatus
    def __init__(self, scan: _Optional[_Union[_common_pb2.ScanStatus, _Mapping]] = ...) -> None: ...
