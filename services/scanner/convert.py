"""Scan status to its protobuf form (``thresher.scan.ScanStatus.from_proto`` reads it back)."""

from __future__ import annotations

from thresher.scan import FAILED, PENDING, READY, SCANNING, ScanStatus
from thresher.v1 import common_pb2

_STATES = {
    PENDING: common_pb2.SCAN_STATE_PENDING,
    SCANNING: common_pb2.SCAN_STATE_SCANNING,
    READY: common_pb2.SCAN_STATE_READY,
    FAILED: common_pb2.SCAN_STATE_FAILED,
}


def status_to_proto(status: ScanStatus) -> common_pb2.ScanStatus:
    message = common_pb2.ScanStatus(
        state=_STATES[status.state],
        files_seen=status.files_seen,
        datapoints_added=status.datapoints_added,
        datapoints_updated=status.datapoints_updated,
        datapoints_removed=status.datapoints_removed,
        files_per_second=status.files_per_second,
        failure_reason=status.failure_reason,
    )
    if status.started_at is not None:
        message.started_at.FromDatetime(status.started_at)
    if status.finished_at is not None:
        message.finished_at.FromDatetime(status.finished_at)
    return message
