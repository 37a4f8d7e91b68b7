"""A connection to the three Thresher services, and the default one module-level functions use.

A :class:`Connection` opens its gRPC channels and Flight client lazily, maps every failure to a
Thresher exception (:mod:`thresher.core.status`), and retries idempotent reads briefly while a service
is unavailable (it may be starting). Writes are never retried.

Channels, stubs and Flight clients are the process's (``transport.acquire``): every Connection to
the same address, in every thread, reuses one, and a forked child opens its own. Each Connection
holds a reference to what it uses until it closes; the last one to close closes the channel.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import pyarrow as pa
import pyarrow.flight as flight
from pyarrow.flight import FlightStreamReader  # (inside Connection, `flight` names its property)

from thresher.core import arrow_io, status, transport
from thresher.core.settings import Settings, setting_named
from thresher.partitioned_read import LocationClients, read_endpoints
from thresher.v1 import (
    common_pb2,
    flight_pb2,
    metadata_service_pb2,
    metadata_service_pb2_grpc,
    scanner_service_pb2_grpc,
)

T = TypeVar("T")
# The deadline of each unary gRPC call; streams (query results, uploads, file bytes) have none, since
# their length depends on the data, and fail instead when the connection drops.
CALL_TIMEOUT = 120.0
# Queries known to answer at most this many rows (a lookup, a head, a small limit) are read in one
# unary call to the metadata service; larger ones go through Flight. ``$THRESHER_DIRECT_READ_ROWS``
# or the ``direct_read_rows`` argument sets another bound.
DIRECT_READ_ROWS: int = setting_named("direct_read_rows").default


class Connection:
    """Channels and stubs for the metadata, scanner and flight services.

    Addresses default to ``$THRESHER_METADATA_ADDRESS``, ``$THRESHER_SCANNER_ADDRESS`` and
    ``$THRESHER_FLIGHT_ADDRESS``, then to the local defaults. ``retry_timeout`` bounds how long an
    idempotent read waits for an unavailable service before raising ServiceUnavailableError;
    ``call_timeout`` is the deadline of each unary call (ServiceTimeoutError past it).

    ``token`` (default ``$THRESHER_TOKEN``) goes with every call as a bearer token. TLS is used when
    ``tls`` is true or root certificates are given: ``root_certificates`` is PEM bytes or a file path
    (default ``$THRESHER_TLS_ROOT_CERTS``); with ``tls`` alone the system's roots verify the services.

    ``direct_read_rows`` (default ``$THRESHER_DIRECT_READ_ROWS``, else 10,000): a query whose result is
    known to hold at most this many rows is answered by the metadata service in one call instead of
    through Flight (0 sends every query through Flight).
    """

    def __init__(
        self,
        metadata_address: str | None = None,
        flight_address: str | None = None,
        scanner_address: str | None = None,
        *,
        token: str | None = None,
        retry_timeout: float = 2.0,
        tls: bool = False,
        root_certificates: bytes | str | None = None,
        call_timeout: float = CALL_TIMEOUT,
        direct_read_rows: int | None = None,
    ) -> None:
        if direct_read_rows is None:
            direct_read_rows = Settings.read("direct_read_rows")
        if isinstance(direct_read_rows, bool) or not isinstance(direct_read_rows, int) or direct_read_rows < 0:
            raise ValueError(f"direct_read_rows takes a non-negative int, got {direct_read_rows!r}")
        self.direct_read_rows = direct_read_rows
        self._settings = dict(
            metadata_address=metadata_address,
            flight_address=flight_address,
            scanner_address=scanner_address,
            token=token,
            retry_timeout=retry_timeout,
            tls=tls,
            root_certificates=root_certificates,
            call_timeout=call_timeout,
            direct_read_rows=direct_read_rows,
        )
        self.call_timeout = call_timeout
        # What the arguments leave open comes from the environment's settings, each read on its own.
        self.metadata_address = metadata_address or Settings.read("metadata_address")
        self.flight_address = flight_address or Settings.read("flight_address")
        self.scanner_address = scanner_address or Settings.read("scanner_address")
        self.retry_timeout = retry_timeout
        token = token if token is not None else Settings.read("token") or None
        self._token = token  # kept so workers on other machines can open the same connection (thresher.ray_engine)
        if isinstance(root_certificates, str):
            with open(root_certificates, "rb") as handle:
                root_certificates = handle.read()
        self._root_certificates = (
            root_certificates if root_certificates is not None else transport.tls_root_certificates()
        )
        self.tls = tls or self._root_certificates is not None
        # Without a token, the service records writes under the user name the client reports.
        self._grpc_metadata = (("thresher-user", _local_user()),) + (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        headers = [(b"thresher-user", _local_user().encode())] + (
            [(b"authorization", f"Bearer {token}".encode())] if token else []
        )
        self._flight_options = flight.FlightCallOptions(headers=headers)
        self._direct_read_unsupported = False
        # Datasources whose whole-query reads the flight service split into partitions: read through
        # GetFlightInfo at once, without first trying the one-round-trip DoGet it refuses for them.
        self._partitioned: set[int] = set()
        self._lock = threading.Lock()
        # No finalizer gives these back when the connection is collected unclosed: a stream or reader
        # it handed out may still be read through the shared client after the connection is dropped.
        self._leases = _Leases()
        self._reset_clients()

    def _reset_clients(self) -> None:
        # Channels, stubs and the Flight client are the process's (``transport.acquire``, which a forked
        # child starts without); the clients for partition locations are this connection's.
        self._pid = os.getpid()
        self._location_clients = LocationClients(self._root_certificates if self.tls else None)

    def _check_process(self) -> None:
        # A forked child (a DataLoader worker, say) inherits the parent's clients, which gRPC and Flight
        # cannot use across a fork: it opens its own, leaving the parent's alone.
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._leases.forget()
            self._reset_clients()

    def _lease(self, kind: str, key: tuple[Any, ...], open_new: Callable[[], Any]) -> Any:
        """The process's shared ``kind`` object for ``key``, with this connection holding one
        reference to it until it closes."""
        self._check_process()
        found = self._leases.held.get((kind, key))
        if found is not None:
            return found
        with self._lock:
            found = self._leases.held.get((kind, key))
            if found is None:
                found = self._leases.held[(kind, key)] = transport.acquire(kind, key, open_new)
            return found

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (for worker processes, say) as its settings: the copy dials its own channels."""
        return {"settings": self._settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["settings"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return (
            f"Connection(metadata={self.metadata_address!r}, flight={self.flight_address!r}, "
            f"scanner={self.scanner_address!r})"
        )

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Gives back this connection's references to the process's channels and Flight client: each
        closes when no other open Connection uses it, and stays open while one does. Calling again
        after close() dials afresh. The clients for partition locations are this connection's own
        and are closed."""
        self._check_process()
        with self._lock:
            self._leases.release_all()
        with self._lock:
            clients, self._location_clients = (
                self._location_clients,
                LocationClients(self._root_certificates if self.tls else None),
            )
        clients.close()

    # -- gRPC -------------------------------------------------------------------------------------

    def _channel(self, address: str) -> grpc.Channel:
        roots, tls = self._root_certificates, self.tls
        channel: grpc.Channel = self._lease(
            "channel",
            (address, roots, tls),
            lambda: transport.open_channel(address, root_certificates=roots, tls=tls),
        )
        return channel

    def _stub(self, kind: str, stub_type: Callable[[grpc.Channel], T], address: str) -> T:
        self._check_process()
        stub: T | None = self._leases.stubs.get(kind)
        if stub is None:
            self._channel(address)  # holds the channel the stub is made on
            stub = transport.derived("channel", (address, self._root_certificates, self.tls), kind, stub_type)
            self._leases.stubs[kind] = stub
        return stub

    @property
    def metadata(self) -> metadata_service_pb2_grpc.MetadataServiceStub:
        """The raw metadata service stub (calls through it are not error-mapped; prefer ``call_metadata``)."""
        return self._stub("metadata-stub", metadata_service_pb2_grpc.MetadataServiceStub, self.metadata_address)

    @property
    def scanner(self) -> scanner_service_pb2_grpc.ScannerServiceStub:
        """The raw scanner service stub."""
        return self._stub("scanner-stub", scanner_service_pb2_grpc.ScannerServiceStub, self.scanner_address)

    def call_metadata(self, method: str, request: Any, *, idempotent: bool = False) -> Any:
        """Calls MetadataService.``method`` and maps its failure to a Thresher exception."""
        return self._call(self.metadata_address, getattr(self.metadata, method), request, idempotent)

    def call_scanner(self, method: str, request: Any, *, idempotent: bool = False) -> Any:
        """Calls ScannerService.``method`` and maps its failure to a Thresher exception."""
        return self._call(self.scanner_address, getattr(self.scanner, method), request, idempotent)

    def _call(
        self,
        address: str,
        method: Callable[..., Any],
        request: Any,
        idempotent: bool,
        passed: tuple[grpc.StatusCode, ...] = (),
    ) -> Any:
        deadline = time.monotonic() + self.retry_timeout
        pause = 0.02
        while True:
            try:
                return method(request, metadata=self._grpc_metadata, timeout=self.call_timeout)
            except grpc.RpcError as error:
                if error.code() in passed:
                    raise _Passed(error.code()) from None
                if not (
                    idempotent
                    and error.code() == grpc.StatusCode.UNAVAILABLE
                    and _await_ready(self._channel(address), deadline, pause)
                ):
                    raise status.from_grpc_error(error, address) from None
                pause = min(pause * 2, 0.5)

    def read_metadata_stream(self, method: str, request: Any) -> pa.Table:
        """Reads a MetadataService stream of Arrow IPC messages (schema first) into a table."""

        def read() -> pa.Table:
            responses = iter(getattr(self.metadata, method)(request, metadata=self._grpc_metadata))
            schema = arrow_io.read_schema(next(responses).schema)
            return pa.Table.from_batches([arrow_io.read_batch(r.record_batch, schema) for r in responses], schema)

        try:
            return read()
        except grpc.RpcError as error:
            raise status.from_grpc_error(error, self.metadata_address) from None

    # -- Flight -----------------------------------------------------------------------------------

    @property
    def flight(self) -> flight.FlightClient:
        """The Flight client for the flight service (the process's one for its address)."""

        def open_client() -> flight.FlightClient:
            scheme, roots = ("grpc+tls", self._root_certificates) if self.tls else ("grpc", None)
            return flight.FlightClient(
                f"{scheme}://{self.flight_address}",
                tls_root_certs=roots,
                generic_options=transport.FLIGHT_CLIENT_OPTIONS,
            )

        client: flight.FlightClient = self._lease(
            "flight", (self.flight_address, self._root_certificates, self.tls), open_client
        )
        return client

    def _flight_call(self, action: Callable[[], T], idempotent: bool) -> T:
        deadline = time.monotonic() + self.retry_timeout
        pause = 0.02
        while True:
            try:
                return action()
            except Exception as error:  # pyarrow raises its own hierarchy; map what it is
                if not status.is_transport_error(error):
                    raise
                retry = (
                    idempotent
                    and isinstance(error, flight.FlightUnavailableError)
                    and time.monotonic() + pause < deadline
                )
                if not retry:
                    raise status.from_flight_error(error, self.flight_address) from None
                time.sleep(pause)  # the flight client reconnects by itself; give it a moment
                pause = min(pause * 2, 0.5)

    def read_small(self, query: common_pb2.Query, max_rows: int) -> pa.Table | None:
        """``query``'s result in one call to the metadata service; None when it has more than
        ``max_rows`` rows (or more bytes than one message holds): read it with ``read_query``."""
        if self._direct_read_unsupported:
            return None
        request = metadata_service_pb2.ReadQueryRequest(query=query, max_rows=max_rows)
        try:
            response = self._call(
                self.metadata_address,
                self.metadata.ReadQuery,
                request,
                idempotent=True,
                passed=(grpc.StatusCode.UNIMPLEMENTED,),
            )
        except _Passed:
            self._direct_read_unsupported = True  # a metadata service older than this client
            return None
        if response.WhichOneof("answer") != "arrow_stream":
            return None
        return pa.ipc.open_stream(response.arrow_stream).read_all()

    def read_result(self, query: common_pb2.Query, max_rows: int | None) -> pa.Table:
        """``query``'s whole result: in one call when it is known to hold at most ``direct_read_rows``
        rows (``max_rows``, None when unknown), through Flight otherwise."""
        if max_rows is not None and max_rows <= self.direct_read_rows:
            table = self.read_small(query, max_rows)
            if table is not None:
                return table
        return self.read_query(query)

    def read_query(self, query: common_pb2.Query) -> pa.Table:
        """Runs ``query`` through the flight service and reads the whole result.

        A large result comes in partitions (one FlightInfo endpoint each), read in parallel and joined in
        order; an ordered or limited query is never partitioned, so it is read at once, without asking.
        Any other is first asked for whole in one DoGet that the service refuses when it would partition
        the result (then, and for that datasource from then on, GetFlightInfo lists the partitions): a
        result that fits one partition costs one round trip, not two.
        """
        if query.order_by or query.HasField("limit"):
            raw = flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=query)).SerializeToString()
            ticket = flight.Ticket(raw)
            return self._flight_call(
                lambda: self.flight.do_get(ticket, options=self._flight_options).read_all(), idempotent=True
            )
        self._check_process()
        if query.datasource_id not in self._partitioned:
            table = self._flight_call(lambda: self._read_unless_partitioned(query), idempotent=True)
            if table is not None:
                return table
            self._partitioned.add(query.datasource_id)
        # Planned on the store's estimate: the partitions without running the query an extra time to count it.
        command = flight_pb2.FlightCommand(estimated_query=flight_pb2.EstimatedQueryCommand(query=query))
        descriptor = flight.FlightDescriptor.for_command(command.SerializeToString())

        def read() -> pa.Table:
            info = self.flight.get_flight_info(descriptor, options=self._flight_options)
            return read_endpoints(info, lambda: self.flight, self._location_clients, self._flight_options)

        return self._flight_call(read, idempotent=True)

    def _read_unless_partitioned(self, query: common_pb2.Query) -> pa.Table | None:
        """``query``'s whole result in one DoGet (no GetFlightInfo first); None when the flight service
        would split it into partitions, which only GetFlightInfo lists."""
        unless = flight_pb2.QueryTicket(query=query, unless_partitioned=True)
        ticket = flight.Ticket(flight_pb2.FlightTicket(query=unless).SerializeToString())
        try:
            table: pa.Table = self.flight.do_get(ticket, options=self._flight_options).read_all()
        except flight.FlightError as error:
            code, message = status.split_code(status.flight_message(error))
            if code == "FAILED_PRECONDITION" and message.startswith(transport.PARTITIONED_RESULT):
                return None
            raise
        return table

    def stream_query(self, query: common_pb2.Query, *, map_errors: bool = True) -> pa.RecordBatchReader:
        """Runs ``query`` through the flight service and returns its batches as they arrive.

        Nothing is held beyond the batch being read. With ``map_errors`` errors while reading raise
        Thresher exceptions (a Python step per batch); without, the reader is Flight's own, for
        consumers that read it in C (an Arrow C stream), where no Python exception reaches anyone.
        """
        ticket = flight.Ticket(flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=query)).SerializeToString())

        def start() -> flight.FlightStreamReader:
            reader = self.flight.do_get(ticket, options=self._flight_options)
            reader.schema  # noqa: B018 - waits for the first message, where a refusal arrives
            return reader

        reader = self._flight_call(start, idempotent=True)
        if not map_errors:
            return reader.to_reader()

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                while True:
                    try:
                        chunk = reader.read_chunk()
                    except StopIteration:
                        return
                    if chunk.data is not None:
                        yield chunk.data
            except Exception as error:
                if not status.is_transport_error(error):
                    raise
                raise status.from_flight_error(error, self.flight_address) from None
            finally:
                reader.cancel()  # a consumer that stops early ends the query instead of leaving it running

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def open_ticket(self, ticket: flight_pb2.FlightTicket) -> FlightStreamReader:
        """Starts DoGet for a file, blob or shard ticket; its schema is read, so a refused ticket fails here.

        Errors while reading the stream are pyarrow's: map them with ``status.from_flight_error``.
        """
        raw = flight.Ticket(ticket.SerializeToString())

        def start() -> flight.FlightStreamReader:
            reader = self.flight.do_get(raw, options=self._flight_options)
            reader.schema  # noqa: B018 - waits for the first message, where a refusal arrives
            return reader

        return self._flight_call(start, idempotent=True)

    def upsert_table(
        self,
        datasource_id: int,
        table: pa.Table | pa.RecordBatchReader,
        path_column: str,
        *,
        create_missing: bool = False,
        staging_session: str = "",
        block_index: int = 0,
    ) -> metadata_service_pb2.UpsertTableResponse | None:
        """Writes ``table`` (a path column, then field columns) through Flight DoPut, atomically; with
        ``staging_session``, stages it as block ``block_index`` of that session instead (sent again, a
        block replaces its earlier copy; ``CommitStagedUpload`` writes the session's blocks together).

        ``table`` may be a RecordBatchReader: its batches are sent as they are read, so an upload
        larger than memory streams. If reading it raises, the upload is aborted (nothing is written)
        and the error is raised here. Returns the server's counts when it sends them.
        ``create_missing``: whether paths the datasource does not know may become new datapoints
        (otherwise they are refused with ``UnknownPathsError`` and nothing is written).
        """
        command = flight_pb2.FlightCommand(
            upsert=flight_pb2.UpsertCommand(
                datasource_id=datasource_id,
                path_column=path_column,
                create_missing=create_missing,
                staging_session=staging_session,
                block_index=block_index,
            )
        )
        descriptor = flight.FlightDescriptor.for_command(command.SerializeToString())
        batches = table.to_batches() if isinstance(table, pa.Table) else table

        def put() -> metadata_service_pb2.UpsertTableResponse | None:
            writer, reader = self.flight.do_put(descriptor, table.schema, options=self._flight_options)
            try:
                for batch in batches:
                    for piece in arrow_io.split_batch(batch):
                        writer.write_batch(piece)
            except BaseException:
                # Ending the stream here would commit what was sent: tell the service to drop it. Its
                # refusal is expected and not what the caller needs to hear; the producer's error is.
                with contextlib.suppress(Exception):
                    writer.write_metadata(pa.py_buffer(transport.ABORT_UPLOAD))
                    writer.done_writing()
                    reader.read()
                with contextlib.suppress(Exception):
                    writer.close()
                raise
            with writer:
                writer.done_writing()
                answer = reader.read()
            if answer is None or answer.size == 0:
                return None
            response: metadata_service_pb2.UpsertTableResponse = metadata_service_pb2.UpsertTableResponse.FromString(
                answer.to_pybytes()
            )
            return response

        # A reader can be read once, so only a whole table is retried (and writes never are).
        return self._flight_call(put, idempotent=False)


