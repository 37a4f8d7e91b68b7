"""Load test of the replicated deployment: N clients mixing writes and queries for a bounded time.

Starts compose.yaml's services as local processes (two metadata and two flight replicas over one
PostgreSQL, see tests/deploy/compose_processes.py), then runs ``--clients`` threads, each talking to
one replica pair, for ``--seconds``. A client writes small batches (alternately gRPC UpsertMetadata
and Flight DoPut) to datasources it shares with the others, and queries them through Flight.
Reports throughput, p50/p99 latency per operation and errors (target: none), then reads everything
back and checks that every acknowledged write is there with its value.

    python benchmarks/load.py [--clients 8] [--seconds 20] [--datasources 2] [--batch 20]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.deploy.compose_processes import ComposeProcesses  # noqa: E402

import thresher  # noqa: E402
from thresher.types import to_proto_value  # noqa: E402
from thresher.v1 import common_pb2, metadata_service_pb2 as pb  # noqa: E402

TOKEN = "load-secret"
VARIABLES = {"THRESHER_TOKENS": f"{TOKEN}=load:*:write,scanner-secret=scanner:*:write",
             "THRESHER_SERVICE_TOKEN": "scanner-secret"}
NAMESPACE = f"load/run-{os.getpid()}"
REPLICAS = [(7470, 7472), (7480, 7473)]  # published (metadata, flight) ports of each replica pair


@dataclass
class Tally:
    """One client's latencies by operation, its errors, and the writes the services acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acknowledged: dict[tuple[int, str], float] = field(default_factory=dict)


def write_grpc(connection: thresher.Connection, datasource_id: int, rows: dict[str, float], client: int) -> None:
    connection.call_metadata("UpsertMetadata", pb.UpsertMetadataRequest(datasource_id=datasource_id, datapoints=[
        pb.DatapointValues(path=path, values={"value": to_proto_value(value), "client": to_proto_value(client)})
        for path, value in rows.items()], create_missing=True))


def write_flight(connection: thresher.Connection, datasource_id: int, rows: dict[str, float], client: int) -> None:
    table = pa.table({"path": list(rows), "value": list(rows.values()),
                      "client": pa.array([client] * len(rows), pa.int64())})
    connection.upsert_table(datasource_id, table, "path", create_missing=True)


def query(connection: thresher.Connection, datasource_id: int, client: int) -> int:
    condition = common_pb2.Filter(comparison=common_pb2.Comparison(
        field="client", op=common_pb2.COMPARISON_OPERATOR_EQ, value=to_proto_value(client)))
    return connection.read_query(common_pb2.Query(datasource_id=datasource_id, filter=condition)).num_rows


def run_client(client: int, addresses: tuple[str, str, str], datasource_ids: list[int], batch: int,
               write_ratio: float, deadline: float, tally: Tally) -> None:
    connection = thresher.Connection(*addresses, token=TOKEN, retry_timeout=5.0)
    rng = random.Random(client)
    sequence = 0
    while time.monotonic() < deadline:
        datasource_id = rng.choice(datasource_ids)
        if rng.random() < write_ratio:
            # Half the paths are this client's own, half shared with every client: contended rows.
            rows = {(f"c{client}/{sequence}-{i}" if i % 2 else f"shared/{rng.randrange(200)}"): rng.random()
                    for i in range(batch)}
            kind, write = (("write_grpc", write_grpc) if sequence % 2 else ("write_flight", write_flight))
            sequence += 1
            started = time.perf_counter()
            try:
                write(connection, datasource_id, rows, client)
            except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
                tally.errors.append(f"client {client} {kind}: {type(error).__name__}: {error}")
                continue
            tally.latencies[kind].append(time.perf_counter() - started)
            for path, value in rows.items():
                if not path.startswith("shared/"):
                    tally.acknowledged[(datasource_id, path)] = value
        else:
            started = time.perf_counter()
            try:
                query(connection, datasource_id, client)
            except Exception as error:  # noqa: BLE001
                tally.errors.append(f"client {client} query: {type(error).__name__}: {error}")
                continue
            tally.latencies["query"].append(time.perf_counter() - started)
    connection.close()


