"""The metadata service's data port: query results as an Arrow Flight stream, for the flight service.

The gRPC ``ExecuteQuery`` stream carries each record batch as protobuf bytes, which the flight service's
Python gRPC client must receive, copy and decode before Flight encodes it again; for large results
that hop costs more than everything else together. Over this port the flight service instead opens a
Flight stream of the same result and hands it to its own Flight writer, so the bytes go from one Arrow
C++ stack to the other. It is an internal port: a ticket is a serialized ``ExecuteQueryRequest``; the
caller's token is checked, and the ``ExecuteQuery`` access rule applied, exactly as on gRPC.

A Flight SQL statement's result comes the same way: a ticket of ``SQL_TICKET_PREFIX`` then a serialized
``ExecuteSqlRequest`` is answered as gRPC's ``ExecuteSql`` answers it (its access rule, the caller's
readable namespaces), so SQL results skip the protobuf hop too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import grpc
import pyarrow as pa
import pyarrow.flight as fl
from google.protobuf.message import DecodeError

from thresher.services.auth import PermissionDenied, ServiceSecurity
from thresher.services.auth.flight_auth import MIDDLEWARE_KEY
from thresher.services.auth.tokens import Identity
from thresher.services.flight.flight_errors import invalid_argument, status_error
from thresher.services.metadata.access import MetadataAuthorizer
from thresher.services.metadata.domain_errors import MetadataError
from thresher.services.metadata.servicer import sql_parameters, status_of
from thresher.services.metadata.sql import SqlEngine
from thresher.services.metadata.store import Store
from thresher.v1 import metadata_service_pb2 as pb

log = logging.getLogger(__name__)
METHOD = "ExecuteQuery"  # the access rule a data-port read is judged by
SQL_METHOD = "ExecuteSql"  # ... and a SQL statement's
# Starts a SQL ticket. No serialized ExecuteQueryRequest starts so (its first byte is field 1's tag, 0x0a).
SQL_TICKET_PREFIX = b"thresher-sql\x00"


class DataPort(fl.FlightServerBase):  # type: ignore[misc]  # pyarrow ships no type information
    """Serves ``DoGet(ExecuteQueryRequest)`` from ``store``; nothing else."""

    def __init__(self, location: str, store: Store, security: ServiceSecurity) -> None:
        super().__init__(location, **security.flight_server_options())
        self._store = store
        self._authorizer = MetadataAuthorizer(store) if security.tokens else None
        self._sql = SqlEngine(store)

    def do_get(self, context: fl.ServerCallContext, ticket: fl.Ticket) -> fl.FlightDataStream:
        if ticket.ticket.startswith(SQL_TICKET_PREFIX):
            return self._execute_sql(context, ticket.ticket[len(SQL_TICKET_PREFIX) :])
        try:
            request: pb.ExecuteQueryRequest = pb.ExecuteQueryRequest.FromString(ticket.ticket)
        except DecodeError:
            raise invalid_argument("a data-port ticket is a serialized ExecuteQueryRequest") from None
        if request.max_batch_rows < 0:
            raise invalid_argument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        with _statuses():
            if self._authorizer is not None:
                self._authorizer.check(METHOD, request, _caller(context))
            schema, batches = self._store.query(request.query, request.max_batch_rows)
        return fl.GeneratorStream(schema, _mapped(batches))

    def _execute_sql(self, context: fl.ServerCallContext, raw: bytes) -> fl.FlightDataStream:
        try:
            request = pb.ExecuteSqlRequest.FromString(raw)
        except DecodeError:
            raise invalid_argument("a data-port SQL ticket holds a serialized ExecuteSqlRequest") from None
        if request.max_batch_rows < 0:
            raise invalid_argument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        with _statuses(SQL_METHOD):
            visible: Callable[[str], bool] = lambda _namespace: True  # noqa: E731 - no tokens: every namespace
            if self._authorizer is not None:
                identity = _caller(context)
                self._authorizer.check(SQL_METHOD, request, identity)
                visible = identity.may
            parameters = sql_parameters(request.parameters) or []
            schema, batches = self._sql.execute(request.sql, parameters, visible, request.max_batch_rows)
        return fl.GeneratorStream(schema, _mapped(batches, SQL_METHOD))


@contextlib.contextmanager
def _statuses(method: str = METHOD) -> Iterator[None]:
    """Failures as Flight errors led by their status, as the flight service's own (a traceback never leaks)."""
    try:
        yield
    except PermissionDenied as error:
        raise status_error(grpc.StatusCode.PERMISSION_DENIED, str(error)) from None
    except MetadataError as error:
        raise status_error(status_of(error), str(error)) from None
    except Exception as error:  # noqa: BLE001 - the caller gets a status, the log gets the traceback
        log.exception("data port query failed")
        raise status_error(grpc.StatusCode.INTERNAL, f"{method} failed: {type(error).__name__}: {error}") from None


def _mapped(batches: Iterator[pa.RecordBatch], method: str = METHOD) -> Iterator[pa.RecordBatch]:
    """Passes batches on; a failure while reading them ends the stream with a status."""
    with _statuses(method):
        yield from batches


def _caller(context: fl.ServerCallContext) -> Identity:
    """Who the call is for, as the bearer-token middleware authenticated it (it refuses calls without)."""
    middleware = context.get_middleware(MIDDLEWARE_KEY)
    if middleware is None or middleware.identity is None:
        raise PermissionDenied("the data port serves authenticated callers only")
    identity: Identity = middleware.identity
    return identity


def create_data_port(address: str, store: Store, security: ServiceSecurity | None = None) -> tuple[DataPort, int]:
    """Serves ``store``'s query results over Flight on ``address`` (``host:port``, port 0 for any)."""
    security = security or ServiceSecurity()
    security.check_bind(address)
    host, _, port = address.rpartition(":")
    server = DataPort(f"{security.flight_scheme}://{host}:{port}", store, security)
    return server, server.port
