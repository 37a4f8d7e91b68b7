"""All three services in this process, on loopback ports, over an embedded DuckDB store.

Used by ``thresher up``, ``thresher demo`` and the tests; each service starts the same way it does
on its own (``create_server``), so what runs here is what runs in a container.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from thresher.core.settings import Settings, env_name

if TYPE_CHECKING:
    from thresher.connection import Connection

log = logging.getLogger(__name__)


@dataclass
class LocalServices:
    """Starts the metadata, scanner and flight services; use as a context manager.

    ``port`` 0 (the default) picks free ports; otherwise metadata, scanner and flight take ``port``,
    ``port + 1`` and ``port + 2``, and the metadata service's data port (query results for the flight
    service) ``port + 5``.
    """

    home: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    metadata_address: str = field(init=False, default="")
    scanner_address: str = field(init=False, default="")
    flight_address: str = field(init=False, default="")
    _running: list[tuple[str, Any]] = field(init=False, default_factory=list)
    _store: Any = field(init=False, default=None)

    def _address(self, offset: int) -> str:
        return f"{self.host}:{self.port + offset if self.port else 0}"

    def start(self) -> LocalServices:
        # Imported here: the client package never needs the services unless it runs them.
        from thresher.services.auth import ServiceSecurity
        from thresher.services.flight.server import create_server as create_flight
        from thresher.services.metadata.data_port import InProcessDataPort
        from thresher.services.metadata.server import create_server as create_metadata
        from thresher.services.metadata.server import open_store
        from thresher.services.scanner.server import create_server as create_scanner

        settings = Settings.from_env()
        self.home = self.home or settings.home
        os.makedirs(self.home, exist_ok=True)
        settings = settings.replace(
            home=self.home,
            metadata_listen=self._address(0),
            metadata_data_listen=self._address(5),
            scanner_listen=self._address(1),
            flight_listen=self._address(2),
        )
        # Loopback only, without tokens or TLS, whatever the environment says for deployed services.
        security = ServiceSecurity()
        try:
            self._store = open_store(settings=settings)
            server, port = create_metadata(settings, self._store, security)
            self._running.append(("metadata", server))
            self.metadata_address = f"{self.host}:{port}"
            data_address = f"{self.host}:{server.data_port}"
            settings = settings.replace(metadata_address=self.metadata_address, metadata_data_address=data_address)
            server, port = create_scanner(settings, security=security)
            self._running.append(("scanner", server))
            self.scanner_address = f"{self.host}:{port}"
            # Results go from the store to the flight service's writer in this process: no data-port hop.
            results = InProcessDataPort(self._store, security.tokens)
            server, port = create_flight(settings, security=security, data_port=results)
            self._running.append(("flight", server))
            self.flight_address = f"{self.host}:{port}"
        except BaseException:
            self.stop()
            raise
        log.info(
            "metadata on %s, scanner on %s, flight on %s, store in %s",
            self.metadata_address,
            self.scanner_address,
            self.flight_address,
            self.home,
        )
        return self

    def stop(self) -> None:
        """Stops the services in reverse order, then closes the store."""
        while self._running:
            name, server = self._running.pop()
            try:
                if hasattr(server, "shutdown"):  # a Flight server
                    server.shutdown()
                else:
                    server.stop(grace=2).wait()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping the %s service failed", name)
        if self._store is not None:
            self._store.close()
            self._store = None

    def connect(self) -> Connection:
        """A client connection to these services."""
        import thresher

        return thresher.connect(
            metadata_address=self.metadata_address,
            scanner_address=self.scanner_address,
            flight_address=self.flight_address,
        )

    def environment(self) -> dict[str, str]:
        """The environment variables that point a client at these services."""
        return {
            env_name("metadata_address"): self.metadata_address,
            env_name("scanner_address"): self.scanner_address,
            env_name("flight_address"): self.flight_address,
            env_name("home"): self.home or "",
        }

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
