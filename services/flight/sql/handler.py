"""Answers Flight SQL commands, tickets and actions for the flight service.

Statelessness: a statement's handle (ticket or prepared statement) is the serialized
``ExecuteSqlRequest`` that runs it, SQL and bound parameters included, so any replica can serve it
and closing a prepared statement frees nothing. Binding parameters (DoPut) answers with a new handle
holding them, which the protocol's ``DoPutPreparedStatementResult`` allows for exactly this reason.
Catalog commands are their own tickets.

Anything not handled here raises ``NotImplementedError``, which Flight sends as UNIMPLEMENTED: the
code Flight SQL clients (ADBC's driver among them) take as "not supported, fall back".
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as fl
from google.protobuf.message import DecodeError, Message

from thresher.flight_sql_protocol import flight_sql_pb2 as fsql
from thresher.services.auth.forwarded_headers import Metadata
from thresher.services.flight.backend import MetadataBackend
from thresher.services.flight.data_port_client import ResultSource
from thresher.services.flight.flight_errors import flight_errors
from thresher.services.flight.sql import catalog
from thresher.services.flight.sql.protocol import UnsupportedMessage, pack, unpack
from thresher.services.flight.tickets import TicketError
from thresher.v1 import metadata_service_pb2 as mpb

CREATE_PREPARED_STATEMENT, CLOSE_PREPARED_STATEMENT = "CreatePreparedStatement", "ClosePreparedStatement"


def _unsupported(what: object) -> NotImplementedError:
    name = what.name if isinstance(what, UnsupportedMessage) else type(what).__name__
    if isinstance(what, (fsql.CommandStatementUpdate, fsql.CommandPreparedStatementUpdate)):
        return NotImplementedError(f"{name}: SQL over Thresher is read-only")
    return NotImplementedError(f"Flight SQL {name} is not supported by Thresher")


def _handle(raw: bytes) -> mpb.ExecuteSqlRequest:
    """The statement a handle stands for."""
    try:
        request: mpb.ExecuteSqlRequest = mpb.ExecuteSqlRequest.FromString(raw)
    except DecodeError as error:
        raise TicketError(f"not a Thresher statement handle: {error}") from None
    if not request.sql:
        raise TicketError("the statement handle holds no SQL")
    return request


def _relayed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Passes batches on; a failure of the metadata stream mid-way becomes a Flight error."""
    with flight_errors():
        yield from batches


class FlightSqlHandler:
    """The Flight SQL calls, served through ``backend`` on behalf of each caller."""

    def __init__(self, backend: MetadataBackend, location: fl.Location, data_port: ResultSource | None = None) -> None:
        self._backend = backend
        self._location = location
        self._data_port = data_port  # results from the metadata service's data port (Flight), where it has one

    # GetFlightInfo / GetSchema -------------------------------------------------------------------

    def flight_info(
        self, command: Message | UnsupportedMessage, descriptor: fl.FlightDescriptor, caller: Metadata
    ) -> fl.FlightInfo:
        if isinstance(command, catalog.CATALOG_COMMANDS):
            schema, ticket = catalog.result_schema(command), pack(command)
        else:
            statement = self._statement(command)
            schema = self._describe(statement, caller)
            ticket = pack(fsql.TicketStatementQuery(statement_handle=statement.SerializeToString()))
        return fl.FlightInfo(schema, descriptor, [fl.FlightEndpoint(ticket, [self._location])], -1, -1)

    def schema(self, command: Message | UnsupportedMessage, caller: Metadata) -> pa.Schema:
        if isinstance(command, catalog.CATALOG_COMMANDS):
            return catalog.result_schema(command)
        return self._describe(self._statement(command), caller)

    def _statement(self, command: Message | UnsupportedMessage) -> mpb.ExecuteSqlRequest:
        if isinstance(command, fsql.CommandStatementQuery):
            if command.HasField("transaction_id"):
                raise NotImplementedError("Flight SQL transactions are not supported by Thresher")
            return mpb.ExecuteSqlRequest(sql=command.query)
        if isinstance(command, fsql.CommandPreparedStatementQuery):
            return _handle(command.prepared_statement_handle)
        raise _unsupported(command)

    def _describe(self, statement: mpb.ExecuteSqlRequest, caller: Metadata) -> pa.Schema:
        request = mpb.DescribeSqlRequest(sql=statement.sql, parameters=statement.parameters)
        return self._backend.describe_sql(request, caller)

    # DoGet ----------------------------------------------------------------------------------------

    def do_get(self, ticket: Message | UnsupportedMessage, caller: Metadata) -> fl.FlightDataStream:
        if isinstance(ticket, fsql.TicketStatementQuery):
            if self._data_port is not None:  # Arrow C++ from end to end: no protobuf hop, no re-encoding
                return self._data_port.execute_sql(_handle(ticket.statement_handle), caller)
            schema, batches = self._backend.execute_sql(_handle(ticket.statement_handle), caller)
            return fl.GeneratorStream(schema, _relayed(batches))
        if isinstance(ticket, catalog.CATALOG_COMMANDS):
            return fl.RecordBatchStream(self._catalog(ticket, caller))
        raise _unsupported(ticket)

    def _catalog(self, command: Message, caller: Metadata) -> pa.Table:
        if isinstance(command, fsql.CommandGetCatalogs):
            return catalog.catalogs()
        if isinstance(command, fsql.CommandGetTableTypes):
            return catalog.table_types()
        if isinstance(command, fsql.CommandGetSqlInfo):
            return catalog.sql_info(command)
        if isinstance(command, fsql.CommandGetDbSchemas):
            return catalog.db_schemas(command, self._backend.sql_tables(False, caller))
        return catalog.tables(command, self._backend.sql_tables(command.include_schema, caller))

    # DoPut: binding parameters ------------------------------------------------------------------

    def do_put(
        self,
        command: Message | UnsupportedMessage,
        reader: fl.MetadataRecordBatchReader,
        writer: fl.FlightMetadataWriter,
    ) -> None:
        if not isinstance(command, fsql.CommandPreparedStatementQuery):
            raise _unsupported(command)
        statement = _handle(command.prepared_statement_handle)
        parameters = reader.read_all()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, parameters.schema) as stream:
            stream.write_table(parameters)
        statement.parameters = sink.getvalue().to_pybytes()
        result = fsql.DoPutPreparedStatementResult(prepared_statement_handle=statement.SerializeToString())
        writer.write(pa.py_buffer(result.SerializeToString()))

    # DoAction -------------------------------------------------------------------------------------

    def do_action(self, action: fl.Action, caller: Metadata) -> Iterator[bytes]:
        body = unpack(action.body.to_pybytes()) if action.body is not None else None
        if action.type == CREATE_PREPARED_STATEMENT and isinstance(body, fsql.ActionCreatePreparedStatementRequest):
            if body.HasField("transaction_id"):
                raise NotImplementedError("Flight SQL transactions are not supported by Thresher")
            statement = mpb.ExecuteSqlRequest(sql=body.query)
            schema = self._describe(statement, caller)
            result = fsql.ActionCreatePreparedStatementResult(
                prepared_statement_handle=statement.SerializeToString(), dataset_schema=schema.serialize().to_pybytes()
            )
            return iter([pack(result)])
        if action.type == CLOSE_PREPARED_STATEMENT and isinstance(body, fsql.ActionClosePreparedStatementRequest):
            return iter([])  # handles hold no server state
        raise NotImplementedError(f"action {action.type!r} is not supported by Thresher")
