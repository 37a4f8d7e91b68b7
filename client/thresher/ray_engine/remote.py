"""What a Ray worker needs to reach the services as the driver does: a picklable connection description."""

from __future__ import annotations

import dataclasses
from typing import Any

from thresher.v1 import common_pb2


@dataclasses.dataclass(frozen=True)
class ConnectionSpec:
    """The addresses, token and TLS roots of a ``Connection``, so another process can open its own."""

    metadata_address: str
    flight_address: str
    scanner_address: str
    token: str | None
    tls: bool
    root_certificates: bytes | None

    @classmethod
    def of(cls, connection: Any) -> ConnectionSpec:
        return cls(
            connection.metadata_address,
            connection.flight_address,
            connection.scanner_address,
            connection._token,
            connection.tls,
            connection._root_certificates,
        )  # noqa: SLF001

    def connect(self) -> Any:
        from thresher.connection import Connection

        return Connection(
            self.metadata_address,
            self.flight_address,
            self.scanner_address,
            token=self.token,
            tls=self.tls,
            root_certificates=self.root_certificates,
        )


@dataclasses.dataclass(frozen=True)
class DatasourceRef:
    """A datasource (not a view) that a worker can open again: its connection and its description."""

    connection: ConnectionSpec
    proto: bytes

    @classmethod
    def of(cls, datasource: Any) -> DatasourceRef:
        return cls(ConnectionSpec.of(datasource.connection), datasource._shared.proto.SerializeToString())  # noqa: SLF001

    def open(self) -> Any:
        from thresher.datasource import Datasource

        return Datasource(self.connection.connect(), common_pb2.Datasource.FromString(self.proto))
