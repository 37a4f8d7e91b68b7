"""Flight relay of a large result vs a bare pyarrow Flight server streaming the same table (docs/design.md, "Performance targets": ≥ 0.8×).

Three ways to fetch the same 2M × 10 table with pyarrow's Flight client:

* bare: a pyarrow Flight server whose DoGet returns the table (C++ all the way);
* relay: Thresher's flight service in front of a stand-in metadata service, in a process of its own as
  when deployed, that serves the table on a data port as the real one streams a result (``--relay grpc``:
  over its gRPC ExecuteQuery stream instead, as pre-encoded IPC messages framed as the real one frames
  them). This isolates the relay, which is the row's target;
* end to end: ``thresher up`` (the flight service in front of the real metadata service on DuckDB) in a
  child process, for reference.

Bare and relay fetches alternate, so load from elsewhere on the machine weighs on both alike.
Run: ``python benchmarks/flight_relay.py [--rows N] [--repeat K] [--no-end-to-end] [--relay data-port|grpc]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl

from thresher.core import arrow_io
from thresher.services.flight.server import create_server as create_flight
from thresher.services.grpc_server import finish_server, new_server
from thresher.v1 import common_pb2, flight_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb


def make_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(0)
    columns = {
        "path": pa.array([f"images/{i:08d}.jpg" for i in range(rows)]),
        "datapoint_id": pa.array(np.arange(1, rows + 1, dtype=np.int64)),
    }
    for i in range(4):
        columns[f"i{i}"] = pa.array(rng.integers(0, 1_000_000, rows, dtype=np.int64))
    for i in range(4):
        columns[f"f{i}"] = pa.array(rng.random(rows))
    return pa.table(columns)


class BareServer(fl.FlightServerBase):
    def __init__(self, table: pa.Table) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self._table = table

    def do_get(self, context, ticket):
        return fl.RecordBatchStream(self._table)


class StandInMetadata(metadata_service_pb2_grpc.MetadataServiceServicer):
    """Answers ExecuteQuery with the table's IPC messages, encoded once up front."""

    def __init__(self, table: pa.Table) -> None:
        self._schema = arrow_io.serialize_schema(table.schema)
        self._batches = list(arrow_io.serialize_batches(table.to_batches()))

    def ExecuteQuery(self, request, context):
        yield mpb.ExecuteQueryResponse(schema=self._schema)
        for message in self._batches:
            yield mpb.ExecuteQueryResponse(record_batch=message)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch_seconds(client: fl.FlightClient, ticket: bytes, expected_rows: int) -> float:
    start = time.perf_counter()
    table = client.do_get(fl.Ticket(ticket)).read_all()
    elapsed = time.perf_counter() - start
    assert table.num_rows == expected_rows, table.num_rows
    return elapsed


class StandInDataPort(fl.FlightServerBase):
    """Answers the data port's DoGet(ExecuteQueryRequest) with the table, as the real one streams a result."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self._table = table

    def do_get(self, context, ticket):
        mpb.ExecuteQueryRequest.FromString(ticket.ticket)
        return fl.RecordBatchStream(self._table)


def serve_stand_in(rows: int) -> None:
    """The stand-in metadata service's process: prints its gRPC and data ports, serves until killed."""
    table = benchmark_table(rows)
    server = new_server()
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(StandInMetadata(table), server)
    server, port = finish_server(server, "127.0.0.1:0", ["thresher.v1.MetadataService"])
    data_port = StandInDataPort(table)
    print(port, data_port.port, flush=True)
    server.wait_for_termination()


def benchmark_table(rows: int) -> pa.Table:
    """The table, in the batches the metadata service's framing makes of it."""
    table = make_table(rows)
    return pa.Table.from_batches(list(arrow_io.split_batch(table.combine_chunks().to_batches()[0])))


