"""Starts the scanner service: ``create_server(settings)`` for tests and ``thresher up``, ``main`` for the command line."""

from __future__ import annotations

import argparse
import logging
import signal

import grpc

from thresher.core.settings import Settings, add_arguments, from_arguments
from thresher.services.auth import ServiceSecurity
from thresher.services.auth.datasource_access import DatasourceAuthorizer
from thresher.services.grpc_server import ServiceServer, finish_server, new_server
from thresher.services.scanner.manager import ScanManager
from thresher.services.scanner.metadata_client import MetadataCatalog
from thresher.services.scanner.servicer import ScannerServicer
from thresher.v1 import scanner_service_pb2, scanner_service_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = scanner_service_pb2.DESCRIPTOR.services_by_name["ScannerService"].full_name


class ScannerServer(ServiceServer):
    """The scanner's gRPC server together with the scans it runs.

    ``stop`` stops accepting calls, cancels running scans (they stay SCANNING, to be resumed by the
    next scanner) and waits for their threads before the returned event is set.
    """

    def __init__(self, server: grpc.Server, manager: ScanManager, channel: grpc.Channel) -> None:
        super().__init__(server, cleanup=channel.close, stopping=manager.shutdown)


def create_server(
    settings: Settings | str,
    metadata_address: str | None = None,
    security: ServiceSecurity | None = None,
    *,
    remote_image_sizes: bool = True,
) -> tuple[ScannerServer, int]:
    """Serves the scanner on ``settings.scanner_listen`` (``host:port``, port 0 for any), writing through
    the metadata service at ``settings.metadata_address``; returns the server and its port.

    Scans left pending or scanning are resumed in the background. ``security`` (default: from
    ``settings``) sets tokens and TLS; scans run with its service token. ``remote_image_sizes=False``
    skips reading image headers from object stores (no width/height there).

    The older form ``create_server(address, metadata_address, security=None)`` still works, with no
    security unless given (which only a loopback address allows).
    """
    if isinstance(settings, str):
        if metadata_address is None:
            raise TypeError("create_server(address, metadata_address): the older form needs the metadata address")
        address, security = settings, security or ServiceSecurity()
    else:
        address, metadata_address = settings.scanner_listen, metadata_address or settings.metadata_address
        security = security if security is not None else ServiceSecurity.from_settings(settings)
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


def build_parser() -> argparse.ArgumentParser:
    """The command line: a flag for each setting the scanner reads (see ``--help``), and its own options."""
    parser = argparse.ArgumentParser(prog="thresher.services.scanner", description="Thresher scanner service")
    add_arguments(parser, "scanner")
    parser.add_argument(
        "--no-remote-image-sizes",
        dest="remote_image_sizes",
        action="store_false",
        help="do not read image headers from S3/GCS/git for width and height (faster first scans)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``python -m thresher.services.scanner``: settings from the environment, flags over them."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = from_arguments(parser, args, "scanner")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for message in settings.deprecations("scanner"):
        log.warning(message)
    server, _ = create_server(settings, remote_image_sizes=args.remote_image_sizes)

    def stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        server.stop(grace=5)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait_for_termination()
