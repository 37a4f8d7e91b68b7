"""The ScannerService gRPC adapter: requests to ScanManager calls, domain errors to statuses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from thresher.services.scanner.manager import ScanManager, ShuttingDown
from thresher.services.scanner.metadata_interfaces import DatasourceNotFound, MetadataError, MetadataUnavailable
from thresher.v1 import scanner_service_pb2 as spb
from thresher.v1 import scanner_service_pb2_grpc

log = logging.getLogger(__name__)
T = TypeVar("T")


class ScannerServicer(scanner_service_pb2_grpc.ScannerServiceServicer):
    def __init__(self, manager: ScanManager) -> None:
        self._manager = manager

    def StartScan(self, request: spb.StartScanRequest, context: grpc.ServicerContext) -> spb.StartScanResponse:
        progress, started = _answer(context, request.datasource_id, self._manager.start)
        return spb.StartScanResponse(scan=progress.to_proto(), started=started)

    def GetScanStatus(
        self, request: spb.GetScanStatusRequest, context: grpc.ServicerContext
    ) -> spb.GetScanStatusResponse:
        progress = _answer(context, request.datasource_id, self._manager.status)
        return spb.GetScanStatusResponse(scan=progress.to_proto())


def _answer(context: grpc.ServicerContext, datasource_id: int, call: Callable[[int], T]) -> T:
    if datasource_id == 0:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "datasource_id is required")
    try:
        return call(datasource_id)
    except DatasourceNotFound as error:
        context.abort(grpc.StatusCode.NOT_FOUND, str(error))
    except (ShuttingDown, MetadataUnavailable) as error:
        context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
    except MetadataError as error:
        log.error("datasource %d: %s", datasource_id, error)
        context.abort(grpc.StatusCode.INTERNAL, str(error))
    raise AssertionError("unreachable: context.abort raises")
