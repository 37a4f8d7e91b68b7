"""Where the scan of a datasource stands, as the client and the services exchange it (``ScanStatus``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from thresher.v1 import common_pb2

PENDING, SCANNING, READY, FAILED = "pending", "scanning", "ready", "failed"
_STATES = {
    PENDING: common_pb2.SCAN_STATE_PENDING,
    SCANNING: common_pb2.SCAN_STATE_SCANNING,
    READY: common_pb2.SCAN_STATE_READY,
    FAILED: common_pb2.SCAN_STATE_FAILED,
}
_STATE_NAMES = {common_pb2.SCAN_STATE_UNSPECIFIED: PENDING, **{v: k for k, v in _STATES.items()}}


@dataclasses.dataclass(frozen=True)
class ScanStatus:
    """Where the scan of a datasource stands: ``state`` is pending, scanning, ready or failed."""

    state: str
    files_seen: int = 0
    datapoints_added: int = 0
    datapoints_updated: int = 0
    datapoints_removed: int = 0
    files_per_second: float = 0.0
    failure_reason: str = ""
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @classmethod
    def from_proto(cls, scan: common_pb2.ScanStatus) -> ScanStatus:
        def instant(name: str) -> dt.datetime | None:
            return getattr(scan, name).ToDatetime(tzinfo=dt.UTC) if scan.HasField(name) else None

        return cls(
            state=_STATE_NAMES.get(scan.state, PENDING),
            files_seen=scan.files_seen,
            datapoints_added=scan.datapoints_added,
            datapoints_updated=scan.datapoints_updated,
            datapoints_removed=scan.datapoints_removed,
            files_per_second=scan.files_per_second,
            failure_reason=scan.failure_reason,
            started_at=instant("started_at"),
            finished_at=instant("finished_at"),
        )

    def to_proto(self) -> common_pb2.ScanStatus:
        message = common_pb2.ScanStatus(
            state=_STATES[self.state],
            files_seen=self.files_seen,
            datapoints_added=self.datapoints_added,
            datapoints_updated=self.datapoints_updated,
            datapoints_removed=self.datapoints_removed,
            files_per_second=self.files_per_second,
            failure_reason=self.failure_reason,
        )
        if self.started_at is not None:
            message.started_at.FromDatetime(self.started_at)
        if self.finished_at is not None:
            message.finished_at.FromDatetime(self.finished_at)
        return message

    @property
    def done(self) -> bool:
        return self.state in (READY, FAILED)
