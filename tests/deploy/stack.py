"""The three services in this process on loopback ports, over a given store and security settings.

Like ``thresher.local_services.LocalServices``, but with any store (PostgreSQL included), several metadata
and flight replicas, tokens and TLS, for the deployment tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import thresher
from thresher.services.auth import ServiceSecurity
from thresher.services.metadata.store import Store

log = logging.getLogger(__name__)


@dataclass
class ServiceStack:
    """``stores`` each get a metadata replica; ``flights`` flight replicas call them in turn."""

    stores: list[Store]
    security: ServiceSecurity = field(default_factory=ServiceSecurity)
    flights: int = 1
    scanner: bool = True
    # The home whose blob folder the flight replicas serve: the stores' (see ``open_store``), so that a blob
    # written through a metadata replica is read through any flight replica.
    home: str | None = None
    metadata_addresses: list[str] = field(init=False, default_factory=list)
    data_addresses: list[str] = field(init=False, default_factory=list)  # each replica's data port
    flight_addresses: list[str] = field(init=False, default_factory=list)
    flight_servers: list[Any] = field(init=False, default_factory=list)
    scanner_address: str = field(init=False, default="")
    _running: list[Any] = field(init=False, default_factory=list)

    def start(self) -> ServiceStack:
        from thresher.services.flight.server import create_server as create_flight
        from thresher.services.metadata.data_port import create_data_port
        from thresher.services.metadata.server import create_server as create_metadata
        from thresher.services.scanner.server import create_server as create_scanner

        try:
            for store in self.stores:
                server, port = create_metadata("127.0.0.1:0", store, self.security)
                self._running.append(server)
                self.metadata_addresses.append(f"127.0.0.1:{port}")
                server, port = create_data_port("127.0.0.1:0", store, self.security)
                self._running.append(server)
                self.data_addresses.append(f"127.0.0.1:{port}")
            if self.scanner:
                server, port = create_scanner("127.0.0.1:0", self.metadata_addresses[0], self.security)
                self._running.append(server)
                self.scanner_address = f"127.0.0.1:{port}"
            for i in range(self.flights):
                metadata = self.metadata_addresses[i % len(self.metadata_addresses)]
                data = self.data_addresses[i % len(self.data_addresses)]
                server, port = create_flight(
                    "127.0.0.1:0",
                    metadata,
                    advertise_host="127.0.0.1",
                    security=self.security,
                    metadata_data_address=data,
                    home=self.home,
                )
                self._running.append(server)
                self.flight_servers.append(server)
                self.flight_addresses.append(f"127.0.0.1:{port}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        while self._running:
            server = self._running.pop()
            try:
                if hasattr(server, "shutdown"):
                    server.shutdown()
                else:
                    server.stop(grace=None).wait()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping a service failed")

    @property
    def metadata_address(self) -> str:
        return self.metadata_addresses[0]

    @property
    def flight_address(self) -> str:
        return self.flight_addresses[0]

    def connect(self, replica: int = 0, **options: Any) -> thresher.Connection:
        """A connection to metadata and flight replica ``replica`` (options: token, tls, root_certificates)."""
        return thresher.Connection(
            self.metadata_addresses[replica % len(self.metadata_addresses)],
            self.flight_addresses[replica % len(self.flight_addresses)],
            self.scanner_address or None,
            **options,
        )

    def __enter__(self) -> ServiceStack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
