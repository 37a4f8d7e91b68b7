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
import functools
import logging
from collections.abc import Callable, Iterator

import grpc
import pyarrow as pa
import pyarrow.flight as fl
from google.protobuf.message import DecodeError

from thresher.services.auth import PermissionDenied, ServiceSecurity
from thresher.services.auth.flight_auth import MIDDLEWARE_KEY
from thresher.services.auth.tokens import Identity, TokenTable, bearer_token
from thresher.services.flight.flight_errors import invalid_argument, status_error
from thresher.services.metadata.access import MetadataAuthorizer
from thresher.services.metadata.domain_errors import MetadataError
from thresher.services.metadata.servicer import sql_parameters, status_of
from thresher.services.metadata.sql import SqlEngine
from thresher.services.metadata.store import Store
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb

log = logging.getLogger(__name__)
METHOD = "ExecuteQuery"  # the access rule a data-port read is judged by
SQL_METHOD = "ExecuteSql"  # ... and a SQL statement's
# Starts a SQL ticket. No serialized ExecuteQueryRequest starts so (its first byte is field 1's tag, 0x0a).
SQL_TICKET_PREFIX = b"thresher-sql\x00"
# gRPC metadata the flight service forwards for its caller (its ``headers.Metadata``).
Metadata = tuple[tuple[str, str], ...]


class ResultReader:
    """Opens query and SQL results of ``store`` as Flight streams, for a caller already authenticated;
    ``tokens``: the deployment's tokens (none: every caller may read everything, as on gRPC)."""

    def __init__(self, store: Store, tokens: TokenTable) -> None:
        self._authorizer = MetadataAuthorizer(store) if tokens else None
        self._store = store
        self._sql = SqlEngine(store)

    def query(self, request: pb.ExecuteQueryRequest, caller: Callable[[], Identity]) -> fl.FlightDataStream:
        """``request``'s result, judged by ``ExecuteQuery``'s access rule for ``caller()``."""
        if request.max_batch_rows < 0:
            raise invalid_argument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        with _statuses():
            if self._authorizer is not None:
                self._authorizer.check(METHOD, request, caller())
            schema, batches = self._store.query(request.query, request.max_batch_rows)
        return fl.GeneratorStream(schema, _mapped(batches))

    def sql(self, request: pb.ExecuteSqlRequest, caller: Callable[[], Identity]) -> fl.FlightDataStream:
        """A SQL statement's result, as gRPC's ``ExecuteSql`` answers it (its access rule, the caller's
        readable namespaces)."""
        if request.max_batch_rows < 0:
            raise invalid_argument(f"max_batch_rows must not be negative, got {request.max_batch_rows}")
        with _statuses(SQL_METHOD):
            visible: Callable[[str], bool] = lambda _namespace: True  # noqa: E731 - no tokens: every namespace
            if self._authorizer is not None:
                identity = caller()
                self._authorizer.check(SQL_METHOD, request, identity)
                visible = identity.may
            parameters = sql_parameters(request.parameters) or []
            schema, batches = self._sql.execute(request.sql, parameters, visible, request.max_batch_rows)
        return fl.GeneratorStream(schema, _mapped(batches, SQL_METHOD))


class DataPort(fl.FlightServerBase):  # type: ignore[misc]  # pyarrow ships no type information
    """Serves ``DoGet(ExecuteQueryRequest)`` from ``store``; nothing else."""

    def __init__(self, location: str, store: Store, security: ServiceSecurity) -> None:
        super().__init__(location, **security.flight_server_options())
        self._results = ResultReader(store, security.tokens)

    def do_get(self, context: fl.ServerCallContext, ticket: fl.Ticket) -> fl.FlightDataStream:
        caller = functools.partial(_caller, context)
        if ticket.ticket.startswith(SQL_TICKET_PREFIX):
            try:
                sql = pb.ExecuteSqlRequest.FromString(ticket.ticket[len(SQL_TICKET_PREFIX) :])
            except DecodeError:
                raise invalid_argument("a data-port SQL ticket holds a serialized ExecuteSqlRequest") from None
            return self._results.sql(sql, caller)
        try:
            request: pb.ExecuteQueryRequest = pb.ExecuteQueryRequest.FromString(ticket.ticket)
        except DecodeError:
            raise invalid_argument("a data-port ticket is a serialized ExecuteQueryRequest") from None
        return self._results.query(request, caller)


class InProcessDataPort:
    """The data port's results for a flight service running in the same process (``thresher up``):
    the flight service's Flight writer reads them straight from the store, with no second Flight hop
    (on a small machine that hop's encode, send and decode cost as much as serving the result). The
    caller is authenticated from the forwarded ``authorization`` header, as the data port's middleware
    does, and every access rule is the data port's."""

    address = "in-process"  # named in the flight service's errors, as a data port's address is

    def __init__(self, store: Store, tokens: TokenTable) -> None:
        self._tokens = tokens
        self._results = ResultReader(store, tokens)

    def execute(self, query: common_pb2.Query, metadata: Metadata = ()) -> fl.FlightDataStream:
        """The result as a stream to hand on; a bad query fails here, as the data port's client does."""
        caller = functools.partial(self._caller, metadata)
        return self._results.query(pb.ExecuteQueryRequest(query=query), caller)

    def execute_sql(self, request: pb.ExecuteSqlRequest, metadata: Metadata = ()) -> fl.FlightDataStream:
        """A SQL statement's result as a stream to hand on, as ``execute``."""
        return self._results.sql(request, functools.partial(self._caller, metadata))

    def close(self) -> None:
        """Nothing to close: the store belongs to the metadata service."""

    def _caller(self, metadata: Metadata) -> Identity:
        header = next((value for name, value in metadata if name.lower() == "authorization"), None)
        identity = self._tokens.authenticate(bearer_token(header))
        if identity is None:
            # The flight service authenticated the call already; a token it forwards always resolves.
            raise status_error(grpc.StatusCode.UNAUTHENTICATED, "the data port serves authenticated callers only")
        return identity


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
