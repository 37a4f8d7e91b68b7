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
import functools
import logging
from collections.abc import Callable, Iterable, Iterator

import grpc
import pyarrow as pa
import pyarrow.flight as fl
from google.protobuf.message import DecodeError

from thresher.core.transport import MAX_MESSAGE_BYTES
from thresher.services.auth import PermissionDenied, ServiceSecurity
from thresher.services.auth.flight_auth import MIDDLEWARE_KEY
from thresher.services.auth.forwarded_headers import MIDDLEWARE_KEY as HEADERS_KEY
from thresher.services.auth.forwarded_headers import ForwardedHeadersFactory, Metadata, forwarded
from thresher.services.auth.tokens import Identity, TokenTable, bearer_token
from thresher.services.flight.flight_errors import invalid_argument, status_error
from thresher.services.metadata.access import MetadataAuthorizer
from thresher.services.metadata.domain_errors import InvalidArgument, MetadataError
from thresher.services.metadata.servicer import actor_of, check_upload_end, sql_parameters, status_of, write_upload
from thresher.services.metadata.sql import SqlEngine
from thresher.services.metadata.store import Store
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb

log = logging.getLogger(__name__)
METHOD = "ExecuteQuery"  # the access rule a data-port read is judged by
SQL_METHOD = "ExecuteSql"  # ... and a SQL statement's
DESCRIBE_METHOD = "DescribeQuery"  # ... and an estimate's
# Starts a SQL ticket. No serialized ExecuteQueryRequest starts so (its first byte is field 1's tag, 0x0a).
SQL_TICKET_PREFIX = b"thresher-sql\x00"
UPLOAD_METHOD = "UpsertTable"  # ... and an upload's
# Starts an upload's DoPut command; then a serialized UpsertTableHeader.
UPSERT_COMMAND_PREFIX = b"thresher-upsert\x00"


class ResultReader:
    """Opens query and SQL results of ``store`` as Flight streams, and writes uploads into it, for a
    caller already authenticated; ``tokens``: the deployment's tokens (none: every caller may read and
    write everything, as on gRPC)."""

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

    def describe(
        self, query: common_pb2.Query, caller: Callable[[], Identity], estimate: bool = False
    ) -> tuple[pa.Schema, int, int, int]:
        """``query``'s schema, row count and smallest and largest datapoint id (0, 0 when unknown or
        empty), judged by ``DescribeQuery``'s access rule, as gRPC's DescribeQuery answers; with
        ``estimate``, the store's cheap estimate of the count and of bounds that hold the result's ids."""
        with _statuses(DESCRIBE_METHOD):
            if self._authorizer is not None:
                request = pb.DescribeQueryRequest(query=query, estimate=estimate)
                self._authorizer.check(DESCRIBE_METHOD, request, caller())
            describe = self._store.estimate_with_ids if estimate else self._store.describe_with_ids
            schema, total_rows, ids = describe(query)
        low, high = ids or (0, 0)
        return schema, total_rows, low, high

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

    def upload(
        self,
        header: pb.UpsertTableHeader,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        caller: Callable[[], Identity],
        actor: str,
    ) -> pb.UpsertTableResponse:
        """Writes an upload as gRPC's ``UpsertTable`` does (its access rule for ``caller()``, ``actor`` as
        its author), committed when ``batches`` ends normally; staged blocks are refused (gRPC keeps them)."""
        if header.staging_session:
            raise invalid_argument("staged upload blocks go through UpsertTable, not the data port")
        with _statuses(UPLOAD_METHOD):
            if self._authorizer is not None:
                self._authorizer.check(UPLOAD_METHOD, pb.UpsertTableRequest(header=header), caller())
            return write_upload(self._store, header, schema, _within_message_limit(batches), actor)


