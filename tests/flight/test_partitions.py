"""Large query results as partitions: one endpoint per datapoint id range, served by any flight replica.

Two flight replicas over the suite's metadata service (DuckDB and PostgreSQL) split results into
partitions of a few rows; every partition's ticket must read the same on either replica, and the
partitions concatenated in endpoint order must be the unpartitioned result.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl
import pytest

from thresher.connection import Connection
from thresher.core.types import to_proto_value
from thresher.core.vectors import vector_array
from thresher.services.flight import partitions
from thresher.services.metadata.store.sql_store import INDEX_AFTER_ROWS
from thresher.v1 import common_pb2, flight_pb2

from .conftest import command, query_ticket

ROWS_PER_PARTITION = 7
ROWS = 50


@pytest.fixture(scope="module")
def replicas(metadata_server, flight_home):
    """Two flight replicas, peers of each other: the first reads results from the metadata service's data
    port, the second over its gRPC stream, so a ticket replayed on the other takes the other path too."""
    from thresher.services.flight.server import create_server
    from thresher.services.metadata.data_port import create_data_port

    address, store = metadata_server
    data_port = create_data_port("127.0.0.1:0", store)[0]
    first, _ = create_server(
        "127.0.0.1:0",
        address,
        home=flight_home,
        partition_rows=ROWS_PER_PARTITION,
        metadata_data_address=f"127.0.0.1:{data_port.port}",
    )
    second, _ = create_server(
        "127.0.0.1:0", address, home=flight_home, partition_rows=ROWS_PER_PARTITION, peers=[f"127.0.0.1:{first.port}"]
    )
    first.peers = [second.location]
    yield metadata_server[0], first, second
    first.shutdown()
    second.shutdown()
    data_port.shutdown()


@pytest.fixture
def source(data):
    table = pa.table(
        {
            "path": [f"p{i:03d}" for i in range(ROWS)],
            "n": list(range(ROWS)),
            "s": [("even" if i % 2 == 0 else "odd") for i in range(ROWS)],
        }
    )
    return data.datasource("parts", table)


def _read(server, ticket: bytes | fl.Ticket) -> pa.Table:
    raw = ticket if isinstance(ticket, fl.Ticket) else fl.Ticket(ticket)
    with fl.connect(f"grpc://127.0.0.1:{server.port}") as client:
        return client.do_get(raw).read_all()


def _filtered(datasource_id: int, **kw) -> common_pb2.Query:
    return common_pb2.Query(
        datasource_id=datasource_id,
        filter=common_pb2.Filter(
            comparison=common_pb2.Comparison(
                field="s", op=common_pb2.COMPARISON_OPERATOR_EQ, value=to_proto_value("even")
            )
        ),
        **kw,
    )


@pytest.mark.parametrize("filtered", [False, True], ids=["whole", "filtered"])
def test_a_large_result_comes_in_partitions_that_any_replica_serves(replicas, source, filtered):
    _, first, second = replicas
    query = _filtered(source) if filtered else common_pb2.Query(datasource_id=source)
    whole = _read(first, query_ticket(query))
    with fl.connect(f"grpc://127.0.0.1:{first.port}") as client:
        info = client.get_flight_info(command(query=query))
    assert info.total_records == whole.num_rows == (ROWS // 2 if filtered else ROWS)
    assert len(info.endpoints) == math.ceil(whole.num_rows / ROWS_PER_PARTITION)
    nodes = [first.location.uri.decode(), second.location.uri.decode()]
    pieces = []
    for index, endpoint in enumerate(info.endpoints):
        # Each partition lists both replicas, a different one first in turn.
        assert [location.uri.decode() for location in endpoint.locations] == nodes[index % 2 :] + nodes[: index % 2]
        ticket = flight_pb2.FlightTicket.FromString(endpoint.ticket.ticket)
        assert ticket.query.query == query and ticket.query.HasField("id_range")
        here, there = _read(first, endpoint.ticket), _read(second, endpoint.ticket)
        assert here.equals(there)
        assert 0 < here.num_rows <= 2 * ROWS_PER_PARTITION
        pieces.append(here)
    assert pa.concat_tables(pieces).equals(whole)


def test_ordered_limited_and_small_results_are_one_endpoint(replicas, source):
    _, first, _ = replicas
    ordered = common_pb2.Query(datasource_id=source, order_by=[common_pb2.OrderBy(field="n", descending=True)])
    limited = common_pb2.Query(datasource_id=source, limit=ROWS - 1)
    small = common_pb2.Query(
        datasource_id=source,
        filter=common_pb2.Filter(
            comparison=common_pb2.Comparison(
                field="n", op=common_pb2.COMPARISON_OPERATOR_LT, value=to_proto_value(ROWS_PER_PARTITION)
            )
        ),
    )
    with fl.connect(f"grpc://127.0.0.1:{first.port}") as client:
        for query, rows in ((ordered, ROWS), (limited, ROWS - 1), (small, ROWS_PER_PARTITION)):
            info = client.get_flight_info(command(query=query))
            assert (len(info.endpoints), info.total_records) == (1, rows)
            assert not flight_pb2.FlightTicket.FromString(info.endpoints[0].ticket.ticket).query.HasField("id_range")


@pytest.mark.parametrize("shape", ["whole", "filtered", "ordered", "limited"])
def test_the_client_reads_partitions_in_parallel_into_the_unpartitioned_result(replicas, source, shape):
    metadata_address, first, _ = replicas
    query = {
        "whole": common_pb2.Query(datasource_id=source),
        "filtered": _filtered(source),
        "ordered": _filtered(source, order_by=[common_pb2.OrderBy(field="n", descending=True)]),
        "limited": _filtered(source, limit=5),
    }[shape]
    connection = Connection(metadata_address=metadata_address, flight_address=f"127.0.0.1:{first.port}")
    try:
        got = connection.read_query(query)
    finally:
        connection.close()
    assert got.equals(_read(first, query_ticket(query)))


def test_id_ranges_cover_the_ids_once_in_order():
    query = common_pb2.Query(datasource_id=1)
    ranges = partitions.id_ranges(query, 1_000_000, 1, 1_000_000, 500_000)
    assert [(r.start, r.stop) for r in ranges] == [(1, 500_001), (500_001, 1_000_001)]
    ranges = partitions.id_ranges(query, 10, 5, 104, 3)
    assert len(ranges) == 4 and ranges[0].start == 5 and ranges[-1].stop == 105
    assert all(a.stop == b.start and a.start < a.stop for a, b in zip(ranges, ranges[1:]))
    assert partitions.id_ranges(query, 10, 0, 0, 3) == [None]  # ids unknown
    assert partitions.id_ranges(query, 10, 1, 10, 0) == [None]  # never split
    assert partitions.id_ranges(common_pb2.Query(datasource_id=1, limit=5), 10, 1, 10, 3) == [None]


def test_a_partition_narrows_the_query_filter():
    query = common_pb2.Query(
        datasource_id=1,
        filter=common_pb2.Filter(
            comparison=common_pb2.Comparison(field="n", op=common_pb2.COMPARISON_OPERATOR_IS_NULL)
        ),
    )
    narrowed = partitions.restricted(query, flight_pb2.DatapointIdRange(start=3, stop=9))
    parts = narrowed.filter.all_of.filters
    assert parts[0] == query.filter
    assert [(p.comparison.field, p.comparison.op, p.comparison.value.int_value) for p in parts[1:]] == [
        ("datapoint_id", common_pb2.COMPARISON_OPERATOR_GE, 3),
        ("datapoint_id", common_pb2.COMPARISON_OPERATOR_LT, 9),
    ]


def test_a_flight_planned_on_the_estimate_reads_the_same_rows(replicas, source):
    """The client's kind of GetFlightInfo: partitions from the store's estimate (PostgreSQL's planner),
    without running the query to count it; the total is unknown (-1), the rows are the same."""
    _, first, second = replicas
    query = _filtered(source)
    whole = _read(first, query_ticket(query))
    estimated = flight_pb2.FlightCommand(estimated_query=flight_pb2.EstimatedQueryCommand(query=query))
    with fl.connect(f"grpc://127.0.0.1:{second.port}") as client:
        info = client.get_flight_info(fl.FlightDescriptor.for_command(estimated.SerializeToString()))
        assert client.get_schema(fl.FlightDescriptor.for_command(estimated.SerializeToString())).schema == whole.schema
    assert info.total_records == -1 and len(info.endpoints) >= 1
    assert pa.concat_tables([_read(first, endpoint.ticket) for endpoint in info.endpoints]).equals(whole)


def test_the_estimate_bounds_hold_the_result_ids(metadata_server, source):
    _, store = metadata_server
    query = _filtered(source)
    _, total, (low, high) = store.describe_with_ids(query)
    _, estimated, (estimated_low, estimated_high) = store.estimate_with_ids(query)
    assert total == ROWS // 2 and estimated >= 0
    assert estimated_low <= low <= high <= estimated_high


def test_the_estimate_follows_every_write(metadata_server, data):
    """The estimate is read again after a write, new rows or deleted ones: a store that keeps it between
    writes (DuckDB's) must not plan a grown result's partitions on the old size."""
    _, store = metadata_server
    table = pa.table({"path": [f"p{i:03d}" for i in range(ROWS)], "n": list(range(ROWS))})
    datasource_id = data.datasource("parts_estimate_follows", table)
    query = common_pb2.Query(datasource_id=datasource_id)
    assert store.estimate_with_ids(query)[1:] == store.estimate_with_ids(query)[1:]
    _, before, (low, high) = store.estimate_with_ids(query)
    assert before >= ROWS and (low, high) == (1, ROWS)
    more = pa.table({"path": [f"q{i:03d}" for i in range(ROWS)], "n": list(range(ROWS))})
    store.upsert(datasource_id, more, "path", "test", create_missing=True)
    _, after, (low, high) = store.estimate_with_ids(query)
    assert after >= 2 * ROWS and (low, high) == (1, 2 * ROWS)
    assert len(partitions.id_ranges(query, after, low, high, ROWS + ROWS // 2)) >= 2


def test_a_large_first_load_is_estimated_at_its_row_count(metadata_server, data):
    """A first load large enough that PostgreSQL builds the current table's indexes after its rows: the
    estimate that plans a full result's partitions is its row count on both engines. (PostgreSQL, left
    without statistics, guessed half the rows live: a result of twice the partition size was read as
    one partition.)"""
    _, store = metadata_server
    rows = INDEX_AFTER_ROWS + 2000
    table = pa.table({"path": [f"p{i:06d}" for i in range(rows)], "x": np.arange(rows)})
    query = common_pb2.Query(datasource_id=data.datasource("parts_first_load", table))
    _, estimated, (low, high) = store.estimate_with_ids(query)
    assert abs(estimated - rows) <= rows // 20, estimated
    assert (low, high) == (1, rows)
    assert len(partitions.id_ranges(query, estimated, low, high, math.ceil(rows / 2))) == 2


def test_store_results_come_in_batches_of_bounded_size(metadata_server, source):
    _, store = metadata_server
    schema, batches = store.query(common_pb2.Query(datasource_id=source), max_batch_rows=ROWS_PER_PARTITION)
    sizes = [batch.num_rows for batch in batches]
    assert sum(sizes) == ROWS and max(sizes) <= ROWS_PER_PARTITION


@pytest.mark.parametrize("estimated", [False, True], ids=["counted", "estimated"])
def test_a_nearest_result_is_one_endpoint_whatever_its_size(replicas, data, estimated):
    """The k nearest of the whole filter, ordered by distance: split by id it would be neither."""
    _, first, _ = replicas
    table = pa.table(
        {
            "path": [f"p{i:03d}" for i in range(ROWS)],
            "emb": vector_array(np.stack([np.arange(ROWS), np.zeros(ROWS)], axis=1)),
        }
    )
    query = common_pb2.Query(datasource_id=data.datasource("parts_nearest", table))
    query.nearest.field, query.nearest.k = "emb", 3 * ROWS_PER_PARTITION
    query.nearest.metric = common_pb2.DISTANCE_METRIC_L2
    query.nearest.vector.values.extend([0.0, 0.0])
    assert partitions.id_ranges(query, 10 * ROWS, 1, ROWS, ROWS_PER_PARTITION) == [None]
    with fl.connect(f"grpc://127.0.0.1:{first.port}") as client:
        info = client.get_flight_info(
            command(estimated_query=flight_pb2.EstimatedQueryCommand(query=query))
            if estimated
            else command(query=query)
        )
    assert len(info.endpoints) == 1 and info.total_records == (-1 if estimated else 3 * ROWS_PER_PARTITION)
    assert not flight_pb2.FlightTicket.FromString(info.endpoints[0].ticket.ticket).query.HasField("id_range")
    result = _read(first, info.endpoints[0].ticket)
    assert result["path"].to_pylist() == [f"p{i:03d}" for i in range(3 * ROWS_PER_PARTITION)]
    assert result["distance"].to_pylist() == [float(i) for i in range(3 * ROWS_PER_PARTITION)]


@pytest.fixture(scope="module")
def in_process_replica(metadata_server, flight_home):
    """A flight service reading results from the store in its own process (``thresher up``), splitting
    results as the replicas do: its estimate comes from the store, not from a DescribeQuery call."""
    from thresher.services.auth.tokens import TokenTable
    from thresher.services.flight.server import create_server
    from thresher.services.metadata.data_port import InProcessDataPort

    address, store = metadata_server
    server, _ = create_server(
        "127.0.0.1:0",
        address,
        home=flight_home,
        partition_rows=ROWS_PER_PARTITION,
        data_port=InProcessDataPort(store, TokenTable()),
    )
    yield server
    server.shutdown()


def _planned_endpoints(server, query: common_pb2.Query) -> int:
    """How many endpoints ``server``'s GetFlightInfo plans for ``query`` on the store's estimate."""
    estimated = flight_pb2.FlightCommand(estimated_query=flight_pb2.EstimatedQueryCommand(query=query))
    with fl.connect(f"grpc://127.0.0.1:{server.port}") as client:
        descriptor = fl.FlightDescriptor.for_command(estimated.SerializeToString())
        return len(client.get_flight_info(descriptor).endpoints)


@pytest.mark.parametrize("replica", ["data-port", "grpc", "in-process"])
def test_a_one_round_trip_read_serves_one_partition_and_refuses_more(
    replicas, in_process_replica, source, data, replica
):
    """A DoGet with ``unless_partitioned`` (the client's read without GetFlightInfo) gets the whole result
    when the estimate plans one partition, as GetFlightInfo would, and FAILED_PRECONDITION "partitioned:"
    when it plans more."""
    _, first, second = replicas
    server = {"data-port": first, "grpc": second, "in-process": in_process_replica}[replica]
    tiny = data.datasource(
        f"tiny-{replica}", pa.table({"path": [f"t{i}" for i in range(ROWS_PER_PARTITION)], "n": range(7)})
    )

    def unless_partitioned(query: common_pb2.Query) -> fl.Ticket:
        ticket = flight_pb2.QueryTicket(query=query, unless_partitioned=True)
        return fl.Ticket(flight_pb2.FlightTicket(query=ticket).SerializeToString())

    def planned(query: common_pb2.Query) -> int:
        return _planned_endpoints(server, query)

    whole, limited = common_pb2.Query(datasource_id=source), _filtered(source, limit=ROWS)
    # Each engine estimates in its own way (DuckDB: the table's rows; PostgreSQL: its planner's guess),
    # so a query is served whole exactly when the estimated GetFlightInfo plans one endpoint.
    assert planned(whole) > 1 and planned(limited) == 1
    for query in (whole, limited, _filtered(source), common_pb2.Query(datasource_id=tiny)):
        if planned(query) == 1:
            assert _read(server, unless_partitioned(query)).equals(_read(server, query_ticket(query)))
        else:
            with pytest.raises(fl.FlightError, match="FAILED_PRECONDITION: partitioned: the result comes in"):
                _read(server, unless_partitioned(query))


@pytest.mark.parametrize("server", ["in-process", "data-port"])
def test_the_client_reads_small_results_in_one_round_trip_and_learns_partitioned_datasources(
    replicas, in_process_replica, source, data, server
):
    metadata_address, first, _ = replicas
    server_ = in_process_replica if server == "in-process" else first
    tiny = data.datasource(f"tiny-client-{server}", pa.table({"path": ["a", "b"], "n": [1, 2]}))
    queries = {source: common_pb2.Query(datasource_id=source), tiny: common_pb2.Query(datasource_id=tiny)}
    partitioned = {key for key, query in queries.items() if _planned_endpoints(server_, query) > 1}
    assert source in partitioned  # 50 rows in partitions of 7, on either engine's estimate
    connection = Connection(metadata_address=metadata_address, flight_address=f"127.0.0.1:{server_.port}")
    try:
        for _ in range(2):  # the second read of a partitioned datasource goes to GetFlightInfo at once
            for query in queries.values():
                assert connection.read_query(query).equals(_read(first, query_ticket(query)))
        assert connection._partitioned == partitioned  # noqa: SLF001 - what it learnt decides its next reads
    finally:
        connection.close()
