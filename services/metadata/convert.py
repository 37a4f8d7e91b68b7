"""Store records to protobuf messages, and page tokens."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from thresher.core.scan_status import ScanStatus
from thresher.services.metadata.domain_errors import InvalidArgument
from thresher.services.metadata.store.records import (
    BagDatasetRecord,
    DatasetRecord,
    DatasourceRecord,
    FieldRecord,
    NamespaceRecord,
)
from thresher.v1 import common_pb2, metadata_service_pb2

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_KNOWN_SCAN_STATES = (
    common_pb2.SCAN_STATE_PENDING,
    common_pb2.SCAN_STATE_SCANNING,
    common_pb2.SCAN_STATE_READY,
    common_pb2.SCAN_STATE_FAILED,
)


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def datetime_or_none(message: timestamp_pb2.Timestamp) -> dt.datetime | None:
    if message.seconds == 0 and message.nanos == 0:
        return None
    stamp: dt.datetime = message.ToDatetime(tzinfo=dt.UTC)
    return stamp


def namespace_message(record: NamespaceRecord) -> common_pb2.Namespace:
    return common_pb2.Namespace(
        name=record.name, repository_uri=record.repository_uri, created_at=timestamp(record.created_at)
    )


def field_message(record: FieldRecord) -> common_pb2.Field:
    return common_pb2.Field(
        name=record.name, type=record.type.proto, tags=list(record.tags), created_at=timestamp(record.created_at)
    )


def scan_status(message: common_pb2.ScanStatus) -> ScanStatus:
    if message.state not in _KNOWN_SCAN_STATES:
        raise InvalidArgument(f"scan state {message.state} is not one of pending, scanning, ready, failed")
    return ScanStatus.from_proto(message)


def datasource_message(record: DatasourceRecord) -> common_pb2.Datasource:
    return common_pb2.Datasource(
        id=record.id,
        namespace=record.namespace,
        name=record.name,
        source_uri=record.source_uri,
        revision=record.revision,
        scan=record.scan.to_proto(),
        created_at=timestamp(record.created_at),
        fields=[field_message(f) for f in record.fields],
    )


def dataset_message(record: DatasetRecord) -> common_pb2.Dataset:
    query = common_pb2.Query()
    query.ParseFromString(record.query)
    return common_pb2.Dataset(
        id=record.id,
        namespace=record.namespace,
        name=record.name,
        datasource_id=record.datasource_id,
        query=query,
        created_at=timestamp(record.created_at),
    )


def bag_dataset_message(record: BagDatasetRecord) -> metadata_service_pb2.BagDataset:
    return metadata_service_pb2.BagDataset(
        namespace=record.namespace, name=record.name, uri=record.uri, registered_at=timestamp(record.registered_at)
    )


def page(page_size: int, page_token: str) -> tuple[int, int]:
    """(offset, limit) from a list request's page fields; the limit asks one extra row to see the end."""
    if page_size < 0:
        raise InvalidArgument(f"page_size must not be negative, got {page_size}")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    try:
        offset = int(page_token) if page_token else 0
    except ValueError:
        raise InvalidArgument(f"page_token {page_token!r} is not one this service issued") from None
    if offset < 0:
        raise InvalidArgument(f"page_token {page_token!r} is not one this service issued")
    return offset, size


def next_token(offset: int, size: int, got: int) -> str:
    return str(offset + size) if got > size else ""
