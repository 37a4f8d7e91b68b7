"""The Arrow Flight verbs: query results, file and blob bytes out (DoGet), uploads in (DoPut),
flights listed and described.

The server holds no state beyond caches: a ticket is a self-describing ``FlightTicket``; query answers
come from the metadata service, whose record batches are relayed without re-encoding; file bytes from
the datasource's storage (``file_streams.py``), blob bytes from the blob store. ``server.py`` builds it
from the settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.flight as fl

from thresher.core.storage.base import clean_relative
from thresher.core.storage.blobs import BlobStore, open_blob_store
from thresher.core.transport import ABORT_UPLOAD, PARTITIONED_RESULT
from thresher.services.auth.forwarded_headers import MIDDLEWARE_KEY, ForwardedHeadersFactory, Metadata, forwarded
from thresher.services.flight import file_streams, partitions
from thresher.services.flight import shards as bag_shards
from thresher.services.flight import sql as flight_sql
from thresher.services.flight.backend import DATASETS, DATASOURCES, MetadataBackend
from thresher.services.flight.blob_access import BlobAccess
from thresher.services.flight.data_port_client import ResultSource
from thresher.services.flight.flight_errors import flight_errors, invalid_argument, status_error, unimplemented
from thresher.services.flight.tickets import descriptor_path, parse_command, parse_ticket
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as mpb

log = logging.getLogger(__name__)


class ThresherFlightServer(fl.FlightServerBase):  # type: ignore[misc]  # pyarrow ships no type information
    """Serves Thresher's Flight surface (docs/design.md, "The Flight surface") over the metadata service at ``channel``."""

    def __init__(
        self,
        location: str,
        channel: grpc.Channel,
        advertise_host: str,
        *,
        blobs: BlobStore | None = None,
        peers: Sequence[str] = (),
        data_port: ResultSource | None = None,
        metadata_address: str = "",
        partition_rows: int | None = None,
        **options: Any,
    ) -> None:
        # ``options``: FlightServerBase's auth_handler, middleware and tls_certificates (ServiceSecurity).
        middleware = {MIDDLEWARE_KEY: ForwardedHeadersFactory(), **options.pop("middleware", {})}
        super().__init__(location, middleware=middleware, **options)
        self._channel = channel
        # Named in the errors of calls to it, so a client blames the metadata service when it is down.
        self._metadata_address = metadata_address
        self._backend = MetadataBackend(channel)
        # Query results come from the metadata service's data port when there is one (C++ to C++), else
        # over its gRPC ExecuteQuery stream.
        self._data_port = data_port
        self._storages = file_streams.DatasourceStorages(channel)
        self._blobs = blobs if blobs is not None else open_blob_store()
        self._blob_access = BlobAccess(channel)
        advertised = fl.Location.for_grpc_tls if options.get("tls_certificates") else fl.Location.for_grpc_tcp
        self.location = advertised(advertise_host, self.port)
        self._sql = flight_sql.FlightSqlHandler(self._backend, self.location, data_port)
        # Public so a deployment (or a test) can point servers at each other once all their ports are known.
        self.peers = [bag_shards.peer_location(peer, self.location) for peer in peers]
        self._shards = bag_shards.BagShards(channel, lambda: [self.location, *self.peers])
        # A query result larger than this is split into id-range partitions, one endpoint each.
        self.partition_rows = partitions.partition_rows(partition_rows)

    def do_get(self, context: fl.ServerCallContext, ticket: fl.Ticket) -> fl.FlightDataStream:
        with flight_errors(self._metadata_address):
            if (sql_ticket := flight_sql.unpack(ticket.ticket)) is not None:
                return self._sql.do_get(sql_ticket, forwarded(context))
            parsed = parse_ticket(ticket.ticket)
            kind = parsed.WhichOneof("kind")
            if kind == "file":
                with file_streams.storage_errors():
                    # Object stores take ".." literally; refusing it everywhere keeps one rule for every backend.
                    clean_relative(parsed.file.path)
                return fl.GeneratorStream(
                    *file_streams.stream_file(parsed.file, self._storages.bind(forwarded(context)))
                )
            if kind == "blob":
                # The hash alone opens nothing: the caller must read a datasource that holds the blob.
                self._blob_access.check(parsed.blob, forwarded(context))
                return fl.GeneratorStream(*file_streams.stream_blob(parsed.blob, self._blobs))
            if kind == "bag_shard":
                return self._shards.stream(parsed.bag_shard, forwarded(context))
            if kind != "query":
                raise unimplemented(f"{kind} tickets are not served yet")
            query = parsed.query.query
            if parsed.query.HasField("id_range"):  # one partition of a larger result
                query = partitions.restricted(query, parsed.query.id_range)
            elif parsed.query.unless_partitioned:
                self._refuse_if_partitioned(query, forwarded(context))
            if self._data_port is not None:
                return self._data_port.execute(query, forwarded(context))
            schema, batches = self._backend.execute(query, forwarded(context))
        return fl.GeneratorStream(schema, _relayed(batches, self._metadata_address))

    def get_flight_info(self, context: fl.ServerCallContext, descriptor: fl.FlightDescriptor) -> fl.FlightInfo:
        with flight_errors(self._metadata_address):
            caller = forwarded(context)
            if (sql_command := flight_sql.command_of(descriptor)) is not None:
                return self._sql.flight_info(sql_command, descriptor, caller)
            if (bag_command := bag_shards.command_of(descriptor)) is not None:
                return self._shards.flight_info(bag_command, descriptor, caller)
            return self._info(
                descriptor, self._query_of(descriptor, caller), caller, estimate=_is_estimated(descriptor)
            )

    def get_schema(self, context: fl.ServerCallContext, descriptor: fl.FlightDescriptor) -> fl.SchemaResult:
        with flight_errors(self._metadata_address):
            caller = forwarded(context)
            if (sql_command := flight_sql.command_of(descriptor)) is not None:
                return fl.SchemaResult(self._sql.schema(sql_command, caller))
            if (bag_command := bag_shards.command_of(descriptor)) is not None:
                return fl.SchemaResult(self._shards.flight_info(bag_command, descriptor, caller).schema)
            schema, *_ = self._described(self._query_of(descriptor, caller), caller)
        return fl.SchemaResult(schema)

    def do_put(
        self,
        context: fl.ServerCallContext,
        descriptor: fl.FlightDescriptor,
        reader: fl.MetadataRecordBatchReader,
        writer: fl.FlightMetadataWriter,
    ) -> None:
        with flight_errors(self._metadata_address):
            if (sql_command := flight_sql.command_of(descriptor)) is not None:
                return self._sql.do_put(sql_command, reader, writer)
            if descriptor.descriptor_type != fl.DescriptorType.CMD:
                raise invalid_argument("DoPut needs a command descriptor holding a FlightCommand with `upsert` set")
            command = parse_command(descriptor.command)
            kind = command.WhichOneof("kind")
            if kind != "upsert":
                raise invalid_argument(f"DoPut takes an `upsert` FlightCommand, not `{kind}`")
            schema = reader.schema
            if not schema.names:
                raise invalid_argument("the uploaded table has no columns")
            path_column = command.upsert.path_column or schema.names[0]
            if path_column not in schema.names:
                raise invalid_argument(f"path column {path_column!r} is not among the uploaded columns {schema.names}")
            batches = uploaded_batches(reader, context)
            if self._data_port is not None and not command.upsert.staging_session:
                # Flight to Flight: the batches' bytes pass from one Arrow stack to the other.
                header = mpb.UpsertTableHeader(
                    datasource_id=command.upsert.datasource_id,
                    path_column=path_column,
                    create_missing=command.upsert.create_missing,
                )
                response = self._data_port.upsert(header, schema, batches, forwarded(context))
                writer.write(pa.py_buffer(response.SerializeToString()))
                return None
            response = self._backend.upsert(
                command.upsert.datasource_id,
                path_column,
                schema,
                batches,
                forwarded(context),
                create_missing=command.upsert.create_missing,
                staging_session=command.upsert.staging_session,
                block_index=command.upsert.block_index,
            )
        writer.write(pa.py_buffer(response.SerializeToString()))

    def do_action(self, context: fl.ServerCallContext, action: fl.Action) -> Iterator[bytes]:
        with flight_errors(self._metadata_address):
            return self._sql.do_action(action, forwarded(context))

    def list_flights(self, context: fl.ServerCallContext, criteria: bytes) -> list[fl.FlightInfo]:
        try:
            namespace = criteria.decode("utf-8").strip() if criteria else ""
        except UnicodeDecodeError:
            raise invalid_argument("ListFlights criteria must be a namespace name in UTF-8, or empty") from None
        caller = forwarded(context)
        with flight_errors(self._metadata_address):
            entries = list(self._backend.catalog(namespace or None, caller))
        return [
            self._bag_info(fl.FlightDescriptor.for_path(*path), caller)
            if query is None
            else self._info(fl.FlightDescriptor.for_path(*path), query, caller, lenient=True)
            for path, query in entries
        ]

    def shutdown(self) -> None:
        super().shutdown()
        if self._data_port is not None:
            self._data_port.close()
        self._storages.close()
        self._channel.close()

    def _query_of(self, descriptor: fl.FlightDescriptor, caller: Metadata) -> common_pb2.Query:
        if descriptor.descriptor_type == fl.DescriptorType.CMD:
            command = parse_command(descriptor.command)
            kind = command.WhichOneof("kind")
            if kind == "query":
                return command.query
            if kind == "estimated_query":
                return command.estimated_query.query
            if kind == "upsert":
                raise invalid_argument("an upsert command describes an upload (DoPut), not a flight to read")
            raise unimplemented(f"{kind} commands are not served yet")
        path = descriptor_path(descriptor)
        if len(path) == 3 and path[1] == DATASOURCES:
            return self._backend.datasource_query(path[0], path[2], caller)
        if len(path) == 3 and path[1] == DATASETS:
            return self._backend.dataset_query(path[0], path[2], caller)
        raise invalid_argument(f"unknown flight path {path}; expected [namespace, 'datasources' or 'datasets', name]")

    def _refuse_if_partitioned(self, query: common_pb2.Query, caller: Metadata) -> None:
        """Raises FAILED_PRECONDITION when GetFlightInfo would split ``query``'s result into partitions
        (planned on the same estimate), which a client that asked with ``unless_partitioned`` reads
        through GetFlightInfo instead."""
        if not partitions.may_split(query, self.partition_rows):
            return
        _, total_rows, min_id, max_id = self._described(query, caller, estimate=True)
        ranges = partitions.id_ranges(query, total_rows, min_id, max_id, self.partition_rows)
        if len(ranges) > 1:
            raise status_error(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{PARTITIONED_RESULT} the result comes in {len(ranges)} partitions; GetFlightInfo lists them",
            )

    def _described(
        self, query: common_pb2.Query, caller: Metadata, estimate: bool = False
    ) -> tuple[pa.Schema, int, int, int]:
        """``query``'s schema, row count and id bounds: from the result source when it can tell (the
        store, in one process), else from the metadata service's DescribeQuery."""
        described = self._data_port.describe(query, caller, estimate) if self._data_port is not None else None
        return described if described is not None else self._backend.describe_with_ids(query, caller, estimate)

    def _info(
        self,
        descriptor: fl.FlightDescriptor,
        query: common_pb2.Query,
        caller: Metadata,
        lenient: bool = False,
        estimate: bool = False,
    ) -> fl.FlightInfo:
        """The flight of ``query``: real schema and row count, and one endpoint per partition (see
        ``partitions``), each listing every flight node that can serve it, a different one first for
        each partition. ``lenient`` for listings: a query that cannot be described is listed without
        schema and counts rather than failing the list. ``estimate``: partitions planned on the store's
        row estimate, without running the query; the total is then unknown (-1)."""
        try:
            schema, total_rows, min_id, max_id = self._described(query, caller, estimate)
        except (grpc.RpcError, fl.FlightError) as error:
            if not lenient:
                raise
            log.warning("listing %s without its schema: %s", descriptor, error)
            schema, total_rows, min_id, max_id = pa.schema([]), -1, 0, -1
        nodes = [self.location, *self.peers]
        ranges = partitions.id_ranges(query, total_rows, min_id, max_id, self.partition_rows)
        endpoints = [
            fl.FlightEndpoint(partitions.ticket(query, id_range), _rotated(nodes, i))
            for i, id_range in enumerate(ranges)
        ]
        return fl.FlightInfo(schema, descriptor, endpoints, -1 if estimate else total_rows, -1)

    def _bag_info(self, descriptor: fl.FlightDescriptor, caller: Metadata) -> fl.FlightInfo:
        """A bag dataset's flight for a listing: one that cannot be opened (moved, incomplete) is listed
        without schema and endpoints rather than failing the list."""
        command = bag_shards.command_of(descriptor)
        if command is None:  # cannot happen: the catalog lists bag datasets by their [namespace, "bags", name] path
            raise invalid_argument(f"{descriptor} names no bag dataset")
        try:
            return self._shards.flight_info(command, descriptor, caller)
        except (fl.FlightError, grpc.RpcError) as error:
            log.warning("listing %s without its shards: %s", descriptor, error)
            return fl.FlightInfo(pa.schema([]), descriptor, [], -1, -1)


