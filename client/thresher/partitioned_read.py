"""Reads a query result that the flight service split into partitions: all of them at once, in order.

``GetFlightInfo`` on a query answers one endpoint per partition (a datapoint id range), each naming
the flight nodes that can serve it. The partitions are fetched in parallel, each from its first
location (the service lists a different node first for each), falling back to the next location
and lastly to the connection's own flight service; the tables are concatenated in endpoint order,
which is the order of the unpartitioned result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.flight as flight

from thresher.core import status

MAX_PARALLEL_PARTITIONS = 8


class LocationClients:
    """Flight clients for endpoint locations, opened on first use and closed together."""

    def __init__(self, tls_root_certificates: bytes | None) -> None:
        self._roots = tls_root_certificates
        self._clients: dict[str, flight.FlightClient] = {}
        self._lock = threading.Lock()

    def get(self, uri: str) -> flight.FlightClient:
        with self._lock:
            client = self._clients.get(uri)
            if client is None:
                client = self._clients[uri] = flight.FlightClient(uri, tls_root_certs=self._roots)
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()


def read_endpoints(
    info: flight.FlightInfo,
    own: Callable[[], flight.FlightClient],
    clients: LocationClients,
    options: flight.FlightCallOptions,
) -> pa.Table:
    """Every endpoint of ``info`` read and concatenated in order; one endpoint is read from ``own()``."""
    endpoints = list(info.endpoints)
    if len(endpoints) == 1:
        return own().do_get(endpoints[0].ticket, options=options).read_all()

    def read(endpoint: flight.FlightEndpoint) -> pa.Table:
        failures = []
        for location in endpoint.locations:
            uri = location.uri.decode()
            try:
                return clients.get(uri).do_get(endpoint.ticket, options=options).read_all()
            except flight.FlightUnavailableError as error:  # that node is gone: any other serves the same ticket
                failures.append(f"{uri}: {status.flight_message(error)}")
        try:
            return own().do_get(endpoint.ticket, options=options).read_all()
        except flight.FlightUnavailableError:
            if failures:
                raise flight.FlightUnavailableError(
                    "no location of a partition answered: " + "; ".join(failures)
                ) from None
            raise

    if not endpoints:
        return info.schema.empty_table()
    with ThreadPoolExecutor(
        max_workers=min(len(endpoints), MAX_PARALLEL_PARTITIONS), thread_name_prefix="thresher-partition"
    ) as pool:
        tables = list(pool.map(read, endpoints))
    # The first partition's schema metadata (e.g. the scan state) speaks for the result, as one stream's would.
    metadata = tables[0].schema.metadata
    return pa.concat_tables([table.replace_schema_metadata(metadata) for table in tables])