class _Leases:
    """The shared objects one Connection holds a reference to, in the process that acquired them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.held: dict[tuple[str, tuple[Any, ...]], Any] = {}
        # Stubs made on held channels, kept here so a call finds its stub without taking a lock.
        self.stubs: dict[str, Any] = {}

    def release_all(self) -> None:
        """Gives back every reference (in the process that took them; a forked child's copies are
        its parent's and are left alone)."""
        held, self.held, self.stubs = self.held, {}, {}
        if self.pid != os.getpid():
            self.pid = os.getpid()
            return
        for kind, key in held:
            transport.release(kind, key)

    def forget(self) -> None:
        """Drops the parent's references in a forked child without giving them back."""
        self.pid = os.getpid()
        self.held, self.stubs = {}, {}


class _Passed(Exception):
    """A status the caller of ``_call`` handles itself."""


def _await_ready(channel: grpc.Channel, deadline: float, pause: float) -> bool:
    """Waits (until ``deadline``) for the channel to connect; False when it did not."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    ready = grpc.channel_ready_future(channel)
    try:
        ready.result(timeout=remaining)
    except grpc.FutureTimeoutError:
        return False
    finally:
        ready.cancel()  # stops watching the channel, which may be closed next
    # Connected: the UNAVAILABLE came from the service itself; back off before asking again.
    time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
    return time.monotonic() < deadline


_default: Connection | None = None
_default_lock = threading.Lock()


def connect(
    metadata_address: str | None = None,
    flight_address: str | None = None,
    scanner_address: str | None = None,
    *,
    token: str | None = None,
    retry_timeout: float = 2.0,
    tls: bool = False,
    root_certificates: bytes | str | None = None,
    direct_read_rows: int | None = None,
) -> Connection:
    """Connects to Thresher's services and makes this the default connection.

    Nothing is dialled until the first call; unset addresses, the token and TLS roots come from the
    environment (see ``Connection``).
    """
    connection = Connection(
        metadata_address,
        flight_address,
        scanner_address,
        token=token,
        retry_timeout=retry_timeout,
        tls=tls,
        root_certificates=root_certificates,
        direct_read_rows=direct_read_rows,
    )
    set_default_connection(connection)
    return connection


def set_default_connection(connection: Connection | None) -> None:
    """Makes ``connection`` the one module-level functions use (None: rebuild from the environment)."""
    global _default
    with _default_lock:
        _default = connection


def default_connection() -> Connection:
    """The default connection, created from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Connection()
        return _default


def resolve(connection: Connection | None) -> Connection:
    """``connection``, or the default one when None."""
    return connection if connection is not None else default_connection()


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "unknown"
