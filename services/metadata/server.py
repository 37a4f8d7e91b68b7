"""Starts the metadata service: ``create_server(settings)``, or ``python -m thresher.services.metadata``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable

import grpc

from thresher.core.settings import Settings, add_arguments, env_name, from_arguments
from thresher.core.storage.blobs import open_blob_store
from thresher.services.auth import ServiceSecurity
from thresher.services.grpc_server import ServiceServer, finish_server, new_server
from thresher.services.metadata.access import MetadataAuthorizer
from thresher.services.metadata.data_port import DataPort, create_data_port
from thresher.services.metadata.servicer import MetadataServicer
from thresher.services.metadata.store import DuckDBStore, PostgresStore, Store
from thresher.v1 import metadata_service_pb2, metadata_service_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name
POSTGRES_URL_ENV = env_name("postgres_url")
DATA_LISTEN_ENV = env_name("metadata_data_listen")


def open_store(home: str | None = None, postgres_url: str | None = None, *, settings: Settings | None = None) -> Store:
    """The PostgreSQL store when ``postgres_url`` (default: the settings' ``$THRESHER_POSTGRES_URL``) is set,
    else the embedded DuckDB store under ``home`` (default ``$THRESHER_HOME``). Blobs live in
    ``$THRESHER_BLOB_STORE`` (a folder, s3:// or gs:// prefix) when set, else under ``home`` either way:
    replicas share it. ``settings`` default to the environment's."""
    settings = settings if settings is not None else Settings.from_env()
    home = home or settings.home
    postgres_url = postgres_url if postgres_url is not None else settings.postgres_url
    blobs = open_blob_store(settings.blob_store or None, home=home)
    if postgres_url:
        return PostgresStore(postgres_url, blobs)
    return DuckDBStore(os.path.join(home, "metadata.duckdb"), blobs)


class MetadataServer(ServiceServer):
    """The metadata service's gRPC server and what it owns: the data port (its port is ``data_port``,
    None without one) and a store ``create_server`` opened; ``stop`` stops and closes them too."""

    def __init__(self, server: grpc.Server, cleanup: Callable[[], None], data_port: int | None) -> None:
        super().__init__(server, cleanup)
        self.data_port = data_port


def create_server(
    settings: Settings | str, store: Store | None = None, security: ServiceSecurity | None = None
) -> tuple[grpc.Server, int]:
    """Serves the metadata service as ``settings`` say; returns the server and its port (port 0 in
    ``metadata_listen`` picks a free one).

    ``store`` (default: ``open_store(settings=settings)``, closed when the server stops) and
    ``security`` (default: from ``settings``) may be given. With ``metadata_data_listen`` set, the
    data port serves query results over Flight too; its port is the returned server's ``data_port``.

    The older form ``create_server(address, store, security=None)`` still works: ``store`` served on
    ``address``, with no security unless given (only a loopback address allows that), no data port,
    and a plain gRPC server returned.
    """
    if isinstance(settings, str):
        security = security or ServiceSecurity()
        security.check_bind(settings)  # refused first, as it always was
        if store is None:
            raise TypeError("create_server(address, store): the older form needs a store")
        return _serve(settings, store, security)
    security = security if security is not None else ServiceSecurity.from_settings(settings)
    # Both binds are checked before the store opens, so a refusal leaves nothing behind.
    security.check_bind(settings.metadata_listen)
    if settings.metadata_data_listen:
        security.check_bind(settings.metadata_data_listen)
    owned = store is None
    store = open_store(settings=settings) if store is None else store
    data_port: DataPort | None = None
    try:
        server, port = _serve(settings.metadata_listen, store, security)
        try:
            if settings.metadata_data_listen:
                data_port = create_data_port(settings.metadata_data_listen, store, security)[0]
        except BaseException:
            server.stop(None)
            raise
    except BaseException:
        if owned:
            store.close()
        raise

    def cleanup() -> None:
        if data_port is not None:
            data_port.shutdown()
        if owned:
            store.close()

    return MetadataServer(server, cleanup, data_port.port if data_port is not None else None), port


def _serve(address: str, store: Store, security: ServiceSecurity) -> tuple[grpc.Server, int]:
    """The metadata servicer over ``store``, bound to ``address`` and started."""
    security.check_bind(address)
    server = new_server(interceptors=security.server_interceptors(MetadataAuthorizer(store)))
    # The generated gRPC module has no type information.
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(MetadataServicer(store), server)  # type: ignore[no-untyped-call]
    return finish_server(server, address, [SERVICE_NAME], security.server_credentials())


def build_parser() -> argparse.ArgumentParser:
    """The command line: a flag for each setting the metadata service reads (see ``--help``)."""
    parser = argparse.ArgumentParser(prog="thresher-metadata", description="Thresher metadata service")
    add_arguments(parser, "metadata")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``python -m thresher.services.metadata``: settings from the environment, flags over them."""
    parser = build_parser()
    settings = from_arguments(parser, parser.parse_args(argv), "metadata")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s metadata %(levelname)s %(message)s")
    for message in settings.deprecations("metadata"):
        log.warning(message)
    server, _ = create_server(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()


if __name__ == "__main__":
    main()
