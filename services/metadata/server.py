"""Starts the metadata service: `create_server(address, store)`, or `python -m thresher.services.metadata`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

import grpc

from thresher.core.storage.blobs import open_blob_store
from thresher.core.transport import DEFAULT_METADATA_ADDRESS, thresher_home
from thresher.v1 import metadata_service_pb2, metadata_service_pb2_grpc

from thresher.services.auth import ServiceSecurity
from thresher.services.grpc_server import finish_server, new_server
from thresher.services.metadata.access import MetadataAuthorizer
from thresher.services.metadata.data_port import create_data_port
from thresher.services.metadata.servicer import MetadataServicer
from thresher.services.metadata.store import DuckDBStore, PostgresStore, Store

SERVICE_NAME = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name
POSTGRES_URL_ENV = "THRESHER_POSTGRES_URL"
DATA_LISTEN_ENV = "THRESHER_METADATA_DATA_LISTEN"


def open_store(home: str | None = None, postgres_url: str | None = None) -> Store:
    """The PostgreSQL store when ``postgres_url`` (default ``$THRESHER_POSTGRES_URL``) is set, else the
    embedded DuckDB store under ``home`` (default ``$THRESHER_HOME``). Blobs live in ``$THRESHER_BLOB_STORE``
    (a folder, s3:// or gs:// prefix) when set, else under ``home`` either way: replicas share it."""
    home = home or thresher_home()
    postgres_url = postgres_url if postgres_url is not None else os.environ.get(POSTGRES_URL_ENV, "")
    blobs = open_blob_store(home=home)
    if postgres_url:
        return PostgresStore(postgres_url, blobs)
    return DuckDBStore(os.path.join(home, "metadata.duckdb"), blobs)


def create_server(address: str, store: Store, security: ServiceSecurity | None = None) -> tuple[grpc.Server, int]:
    """Serves ``store`` on ``address`` (port 0 picks a free one); returns the server and its port.

    ``security`` (default: none, which only a loopback address allows) sets tokens and TLS.
    """
    security = security or ServiceSecurity()
    security.check_bind(address)
    server = new_server(interceptors=security.server_interceptors(MetadataAuthorizer(store)))
    # The generated gRPC module has no type information.
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(MetadataServicer(store), server)  # type: ignore[no-untyped-call]
    return finish_server(server, address, [SERVICE_NAME], security.server_credentials())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="thresher-metadata", description="Thresher metadata service")
    parser.add_argument("--address", default=os.environ.get("THRESHER_METADATA_LISTEN", DEFAULT_METADATA_ADDRESS))
    parser.add_argument("--home", default=None, help="store folder (default $THRESHER_HOME or ~/.thresher)")
    parser.add_argument("--postgres-url", default=None,
                        help=f"use PostgreSQL at this URL (default ${POSTGRES_URL_ENV}; unset: DuckDB under --home)")
    parser.add_argument("--data-address", default=os.environ.get(DATA_LISTEN_ENV, ""),
                        help=f"also serve query results over Arrow Flight here, for the flight service "
                             f"(default ${DATA_LISTEN_ENV}; unset: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s metadata %(levelname)s %(message)s")
    security = ServiceSecurity.from_env()
    security.check_bind(args.address)  # before opening the store, so a refusal leaves nothing behind
    if args.data_address:
        security.check_bind(args.data_address)
    store = open_store(args.home, args.postgres_url)
    server, _ = create_server(args.address, store, security)
    data_port = create_data_port(args.data_address, store, security)[0] if args.data_address else None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    if data_port is not None:
        data_port.shutdown()
    server.stop(grace=5).wait()
    store.close()


if __name__ == "__main__":
    main()
