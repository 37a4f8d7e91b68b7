"""Starts the scanner service: ``create_server`` for tests and ``thresher up``, ``main`` for the command line."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Iterable, Mapping

import grpc

from thresher.services.auth import ServiceSecurity
from thresher.services.auth.datasource_access import DatasourceAuthorizer
from thresher.services.grpc_server import finish_server, new_server
from thresher.services.scanner.manager import ScanManager
from thresher.services.scanner.metadata_client import MetadataCatalog
from thresher.services.scanner.servicer import ScannerServicer
from thresher.core.transport import metadata_address, scanner_address
from thresher.v1 import scanner_service_pb2, scanner_service_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = scanner_service_pb2.DESCRIPTOR.services_by_name["ScannerService"].full_name


class ScannerServer(grpc.Server):  # type: ignore[misc]  # grpc ships no type information
    """The scanner's gRPC server together with the scans it runs.

    ``stop`` stops accepting calls, cancels running scans (they stay SCANNING, to be resumed by the
    next scanner) and waits for their threads before the returned event is set.
    """

    def __init__(self, server: grpc.Server, manager: ScanManager, channel: grpc.Channel) -> None:
        self._server = server
        self._manager = manager
        self._channel = channel
        self._stopped = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()

    def stop(self, grace: float | None) -> threading.Event:
        with self._lock:
            if self._stopping:
                return self._stopped
            self._stopping = True
        server_stopped = self._server.stop(grace)

        def finish() -> None:
            self._manager.shutdown()
            server_stopped.wait()
            self._channel.close()
            self._stopped.set()

        threading.Thread(target=finish, name="scanner-stop", daemon=True).start()
        return self._stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def start(self) -> None:
        self._server.start()

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str,
                                       method_handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        port: int = self._server.add_insecure_port(address)
        return port

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        port: int = self._server.add_secure_port(address, server_credentials)
        return port


def create_server(address: str, metadata_address: str, security: ServiceSecurity | None = None, *,
                  remote_image_sizes: bool = True) -> tuple[ScannerServer, int]:
    """Serves the scanner on ``address`` (``host:port``, port 0 for any), writing through ``metadata_address``.

    Scans left pending or scanning are resumed in the background. ``security`` (default: none, which
    only a loopback address allows) sets tokens and TLS; scans run with its service token.
    ``remote_image_sizes=False`` skips reading image headers from object stores (no width/height there).
    """
    security = security or ServiceSecurity()
    security.check_bind(address)
    channel = security.channel(metadata_address)
    manager = ScanManager(MetadataCatalog(channel), remote_image_sizes=remote_image_sizes)
    authorizer = DatasourceAuthorizer(channel, {"StartScan": True, "GetScanStatus": False})
    server = new_server(interceptors=security.server_interceptors(authorizer))
    # The generated gRPC module has no type information.
    scanner_service_pb2_grpc.add_ScannerServiceServicer_to_server(ScannerServicer(manager), server)  # type: ignore[no-untyped-call]
    try:
        server, port = finish_server(server, address, [SERVICE_NAME], security.server_credentials())
    except BaseException:
        channel.close()
        raise
    manager.resume_in_background()
    return ScannerServer(server, manager, channel), port


def main(argv: list[str] | None = None) -> None:
    """``python -m thresher.services.scanner``."""
    parser = argparse.ArgumentParser(prog="thresher.services.scanner", description="Thresher scanner service")
    parser.add_argument("--address", default=scanner_address(), help="host:port to serve on (default: %(default)s)")
    parser.add_argument("--metadata-address", default=metadata_address(),
                        help="the metadata service (default: $THRESHER_METADATA_ADDRESS or %(default)s)")
    parser.add_argument("--no-remote-image-sizes", dest="remote_image_sizes", action="store_false",
                        help="do not read image headers from S3/GCS/git for width and height (faster first scans)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server, _ = create_server(args.address, args.metadata_address, ServiceSecurity.from_env(),
                              remote_image_sizes=args.remote_image_sizes)

    def stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        server.stop(grace=5)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait_for_termination()
