from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FieldType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_TYPE_UNSPECIFIED: _ClassVar[FieldType]
    FIELD_TYPE_INT: _ClassVar[FieldType]
    FIELD_TYPE_FLOAT: _ClassVar[FieldType]
    FIELD_TYPE_BOOL: _ClassVar[FieldType]
    FIELD_TYPE_STRING: _ClassVar[FieldType]
    FIELD_TYPE_DATETIME: _ClassVar[FieldType]
    FIELD_TYPE_BLOB: _ClassVar[FieldType]
    FIELD_TYPE_ANNOTATION_CLASSIFICATION: _ClassVar[FieldType]
    FIELD_TYPE_ANNOTATION_DETECTIONS: _ClassVar[FieldType]
    FIELD_TYPE_ANNOTATION_POLYLINES: _ClassVar[FieldType]
    FIELD_TYPE_ANNOTATION_KEYPOINTS: _ClassVar[FieldType]
    FIELD_TYPE_ANNOTATION_SEGMENTATION: _ClassVar[FieldType]

class ScanState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCAN_STATE_UNSPECIFIED: _ClassVar[ScanState]
    SCAN_STATE_PENDING: _ClassVar[ScanState]
    SCAN_STATE_SCANNING: _ClassVar[ScanState]
    SCAN_STATE_READY: _ClassVar[ScanState]
    SCAN_STATE_FAILED: _ClassVar[ScanState]

class ComparisonOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPARISON_OPERATOR_UNSPECIFIED: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_EQ: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_NE: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_LT: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_LE: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_GT: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_GE: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_CONTAINS: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_STARTSWITH: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_ENDSWITH: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_IS_NULL: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_IS_NOT_NULL: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_ISIN: _ClassVar[ComparisonOperator]

class ObjectMeasureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECT_MEASURE_KIND_UNSPECIFIED: _ClassVar[ObjectMeasureKind]
    OBJECT_MEASURE_KIND_COUNT: _ClassVar[ObjectMeasureKind]
    OBJECT_MEASURE_KIND_MAX_CONFIDENCE: _ClassVar[ObjectMeasureKind]
    OBJECT_MEASURE_KIND_MIN_CONFIDENCE: _ClassVar[ObjectMeasureKind]
FIELD_TYPE_UNSPECIFIED: FieldType
FIELD_TYPE_INT: FieldType
FIELD_TYPE_FLOAT: FieldType
FIELD_TYPE_BOOL: FieldType
FIELD_TYPE_STRING: FieldType
FIELD_TYPE_DATETIME: FieldType
FIELD_TYPE_BLOB: FieldType
FIELD_TYPE_ANNOTATION_CLASSIFICATION: FieldType
FIELD_TYPE_ANNOTATION_DETECTIONS: FieldType
FIELD_TYPE_ANNOTATION_POLYLINES: FieldType
FIELD_TYPE_ANNOTATION_KEYPOINTS: FieldType
FIELD_TYPE_ANNOTATION_SEGMENTATION: FieldType
SCAN_STATE_UNSPECIFIED: ScanState
SCAN_STATE_PENDING: ScanState
SCAN_STATE_SCANNING: ScanState
SCAN_STATE_READY: ScanState
SCAN_STATE_FAILED: ScanState
COMPARISON_OPERATOR_UNSPECIFIED: ComparisonOperator
COMPARISON_OPERATOR_EQ: ComparisonOperator
COMPARISON_OPERATOR_NE: ComparisonOperator
COMPARISON_OPERATOR_LT: ComparisonOperator
COMPARISON_OPERATOR_LE: ComparisonOperator
COMPARISON_OPERATOR_GT: ComparisonOperator
COMPARISON_OPERATOR_GE: ComparisonOperator
COMPARISON_OPERATOR_CONTAINS: ComparisonOperator
COMPARISON_OPERATOR_STARTSWITH: ComparisonOperator
COMPARISON_OPERATOR_ENDSWITH: ComparisonOperator
COMPARISON_OPERATOR_IS_NULL: ComparisonOperator
COMPARISON_OPERATOR_IS_NOT_NULL: ComparisonOperator
COMPARISON_OPERATOR_ISIN: ComparisonOperator
OBJECT_MEASURE_KIND_UNSPECIFIED: ObjectMeasureKind
OBJECT_MEASURE_KIND_COUNT: ObjectMeasureKind
OBJECT_MEASURE_KIND_MAX_CONFIDENCE: ObjectMeasureKind
OBJECT_MEASURE_KIND_MIN_CONFIDENCE: ObjectMeasureKind

class Value(_message.Message):
    __slots__ = ("int_value", "float_value", "bool_value", "string_value", "datetime_value", "blob_value", "annotation_value")
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATETIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    BLOB_VALUE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_VALUE_FIELD_NUMBER: _ClassVar[int]
    int_value: int
    float_value: float
    bool_value: bool
    string_value: str
    datetime_value: _timestamp_pb2.Timestamp
    blob_value: bytes
    annotation_value: Annotation
    def __init__(self, int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., bool_value: bool = ..., string_value: _Optional[str] = ..., datetime_value: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., blob_value: _Optional[bytes] = ..., annotation_value: _Optional[_Union[Annotation, _Mapping]] = ...) -> None: ...

