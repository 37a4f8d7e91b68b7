"""The Arrow Flight service's process: ``create_server(settings) -> (server, port)`` and ``main``.

The verbs themselves are in ``servicer.py``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from thresher.core.settings import Settings, add_arguments, env_name, from_arguments
from thresher.core.storage.blobs import open_blob_store
from thresher.services.auth import ServiceSecurity
from thresher.services.flight.data_port_client import DataPortClient, ResultSource
from thresher.services.flight.servicer import ThresherFlightServer

log = logging.getLogger(__name__)

_WILDCARD_HOSTS = ("", "0.0.0.0", "::")
ADVERTISE_HOST_ENV = env_name("flight_advertise_host")
# Other flight nodes that can serve the same bag datasets, listed after this one in bag-shard endpoints.
PEERS_ENV = env_name("flight_peers")
DATA_PORT_ENV = env_name("metadata_data_address")


def create_server(
    settings: Settings | str,
    metadata_address: str | None = None,
    *,
    advertise_host: str | None = None,
    security: ServiceSecurity | None = None,
    home: str | None = None,
    peers: Sequence[str] | None = None,
    metadata_data_address: str | None = None,
    partition_rows: int | None = None,
    data_port: ResultSource | None = None,
) -> tuple[ThresherFlightServer, int]:
    """Serves Flight as ``settings`` say; returns the server and its port. The server serves from
    construction; stop it with ``shutdown()``.

    It listens on ``flight_listen`` (``host:port`` or ``grpc://host:port``; port 0 for any), backed by
    the metadata service at ``metadata_address``, reading query results from its data port at
    ``metadata_data_address`` (none: over gRPC). Endpoints advertise ``flight_advertise_host`` (default:
    the bind host) and list ``flight_peers``, the other flight nodes, as further locations of bag shards
    and partitions. Blobs are served from ``blob_store``, else ``<home>/blobs``: the metadata service's
    blob store. ``flight_partition_rows`` (0: never) is how many result rows make one partition (one
    FlightInfo endpoint) of a large query result. ``security`` defaults to the one ``settings`` describe.
    ``data_port``, when given, is where query results are read instead of ``metadata_data_address``:
    the metadata service's in-process reader when both run in one process (closed on shutdown).

    The older form ``create_server(address, metadata_address, ...)`` still works: the keyword
    arguments replace those settings of the environment, and without ``security`` there is none
    (which only a loopback address allows).
    """
    if isinstance(settings, str):
        if metadata_address is None:
            raise TypeError("create_server(address, metadata_address): the older form needs the metadata address")
        given = {
            "flight_listen": settings,
            "metadata_address": metadata_address,
            "home": home,
            "flight_advertise_host": advertise_host,
            "flight_peers": None if peers is None else tuple(peer.strip() for peer in peers if peer.strip()),
            "metadata_data_address": metadata_data_address,
            "flight_partition_rows": partition_rows,
        }
        settings = Settings.from_env().replace(**{name: value for name, value in given.items() if value is not None})
        security = security or ServiceSecurity()
    elif security is None:
        security = ServiceSecurity.from_settings(settings)
    return _create(settings, security, data_port)


def _create(
    settings: Settings, security: ServiceSecurity, data_port: ResultSource | None
) -> tuple[ThresherFlightServer, int]:
    address, metadata_address = settings.flight_listen, settings.metadata_address
    host, port = _host_port(address)
    security.check_bind(address)
    advertise_host = settings.flight_advertise_host or (socket.gethostname() if host in _WILDCARD_HOSTS else host)
    channel = security.channel(metadata_address)
    data_address = settings.metadata_data_address
    try:
        if data_port is None and data_address:
            data_port = DataPortClient(
                data_address,
                "grpc+tls" if security.root_certificates else "grpc",
                security.root_certificates,
                security.verified_name(data_address),
            )
        blobs = open_blob_store(settings.blob_store or None, home=settings.home)
        server = ThresherFlightServer(
            f"{security.flight_scheme}://{_bracketed(host)}:{port}",
            channel,
            advertise_host,
            blobs=blobs,
            peers=settings.flight_peers,
            data_port=data_port,
            metadata_address=metadata_address,
            partition_rows=settings.flight_partition_rows,
            **security.flight_server_options(),
        )
    except BaseException:
        channel.close()
        if data_port is not None:
            data_port.close()
        raise
    log.info("serving Arrow Flight on %s:%d (advertised as %s)", host, server.port, server.location.uri.decode())
    return server, server.port


def _host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"grpc://{address}")
    if parts.scheme not in ("grpc", "grpc+tcp", "grpc+tls"):
        raise ValueError(f"flight address {address!r}: expected host:port or grpc://host:port")
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"flight address {address!r} needs a host and a port")
    return parts.hostname, parts.port


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_parser() -> argparse.ArgumentParser:
    """The command line: a flag for each setting the flight service reads (see ``--help``)."""
    parser = argparse.ArgumentParser(prog="thresher.services.flight", description="Thresher Arrow Flight service")
    add_arguments(parser, "flight")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``python -m thresher.services.flight``: settings from the environment, flags over them."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = from_arguments(parser, args, "flight")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for message in settings.deprecations("flight"):
        log.warning(message)
    server, _ = create_server(settings)
    # serve() would return on SIGINT only; a container is stopped with SIGTERM.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    stop.wait()
    log.info("stopping")
    server.shutdown()
