"""Starts the metadata service: `create_server(address, store)`, or `python -m thresher.services.metadata`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

import grpc

from thresher.transport import DEFAULT_METADATA_ADDRESS, thresher_home
from thresher.v1 import metadata_service_pb2, metadata_service_pb2_grpc

from ..grpc_server import finish_server, new_server
from .blobs import BlobStore
from .servicer import MetadataServicer
from .store import DuckDBStore, Store

SERVICE_NAME = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name


def open_store(home: str | None = None) -> Store:
    """The embedded DuckDB store under ``home`` (default ``$THRESHER_HOME``)."""
    home = home or thresher_home()
    return DuckDBStore(os.path.join(home, "metadata.duckdb"), BlobStore(os.path.join(home, "blobs")))


def create_server(address: str, store: Store) -> tuple[grpc.Server, int]:
    """Serves ``store`` on ``address`` (port 0 picks a free one); returns the server and its port."""
    server = new_server()
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(MetadataServicer(store), server)
    return finish_server(server, address, [SERVICE_NAME])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="thresher-metadata", description="Thresher metadata service")
    parser.add_argument("--address", default=os.environ.get("THRESHER_METADATA_LISTEN", DEFAULT_METADATA_ADDRESS))
    parser.add_argument("--home", default=None, help="store folder (default $THRESHER_HOME or ~/.thresher)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s metadata %(levelname)s %(message)s")
    store = open_store(args.home)
    server, _ = create_server(args.address, store)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()
    store.close()


if __name__ == "__main__":
    main()