class LabelObject(_message.Message):
    __slots__ = ("label", "confidence", "box", "points", "closed", "filled", "instance_id", "attributes")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    FILLED_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    label: str
    confidence: float
    box: _containers.RepeatedScalarFieldContainer[float]
    points: _containers.RepeatedScalarFieldContainer[float]
    closed: bool
    filled: bool
    instance_id: int
    attributes: str
    def __init__(self, label: _Optional[str] = ..., confidence: _Optional[float] = ..., box: _Optional[_Iterable[float]] = ..., points: _Optional[_Iterable[float]] = ..., closed: bool = ..., filled: bool = ..., instance_id: _Optional[int] = ..., attributes: _Optional[str] = ...) -> None: ...

class Annotation(_message.Message):
    __slots__ = ("type", "objects", "mask", "mask_bytes", "classes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    MASK_BYTES_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    type: FieldType
    objects: _containers.RepeatedCompositeFieldContainer[LabelObject]
    mask: str
    mask_bytes: bytes
    classes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[_Union[FieldType, str]] = ..., objects: _Optional[_Iterable[_Union[LabelObject, _Mapping]]] = ..., mask: _Optional[str] = ..., mask_bytes: _Optional[bytes] = ..., classes: _Optional[_Iterable[str]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class Field(_message.Message):
    __slots__ = ("name", "type", "tags", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: FieldType
    tags: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[FieldType, str]] = ..., tags: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Namespace(_message.Message):
    __slots__ = ("name", "repository_uri", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_URI_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    repository_uri: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., repository_uri: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScanStatus(_message.Message):
    __slots__ = ("state", "files_seen", "datapoints_added", "datapoints_updated", "datapoints_removed", "files_per_second", "failure_reason", "started_at", "finished_at")
    STATE_FIELD_NUMBER: _ClassVar[int]
    FILES_SEEN_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_ADDED_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    FILES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    state: ScanState
    files_seen: int
    datapoints_added: int
    datapoints_updated: int
    datapoints_removed: int
    files_per_second: float
    failure_reason: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[ScanState, str]] = ..., files_seen: _Optional[int] = ..., datapoints_added: _Optional[int] = ..., datapoints_updated: _Optional[int] = ..., datapoints_removed: _Optional[int] = ..., files_per_second: _Optional[float] = ..., failure_reason: _Optional[str] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Datasource(_message.Message):
    __slots__ = ("id", "namespace", "name", "source_uri", "revision", "scan", "created_at", "fields")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    id: int
    namespace: str
    name: str
    source_uri: str
    revision: str
    scan: ScanStatus
    created_at: _timestamp_pb2.Timestamp
    fields: _containers.RepeatedCompositeFieldContainer[Field]
    def __init__(self, id: _Optional[int] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., source_uri: _Optional[str] = ..., revision: _Optional[str] = ..., scan: _Optional[_Union[ScanStatus, _Mapping]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., fields: _Optional[_Iterable[_Union[Field, _Mapping]]] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("field", "op", "value", "other_field", "values", "measure")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    field: str
    op: ComparisonOperator
    value: Value
    other_field: str
    values: ValueList
    measure: ObjectMeasure
    def __init__(self, field: _Optional[str] = ..., op: _Optional[_Union[ComparisonOperator, str]] = ..., value: _Optional[_Union[Value, _Mapping]] = ..., other_field: _Optional[str] = ..., values: _Optional[_Union[ValueList, _Mapping]] = ..., measure: _Optional[_Union[ObjectMeasure, _Mapping]] = ...) -> None: ...

class ObjectMeasure(_message.Message):
    __slots__ = ("kind", "label")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    kind: ObjectMeasureKind
    label: str
    def __init__(self, kind: _Optional[_Union[ObjectMeasureKind, str]] = ..., label: _Optional[str] = ...) -> None: ...

class FilterList(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    def __init__(self, filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("comparison", "all_of", "any_of", "negate")
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    ALL_OF_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    NEGATE_FIELD_NUMBER: _ClassVar[int]
    comparison: Comparison
    all_of: FilterList
    any_of: FilterList
    negate: Filter
    def __init__(self, comparison: _Optional[_Union[Comparison, _Mapping]] = ..., all_of: _Optional[_Union[FilterList, _Mapping]] = ..., any_of: _Optional[_Union[FilterList, _Mapping]] = ..., negate: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class SelectItem(_message.Message):
    __slots__ = ("field", "alias", "as_of")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    field: str
    alias: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, field: _Optional[str] = ..., alias: _Optional[str] = ..., as_of: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OrderBy(_message.Message):
    __slots__ = ("field", "descending")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    field: str
    descending: bool
    def __init__(self, field: _Optional[str] = ..., descending: bool = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("datasource_id", "filter", "select", "order_by", "limit", "as_of")
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SELECT_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    datasource_id: int
    filter: Filter
    select: _containers.RepeatedCompositeFieldContainer[SelectItem]
    order_by: _containers.RepeatedCompositeFieldContainer[OrderBy]
    limit: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, datasource_id: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., select: _Optional[_Iterable[_Union[SelectItem, _Mapping]]] = ..., order_by: _Optional[_Iterable[_Union[OrderBy, _Mapping]]] = ..., limit: _Optional[int] = ..., as_of: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("id", "namespace", "name", "datasource_id", "query", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATASOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    namespace: str
    name: str
    datasource_id: int
    query: Query
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., datasource_id: _Optional[int] = ..., query: _Optional[_Union[Query, _Mapping]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