def verify(connection: thresher.Connection, datasource_ids: list[int], acknowledged: dict) -> list[str]:
    """Every acknowledged write on a client's own path must be there with its value."""
    problems = []
    for datasource_id in datasource_ids:
        table = connection.read_query(common_pb2.Query(datasource_id=datasource_id))
        stored = dict(zip(table["path"].to_pylist(), table["value"].to_pylist()))
        for (written_to, path), value in acknowledged.items():
            if written_to == datasource_id and stored.get(path) != value:
                problems.append(f"datasource {datasource_id} path {path}: wrote {value}, found {stored.get(path)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--datasources", type=int, default=2)
    parser.add_argument("--batch", type=int, default=20, help="rows per write")
    parser.add_argument("--write-ratio", type=float, default=0.5)
    args = parser.parse_args()

    print("starting compose.yaml's services as processes (PostgreSQL, 2 metadata, scanner, 2 flight) ...")
    with ComposeProcesses(os.path.join(ROOT, "compose.yaml"), VARIABLES) as deployment:
        replicas = [(deployment.published(m), deployment.published(f), deployment.published(7471)) for m, f in REPLICAS]
        admin = thresher.Connection(*replicas[0], token=TOKEN)
        datasource_ids = [admin.call_metadata("CreateDatasource", pb.CreateDatasourceRequest(
            namespace=NAMESPACE, name=f"ds{i}", source_uri="file:///load")).datasource.id
            for i in range(args.datasources)]
        for datasource_id in datasource_ids:  # so that the first queries find the fields
            admin.call_metadata("DefineFields", pb.DefineFieldsRequest(datasource_id=datasource_id, fields=[
                common_pb2.Field(name="value", type=common_pb2.FIELD_TYPE_FLOAT),
                common_pb2.Field(name="client", type=common_pb2.FIELD_TYPE_INT)]))
        tallies = [Tally() for _ in range(args.clients)]
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=run_client, args=(i, replicas[i % len(replicas)], datasource_ids,
                                                             args.batch, args.write_ratio, deadline, tallies[i]))
                   for i in range(args.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started

        latencies: dict[str, list[float]] = defaultdict(list)
        acknowledged: dict = {}
        errors = [error for tally in tallies for error in tally.errors]
        for tally in tallies:
            for kind, values in tally.latencies.items():
                latencies[kind].extend(values)
            acknowledged.update(tally.acknowledged)
        problems = verify(admin, datasource_ids, acknowledged)

    total = sum(len(v) for v in latencies.values())
    print(f"\n{args.clients} clients x {elapsed:.1f} s over 2 metadata + 2 flight replicas, "
          f"{args.datasources} shared datasources, {args.batch} rows per write")
    print(f"{'operation':<14}{'count':>8}{'per s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for kind in sorted(latencies):
        values = np.array(latencies[kind]) * 1000
        print(f"{kind:<14}{len(values):>8}{len(values) / elapsed:>10.1f}{np.percentile(values, 50):>10.1f}"
              f"{np.percentile(values, 99):>10.1f}")
    rows = sum(len(latencies[k]) for k in ("write_grpc", "write_flight")) * args.batch
    print(f"{'all':<14}{total:>8}{total / elapsed:>10.1f}   ({rows / elapsed:,.0f} rows written/s)")
    print(f"errors: {len(errors)} (target: none)")
    for error in errors[:10]:
        print("  ", error)
    print(f"acknowledged writes checked: {len(acknowledged)}, missing or wrong: {len(problems)}")
    for problem in problems[:10]:
        print("  ", problem)
    return 1 if errors or problems else 0


if __name__ == "__main__":
    sys.exit(main())
