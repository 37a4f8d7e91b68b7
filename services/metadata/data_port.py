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

Uploads come the other way, for the same reason: a ``DoPut`` whose command is ``UPSERT_COMMAND_PREFIX``
then a serialized ``UpsertTableHeader`` is written as gRPC's ``UpsertTable`` writes it (its access
rule, the caller as the write's actor), batch by batch as they arrive. As on gRPC, the upload commits
only at its end message: a metadata-only Flight message holding an ``UpsertTableEnd`` whose counts match
what arrived; a stream that stops without it writes nothing. The answer is the ``UpsertTableResponse``,
as the put's metadata.
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
from thresher.services.flight.headers import MIDDLEWARE_KEY as HEADERS_KEY
from thresher.services.flight.headers import ForwardedHeadersFactory, forwarded
from thresher.services.metadata.access import MetadataAuthorizer
from thresher.services.metadata.domain_errors import InvalidArgument, MetadataError
from thresher.services.metadata.servicer import actor_of, check_upload_end, sql_parameters, status_of, write_upload
from thresher.services.metadata.sql import SqlEngine
from thresher.services.metadata.store import Store
from thresher.v1 import metadata_service_pb2 as pb

log = logging.getLogger(__name__)
METHOD = "ExecuteQuery"  # the access rule a data-port read is judged by
SQL_METHOD = "ExecuteSql"  # ... and a SQL statement's
# Starts a SQL ticket. No serialized ExecuteQueryRequest starts so (its first byte is field 1's tag, 0x0a).
SQL_TICKET_PREFIX = b"thresher-sql\x00"
UPLOAD_METHOD = "UpsertTable"  # ... and an upload's
# Starts an upload's DoPut command; then a serialized UpsertTableHeader.
UPSERT_COMMAND_PREFIX = b"thresher-upsert\x00"


class DataPort(fl.FlightServerBase):  # type: ignore[misc]  # pyarrow ships no type information
    """Serves ``DoGet(ExecuteQueryRequest)`` from ``store``, and uploads (``DoPut``); nothing else."""

    def __init__(self, location: str, store: Store, security: ServiceSecurity) -> None:
        options = security.flight_server_options()
        # The caller's user name (``thresher-user``), recorded with its uploads where no token is checked.
        options["middleware"] = {**options.get("middleware", {}), HEADERS_KEY: ForwardedHeadersFactory()}
        super().__init__(location, **options)
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

    def do_put(
        self,
        context: fl.ServerCallContext,
        descriptor: fl.FlightDescriptor,
        reader: fl.MetadataRecordBatchReader,
        writer: fl.FlightMetadataWriter,
    ) -> None:
        command = descriptor.command if descriptor.descriptor_type == fl.DescriptorType.CMD else None
        if command is None or not command.startswith(UPSERT_COMMAND_PREFIX):
            raise invalid_argument("a data-port upload is a DoPut of an upsert command (see data_port.py)")
        try:
            header = pb.UpsertTableHeader.FromString(command[len(UPSERT_COMMAND_PREFIX) :])
        except DecodeError:
            raise invalid_argument("a data-port upload's command holds a serialized UpsertTableHeader") from None
        if header.staging_session:
            raise invalid_argument("staged upload blocks go through UpsertTable, not the data port")
        with _statuses(UPLOAD_METHOD):
            if self._authorizer is not None:
                self._authorizer.check(UPLOAD_METHOD, pb.UpsertTableRequest(header=header), _caller(context))
            actor = actor_of(forwarded(context))
            response = write_upload(self._store, header, reader.schema, _uploaded(reader), actor)
        writer.write(pa.py_buffer(response.SerializeToString()))

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


def _uploaded(reader: fl.MetadataRecordBatchReader) -> Iterator[pa.RecordBatch]:
    """A data-port upload's batches as they arrive; raises at the end unless its end message came."""
    sent = rows = 0
    end = None
    for chunk in reader:
        if end is not None:
            raise InvalidArgument("UpsertTable got a message after its end")
        if chunk.data is not None:
            sent += 1
            rows += chunk.data.num_rows
            yield chunk.data
        elif chunk.app_metadata is not None:
            try:
                end = pb.UpsertTableEnd.FromString(chunk.app_metadata.to_pybytes())
            except DecodeError:
                raise InvalidArgument("a data-port upload's metadata message is not an UpsertTableEnd") from None
    check_upload_end(end, sent, rows)


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