def upload(metadata_address: str, table: pa.Table) -> int:
    from thresher.core.transport import open_channel

    with open_channel(metadata_address) as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        source = stub.CreateDatasource(
            mpb.CreateDatasourceRequest(namespace="bench/relay", name="t", source_uri="file:///nowhere")
        ).datasource
        data = table.drop_columns(["datapoint_id"])

        stub.UpsertTable(
            arrow_io.upsert_table_requests(source.id, "path", data.schema, data.to_batches(), create_missing=True)
        )
        return source.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the run through the real metadata service")
    parser.add_argument(
        "--relay",
        choices=["data-port", "grpc"],
        default="data-port",
        help="how the flight service reads results: the metadata data port (as deployed), or gRPC",
    )
    parser.add_argument("--serve-stand-in", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stand_in:
        return serve_stand_in(args.rows)

    table = benchmark_table(args.rows)
    megabytes = table.nbytes / 2**20
    print(
        f"table: {table.num_rows:,} rows x {table.num_columns} columns, {megabytes:,.0f} MiB, "
        f"{len(table.to_batches())} batches"
    )
    query = flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=common_pb2.Query(datasource_id=1)))

    stand_in = subprocess.Popen(
        [sys.executable, __file__, "--serve-stand-in", "--rows", str(args.rows)], stdout=subprocess.PIPE, text=True
    )
    bare = BareServer(table)
    grpc_port, data_port = stand_in.stdout.readline().split()
    data_address = f"127.0.0.1:{data_port}" if args.relay == "data-port" else ""
    flight, flight_port = create_flight("127.0.0.1:0", f"127.0.0.1:{grpc_port}", metadata_data_address=data_address)
    relays = [("thresher flight relay", flight_port)]
    if args.relay == "data-port":
        # The same relay with a thread reading the data port's stream ahead of the writer, for comparison.
        direct, direct_port = create_flight("127.0.0.1:0", f"127.0.0.1:{grpc_port}", metadata_data_address=data_address)
        direct._data_port.read_ahead = 4  # a private knob of the flight service, set for this comparison only
        relays.append(("relay, read-ahead thread", direct_port))
    bare_times: list[float] = []
    relay_times: dict[str, list[float]] = {name: [] for name, _ in relays}
    # CPU seconds per fetch: this process (the bare server or the relay, and the client) and the stand-in.
    bare_cpu: list[float] = []
    relay_cpu: list[tuple[float, float]] = []
    clients = []
    try:
        with fl.connect(f"grpc://127.0.0.1:{bare.port}") as bare_client:
            clients = [(name, fl.connect(f"grpc://127.0.0.1:{port}")) for name, port in relays]
            for attempt in range(args.repeat + 1):  # the first round warms up
                own = os.getpid()
                before = cpu_seconds(own)
                bare_seconds = fetch_seconds(bare_client, b"", table.num_rows)
                if attempt:
                    bare_cpu.append(cpu_seconds(own) - before)
                for name, client in clients:
                    before, upstream = cpu_seconds(own), cpu_seconds(stand_in.pid)
                    seconds = fetch_seconds(client, query.SerializeToString(), table.num_rows)
                    if attempt:
                        relay_times[name].append(seconds)
                        if name == relays[0][0]:
                            relay_cpu.append((cpu_seconds(stand_in.pid) - upstream, cpu_seconds(own) - before))
                if attempt:
                    bare_times.append(bare_seconds)
    finally:
        for _, client in clients:
            client.close()
        flight.shutdown()
        if len(relays) > 1:
            direct.shutdown()
        bare.shutdown()
        stand_in.kill()
    bare_seconds = statistics.median(bare_times)
    print(f"bare pyarrow Flight server: {bare_seconds:.3f} s ({megabytes / bare_seconds:,.0f} MiB/s)")
    for name, times in relay_times.items():
        ratios = [b / r for b, r in zip(bare_times, times, strict=True)]
        seconds = statistics.median(times)
        print(
            f"{name + ':':27s} {seconds:.3f} s ({megabytes / seconds:,.0f} MiB/s), vs bare "
            f"{statistics.median(ratios):.2f}x (target >= 0.8x; runs: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    upstream_cpu = statistics.median(cpu for cpu, _ in relay_cpu)
    relay_client_cpu = statistics.median(cpu for _, cpu in relay_cpu)
    print(
        f"CPU seconds per fetch: bare (server + client) {statistics.median(bare_cpu):.3f}; relay: data port "
        f"{upstream_cpu:.3f} + relay and client {relay_client_cpu:.3f} = {upstream_cpu + relay_client_cpu:.3f}"
    )
    with open("/proc/loadavg") as file:
        print(f"load average: {' '.join(file.read().split()[:3])}")

    if not args.no_end_to_end:
        end_to_end(table, args.repeat, bare_seconds)


def end_to_end(table: pa.Table, repeat: int, bare_seconds: float) -> None:
    """The same fetch through ``thresher up`` (metadata service on DuckDB, flight service) in a child process."""
    from service_process import ServiceProcess

    megabytes = table.nbytes / 2**20
    with ServiceProcess() as services:
        datasource_id = upload(services.environment["THRESHER_METADATA_ADDRESS"], table)
        ticket = flight_pb2.FlightTicket(
            query=flight_pb2.QueryTicket(query=common_pb2.Query(datasource_id=datasource_id))
        ).SerializeToString()
        with fl.connect(f"grpc://{services.environment['THRESHER_FLIGHT_ADDRESS']}") as client:
            fetch_seconds(client, ticket, table.num_rows)
            seconds = statistics.median(fetch_seconds(client, ticket, table.num_rows) for _ in range(repeat))
    print(
        f"end to end (thresher up):   {seconds:.3f} s ({megabytes / seconds:,.0f} MiB/s), "
        f"{bare_seconds / seconds:.2f}x of bare"
    )


if __name__ == "__main__":
    main()
