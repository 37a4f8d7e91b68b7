"""A query result as a Ray Dataset: one read task per Flight endpoint, each reading from the flight nodes.

The driver only plans: ``GetFlightInfo`` lists the partitions of the query's result (datapoint id ranges,
self-describing tickets any flight replica serves) and the nodes that serve each. Every read task then
fetches its own partition from the first of its locations that answers (else the connection's own flight
service), so no result row passes through the driver. Blocks keep the Flight schema, Arrow field metadata
(Thresher's field types) included. The query carries its ``as_of``: every partition reads the same instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from thresher.ray_engine import require_ray
from thresher.ray_engine.remote import ConnectionSpec
from thresher.v1 import common_pb2, flight_pb2


def plan_partitions(connection: Any, query: common_pb2.Query) -> flight.FlightInfo:
    """The FlightInfo of ``query``: its schema and one endpoint per partition."""
    command = flight_pb2.FlightCommand(estimated_query=flight_pb2.EstimatedQueryCommand(query=query))
    descriptor = flight.FlightDescriptor.for_command(command.SerializeToString())
    return connection._flight_call(  # noqa: SLF001 - the connection's own retry and error mapping
        lambda: connection.flight.get_flight_info(descriptor, options=connection._flight_options),  # noqa: SLF001
        idempotent=True,
    )


def read_partition(spec: ConnectionSpec, ticket: bytes, locations: list[str]) -> pa.Table:
    """One partition, from the first of ``locations`` that answers, else from the spec's flight service."""
    connection = spec.connect()
    options = connection._flight_options  # noqa: SLF001 - the caller's token and user headers
    try:
        failures = []
        for uri in locations:
            client = flight.FlightClient(uri, tls_root_certs=spec.root_certificates if spec.tls else None)
            try:
                return client.do_get(flight.Ticket(ticket), options=options).read_all()
            except flight.FlightUnavailableError as error:  # that node is gone: any other serves the same ticket
                failures.append(f"{uri}: {error}")
            finally:
                client.close()
        return connection._flight_call(  # noqa: SLF001
            lambda: connection.flight.do_get(flight.Ticket(ticket), options=options).read_all(), idempotent=True
        )
    finally:
        connection.close()


def partitions_datasource(connection: Any, query: common_pb2.Query) -> Any:
    """A Ray Data ``Datasource`` over the partitions of ``query``: one read task per Flight endpoint.

    Planned here, once; its ``partitions`` attribute says how many read tasks it makes.
    """
    require_ray()
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    info = plan_partitions(connection, query)
    spec = ConnectionSpec.of(connection)
    schema = info.schema
    endpoints = [
        (endpoint.ticket.ticket, [location.uri.decode() for location in endpoint.locations])
        for endpoint in info.endpoints
    ]

    def read_task(ticket: bytes, locations: list[str], per_task_row_limit: int | None) -> Any:
        def read() -> Iterator[pa.Table]:
            yield read_partition(spec, ticket, locations)

        metadata = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None)
        return ReadTask(read, metadata, schema=schema, per_task_row_limit=per_task_row_limit)

    class FlightPartitions(Datasource):
        partitions = len(endpoints)

        def get_name(self) -> str:
            return "ThresherFlight"

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            # One task per partition whatever `parallelism` says: a partition is the unit a node serves.
            return [read_task(ticket, locations, per_task_row_limit) for ticket, locations in endpoints]

    return FlightPartitions()  # type: ignore[no-untyped-call]  # Ray's Datasource.__init__ is unannotated


def to_ray_dataset(datasource: Any, **read_options: Any) -> Any:
    """The rows ``datasource`` (a view) selects, as a Ray Dataset of one read task per Flight partition.

    ``read_options`` go to ``ray.data.read_datasource`` (``num_cpus``, ``concurrency``, ...).
    """
    ray = require_ray()
    source = partitions_datasource(datasource.connection, datasource.query_proto())
    return ray.data.read_datasource(source, **read_options)
