"""SQL over Flight SQL with nothing but pyarrow: the statement goes as a ``CommandStatementQuery``.

The flight service answers read-only SQL over every namespace the token may read (each namespace a
schema, each datasource a table, each saved dataset a view); ADBC's Flight SQL driver speaks the same
protocol, so this is what ``adbc_driver_flightsql`` would send, without needing it installed.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf import any_pb2

from thresher.connection import Connection, resolve
from thresher.flight_sql_protocol import flight_sql_pb2


def run_sql(statement: str, *, connection: Connection | None = None) -> pa.Table:
    """The result of the read-only SQL ``statement`` as an Arrow table.

    Errors are Thresher's (InvalidArgumentError for SQL the service rejects, PermissionDeniedError, ...).
    """
    conn = resolve(connection)
    command = any_pb2.Any()
    command.Pack(flight_sql_pb2.CommandStatementQuery(query=statement))
    descriptor = flight.FlightDescriptor.for_command(command.SerializeToString())
    options = conn._flight_options  # noqa: SLF001 - the connection's token and user headers

    def fetch() -> pa.Table:
        info = conn.flight.get_flight_info(descriptor, options=options)
        tables = [conn.flight.do_get(endpoint.ticket, options=options).read_all() for endpoint in info.endpoints]
        if not tables:
            return info.schema.empty_table()
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    return conn._flight_call(fetch, idempotent=True)  # noqa: SLF001 - maps Flight errors onto Thresher's
