"""A metadata service of the scanner tests' own (a scanner resumes every pending datasource it finds,
so it must not share a store with other tests) and a scanner service on it."""

from __future__ import annotations

import time

import grpc
import pytest

from thresher.core.transport import open_channel
from thresher.v1 import common_pb2, metadata_service_pb2_grpc, scanner_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb
from thresher.v1 import scanner_service_pb2 as spb

TERMINAL = (common_pb2.SCAN_STATE_READY, common_pb2.SCAN_STATE_FAILED)


@pytest.fixture(scope="session")
def scanner_metadata(tmp_path_factory):
    from thresher.services.metadata.server import create_server, open_store

    store = open_store(str(tmp_path_factory.mktemp("scanner-metadata")))
    server, port = create_server("127.0.0.1:0", store)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait()
    store.close()


@pytest.fixture(scope="session")
def scanner_address(scanner_metadata):
    from thresher.services.scanner.server import create_server

    server, port = create_server("127.0.0.1:0", scanner_metadata)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait()


def _connected(address: str) -> grpc.Channel:
    channel = open_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    return channel


@pytest.fixture
def metadata(scanner_metadata):
    with _connected(scanner_metadata) as channel:
        yield metadata_service_pb2_grpc.MetadataServiceStub(channel)


@pytest.fixture
def scanner(scanner_address):
    with _connected(scanner_address) as channel:
        yield scanner_service_pb2_grpc.ScannerServiceStub(channel)


def create_datasource(metadata, namespace: str, uri: str, name: str = "files") -> common_pb2.Datasource:
    return metadata.CreateDatasource(
        mpb.CreateDatasourceRequest(namespace=namespace, name=name, source_uri=uri)
    ).datasource


def wait_for_scan(scanner, datasource_id: int, timeout: float = 60.0) -> common_pb2.ScanStatus:
    """Polls GetScanStatus until the scan is ready or failed."""
    deadline = time.monotonic() + timeout
    while True:
        scan = scanner.GetScanStatus(spb.GetScanStatusRequest(datasource_id=datasource_id)).scan
        if scan.state in TERMINAL:
            return scan
        if time.monotonic() > deadline:
            raise TimeoutError(f"scan of datasource {datasource_id} still {scan} after {timeout} s")
        time.sleep(0.01)


def scan(scanner, datasource_id: int) -> common_pb2.ScanStatus:
    response = scanner.StartScan(spb.StartScanRequest(datasource_id=datasource_id))
    assert response.started
    return wait_for_scan(scanner, datasource_id)