def _rotated(nodes: list[fl.Location], first: int) -> list[fl.Location]:
    """``nodes`` starting from index ``first`` (modulo their number), so partitions spread over replicas."""
    first %= len(nodes)
    return nodes[first:] + nodes[:first]


def _is_estimated(descriptor: fl.FlightDescriptor) -> bool:
    """Whether ``descriptor`` asks for a flight planned on an estimate (an ``estimated_query`` command)."""
    if descriptor.descriptor_type != fl.DescriptorType.CMD:
        return False
    kind: str | None = parse_command(descriptor.command).WhichOneof("kind")
    return kind == "estimated_query"


def _relayed(batches: Iterator[pa.RecordBatch], upstream: str) -> Iterator[pa.RecordBatch]:
    """Passes batches on, turning a failure of the metadata stream (at ``upstream``) into a Flight error."""
    with flight_errors(upstream):
        yield from batches


def uploaded_batches(reader: fl.MetadataRecordBatchReader, context: fl.ServerCallContext) -> Iterator[pa.RecordBatch]:
    """A DoPut's batches, forwarded one by one as they arrive; raises if the client aborts the upload
    or its stream stops without ending (the upload then commits nothing)."""
    for chunk in reader:
        if chunk.app_metadata is not None and chunk.app_metadata.to_pybytes() == ABORT_UPLOAD:
            raise status_error(
                grpc.StatusCode.CANCELLED, "the client aborted the upload (its data source failed); nothing was written"
            )
        if chunk.data is not None:
            yield chunk.data
    # A client that dies or cancels mid-stream ends the reader just as one that finished does; only
    # the call's state tells them apart, and a stream that did not end is never taken as complete.
    if context.is_cancelled():
        raise status_error(
            grpc.StatusCode.CANCELLED,
            "the client's upload stream stopped before its end (cancelled or disconnected); nothing was written",
        )
