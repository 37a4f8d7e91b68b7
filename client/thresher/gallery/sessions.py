"""Who is asking: the token in the gallery's cookie, and one client connection per token.

The gallery never uses a token of its own: each request reaches the services with the token its
user signed in with (or none), so the services decide what it may read, exactly as for any client.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time
from dataclasses import dataclass, field

from thresher.connection import Connection

COOKIE = "thresher_token"
MAX_CONNECTIONS = 64
# How long a "this token may read that datasource" answer from the service is reused for thumbnails.
GRANT_SECONDS = 5.0
MAX_GRANTS = 10_000


@dataclass(frozen=True)
class ServiceAddresses:
    """Where the services are, and how to reach them (TLS roots as PEM bytes, or None)."""

    metadata: str | None = None
    flight: str | None = None
    scanner: str | None = None
    tls: bool = False
    root_certificates: bytes | None = None


@dataclass
class Connections:
    """Client connections keyed by token digest (the anonymous one under ""), least recently used dropped."""

    addresses: ServiceAddresses
    _open: collections.OrderedDict[str, Connection] = field(default_factory=collections.OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_token(self, token: str | None) -> Connection:
        key = hashlib.sha256(token.encode()).hexdigest() if token else ""
        with self._lock:
            connection = self._open.get(key)
            if connection is None:
                a = self.addresses
                # token="" and never None: a gallery started with $THRESHER_TOKEN must not lend it to users.
                connection = Connection(
                    a.metadata, a.flight, a.scanner, token=token or "", tls=a.tls, root_certificates=a.root_certificates
                )
                self._open[key] = connection
                while len(self._open) > MAX_CONNECTIONS:
                    self._open.popitem(last=False)[1].close()
            self._open.move_to_end(key)
            return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._open.values():
                connection.close()
            self._open.clear()


class ReadGrants:
    """Recent "may read" answers per (token digest, datasource id), each reused for GRANT_SECONDS.

    A grid of 100 thumbnails then costs one authorization round trip instead of 100. Only positive
    answers are kept, and only briefly; a refusal always comes from the service itself.
    """

    def __init__(self, seconds: float = GRANT_SECONDS) -> None:
        self._seconds = seconds
        self._until: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str | None, datasource_id: int) -> tuple[str, int]:
        return (hashlib.sha256(token.encode()).hexdigest() if token else "", datasource_id)

    def may_read(self, token: str | None, datasource_id: int) -> bool:
        with self._lock:
            return self._until.get(self._key(token, datasource_id), 0.0) > time.monotonic()

    def remember(self, token: str | None, datasource_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._until) >= MAX_GRANTS:
                self._until = {k: t for k, t in self._until.items() if t > now}
            self._until[self._key(token, datasource_id)] = now + self._seconds