class DataPort(fl.FlightServerBase):  # type: ignore[misc]  # pyarrow ships no type information
    """Serves ``DoGet(ExecuteQueryRequest)`` from ``store``, and uploads (``DoPut``); nothing else."""

    def __init__(self, location: str, store: Store, security: ServiceSecurity) -> None:
        options = security.flight_server_options()
        # The caller's user name (``thresher-user``), recorded with its uploads where no token is checked.
        options["middleware"] = {**options.get("middleware", {}), HEADERS_KEY: ForwardedHeadersFactory()}
        super().__init__(location, **options)
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
        caller = functools.partial(_caller, context)
        actor = actor_of(forwarded(context))
        response = self._results.upload(header, reader.schema, _uploaded(reader), caller, actor)
        writer.write(pa.py_buffer(response.SerializeToString()))


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

    def describe(
        self, query: common_pb2.Query, metadata: Metadata = (), estimate: bool = False
    ) -> tuple[pa.Schema, int, int, int]:
        """``query``'s description straight from the store, as the metadata service's DescribeQuery gives it."""
        return self._results.describe(query, functools.partial(self._caller, metadata), estimate)

    def execute_sql(self, request: pb.ExecuteSqlRequest, metadata: Metadata = ()) -> fl.FlightDataStream:
        """A SQL statement's result as a stream to hand on, as ``execute``."""
        return self._results.sql(request, functools.partial(self._caller, metadata))

    def upsert(
        self,
        header: pb.UpsertTableHeader,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        metadata: Metadata = (),
    ) -> pb.UpsertTableResponse:
        """Writes the batches of a DoPut into the store as they arrive, on this thread, committed when
        they end normally: the flight service hands on only a stream its client ended normally (as it
        sends the end message over the network), and a failing one raises, which writes nothing."""
        caller = functools.partial(self._caller, metadata)
        # With tokens, the write's author is the forwarded token's subject, as the data port records it.
        actor = caller().subject if self._tokens else actor_of(metadata)
        return self._results.upload(header, schema, iter(batches), caller, actor)

    def close(self) -> None:
        """Nothing to close: the store belongs to the metadata service."""

    def _caller(self, metadata: Metadata) -> Identity:
        header = next((value for name, value in metadata if name.lower() == "authorization"), None)
        identity = self._tokens.authenticate(bearer_token(header))
        if identity is None:
            # The flight service authenticated the call already; a token it forwards always resolves.
            raise status_error(grpc.StatusCode.UNAUTHENTICATED, "the data port serves authenticated callers only")
        return identity


def _within_message_limit(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``batches``, refused whole at a row larger than one gRPC message: an upload is held to the
    limit gRPC's ``UpsertTable`` holds it to (a row that no read path could answer in one message
    either), whichever way it reaches the store. Only a batch over the limit is looked into."""
    for batch in batches:
        size = _largest_row_over_limit(batch)
        if size is not None:
            raise status_error(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"a row of {size / 2**20:,.1f} MiB is larger than the {MAX_MESSAGE_BYTES / 2**20:,.0f} MiB "
                "one message may hold; nothing was written",
            )
        yield batch


def _largest_row_over_limit(batch: pa.RecordBatch) -> int | None:
    """The size of a row of ``batch`` over ``MAX_MESSAGE_BYTES``, None when none is: halves of a batch
    over the limit are looked into until a single row is."""
    if batch.nbytes <= MAX_MESSAGE_BYTES:
        return None
    if batch.num_rows <= 1:
        return int(batch.nbytes)
    half = batch.num_rows // 2
    return _largest_row_over_limit(batch.slice(0, half)) or _largest_row_over_limit(batch.slice(half))


@contextlib.contextmanager
def _statuses(method: str = METHOD) -> Iterator[None]:
    """Failures as Flight errors led by their status, as the flight service's own (a traceback never leaks)."""
    try:
        yield
    except PermissionDenied as error:
        raise status_error(grpc.StatusCode.PERMISSION_DENIED, str(error)) from None
    except MetadataError as error:
        raise status_error(status_of(error), str(error)) from None
    except fl.FlightError:
        raise  # already a status: an in-process upload's stream that its client aborted
    except Exception as error:  # noqa: BLE001 - the caller gets a status, the log gets the traceback
        log.exception("data port %s failed", method)
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
