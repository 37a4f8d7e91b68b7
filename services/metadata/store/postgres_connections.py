"""Connections for the PostgreSQL store: a small pool of ADBC connections and retried transactions.

ADBC's PostgreSQL driver moves results and bulk writes as Arrow (binary COPY), never row by row. A
connection serves one caller at a time, so the pool hands each caller its own and ends whatever
transaction it left open: an idle connection must hold no lock, or a later ALTER TABLE would wait
on it forever.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from thresher.core.errors import MissingExtraError, StoreUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Serialization failures and deadlocks: PostgreSQL rolled the transaction back; running it again is safe.
_RETRYABLE = {"40001", "40P01"}
MAX_ATTEMPTS = 5


ACQUIRE_TIMEOUT_SECONDS = 60.0


class PoolClosed(RuntimeError):
    """The store was closed while a caller still wanted a connection."""


class PoolExhausted(RuntimeError):
    """Every connection stayed busy (e.g. held by slow result streams) for the whole wait."""


def _connect(url: str) -> Any:
    # Imported here: the driver is the optional `postgres` extra, and DuckDB-only installs lack it.
    try:
        import adbc_driver_postgresql.dbapi as adbc_postgres
    except ImportError as error:
        raise MissingExtraError(
            "the PostgreSQL store needs the ADBC PostgreSQL driver: pip install 'thresher[postgres]'"
        ) from error
    try:
        connection = adbc_postgres.connect(url, autocommit=False)
    except Exception as error:
        # The driver's error names neither the database nor what to check; the URL's password stays out.
        raise StoreUnavailableError(
            f"cannot connect to the PostgreSQL store at {without_password(url)}: {' '.join(str(error).split())}"
        ) from error
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.execute("SET application_name = 'thresher-metadata'")
    connection.commit()
    return connection


class ConnectionPool:
    """Up to ``size`` connections to ``url``, opened on demand and reused."""

    def __init__(self, url: str, size: int = 16) -> None:
        self._url = url
        self._size = size
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> Any:
        if not self._slots.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS):
            raise PoolExhausted(
                f"all {self._size} PostgreSQL connections stayed busy for "
                f"{ACQUIRE_TIMEOUT_SECONDS:.0f} s; raise the pool size or read results faster"
            )
        with self._lock:
            if self._closed:
                self._slots.release()
                raise PoolClosed("the PostgreSQL store is closed")
            if self._idle:
                return self._idle.pop()
        try:
            return _connect(self._url)
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: Any) -> None:
        """Ends the connection's transaction and keeps it for reuse, or drops it when it is broken."""
        try:
            connection.rollback()
        except Exception:  # noqa: BLE001 - a broken connection is closed instead of reused
            log.warning("dropping a PostgreSQL connection that could not roll back", exc_info=True)
            _close_quietly(connection)
            connection = None
        with self._lock:
            if connection is not None and self._closed:
                _close_quietly(connection)
            elif connection is not None:
                self._idle.append(connection)
        self._slots.release()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        connection = self.acquire()
        try:
            yield connection
        finally:
            self.release(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            _close_quietly(connection)


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001
        pass


def sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None)


def run_transaction(pool: ConnectionPool, work: Callable[[Any], T]) -> T:
    """Runs ``work(cursor)`` in one transaction and commits it.

    A serialization failure or deadlock rolls back and runs ``work`` again, so ``work`` must have no
    effect outside the database that a second run would repeat wrongly.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pool.connection() as connection:
            try:
                with connection.cursor() as cursor:
                    result = work(cursor)
                connection.commit()
                return result
            except Exception as error:
                if sqlstate(error) not in _RETRYABLE or attempt == MAX_ATTEMPTS:
                    raise
                log.info("retrying a transaction after SQLSTATE %s (attempt %d)", sqlstate(error), attempt)
    raise AssertionError("unreachable")


def without_password(url: str) -> str:
    """``url`` with any password (in its user part, its query or a libpq keyword string) replaced by
    ``***``, fit for a log line or an error message."""
    url = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)", r"\1***", url)
    if "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}"))
