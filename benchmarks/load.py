"""Load test of the replicated deployment: N clients mixing writes and queries for a bounded time.

Starts compose.yaml's services as local processes on loopback (two metadata and two flight replicas over
one PostgreSQL, see tests/deploy/compose_processes.py), with tokens and, by default, TLS (certificates made
for the run), then runs ``--clients`` threads, each talking to one replica pair, for ``--seconds``. A
client writes small batches (alternately gRPC UpsertMetadata and Flight DoPut) to datasources it shares
with the others, and queries them through Flight. Mid-run (``--kill-at`` seconds in) one service
(``--kill``, default metadata-2) is SIGKILLed and, ``--down-seconds`` later, restarted. Reports
throughput, p50/p99 latency per operation, and errors split into those inside the kill's window (from the
kill to a few seconds after the restart passed its health check) and those outside it (target: none),
then reads everything back and checks that every acknowledged write is there with its value.

``--soak-minutes N`` runs the same mix for N minutes without a kill and reports each service's resident
memory (RSS) at the start, its peak, and its growth (not for CI: it is meant to run for 10 minutes).

    python benchmarks/load.py [--clients 8] [--seconds 20] [--kill metadata-2|flight-1|none] [--no-tls]
    python benchmarks/load.py --soak-minutes 10
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import thresher  # noqa: E402
from tests.deploy.certificates import TLS_VARIABLES, make_certificates  # noqa: E402
from tests.deploy.compose_processes import ComposeProcesses  # noqa: E402
from thresher.core.types import to_proto_value  # noqa: E402
from thresher.v1 import common_pb2  # noqa: E402
from thresher.v1 import metadata_service_pb2 as pb  # noqa: E402

TOKEN = "load-secret"
VARIABLES = {
    "THRESHER_TOKENS": f"{TOKEN}=load:*:write,scanner-secret=scanner:*:write",
    "THRESHER_SERVICE_TOKEN": "scanner-secret",
}
NAMESPACE = f"load/run-{os.getpid()}"
REPLICAS = [(7470, 7472), (7480, 7473)]  # published (metadata, flight) ports of each replica pair
# After a restarted service passes its health check, callers reconnect within about a second (gRPC's
# reconnect backoff is capped at 1 s) and a call already waiting may still fail: the window ends this later.
WINDOW_GRACE_SECONDS = 3.0
SAMPLE_SECONDS = 10.0


@dataclass
class Tally:
    """One client's latencies by operation, its errors, and the writes the services acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time it failed, what)
    acknowledged: dict[tuple[int, str], float] = field(default_factory=dict)


def write_grpc(connection: thresher.Connection, datasource_id: int, rows: dict[str, float], client: int) -> None:
    connection.call_metadata(
        "UpsertMetadata",
        pb.UpsertMetadataRequest(
            datasource_id=datasource_id,
            datapoints=[
                pb.DatapointValues(path=path, values={"value": to_proto_value(value), "client": to_proto_value(client)})
                for path, value in rows.items()
            ],
            create_missing=True,
        ),
    )


def write_flight(connection: thresher.Connection, datasource_id: int, rows: dict[str, float], client: int) -> None:
    table = pa.table(
        {"path": list(rows), "value": list(rows.values()), "client": pa.array([client] * len(rows), pa.int64())}
    )
    connection.upsert_table(datasource_id, table, "path", create_missing=True)


def query(connection: thresher.Connection, datasource_id: int, client: int) -> int:
    condition = common_pb2.Filter(
        comparison=common_pb2.Comparison(
            field="client", op=common_pb2.COMPARISON_OPERATOR_EQ, value=to_proto_value(client)
        )
    )
    return connection.read_query(common_pb2.Query(datasource_id=datasource_id, filter=condition)).num_rows


def run_client(
    client: int,
    addresses: tuple[str, str, str],
    datasource_ids: list[int],
    batch: int,
    write_ratio: float,
    deadline: float,
    tally: Tally,
    roots: str | None,
) -> None:
    connection = thresher.Connection(*addresses, token=TOKEN, retry_timeout=5.0, root_certificates=roots)
    rng = random.Random(client)
    sequence = 0
    while time.monotonic() < deadline:
        datasource_id = rng.choice(datasource_ids)
        if rng.random() < write_ratio:
            # Half the paths are this client's own, half shared with every client: contended rows.
            rows = {
                (f"c{client}/{sequence}-{i}" if i % 2 else f"shared/{rng.randrange(200)}"): rng.random()
                for i in range(batch)
            }
            kind, write = ("write_grpc", write_grpc) if sequence % 2 else ("write_flight", write_flight)
            sequence += 1
            started = time.perf_counter()
            try:
                write(connection, datasource_id, rows, client)
            except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
                tally.errors.append((time.monotonic(), f"client {client} {kind}: {type(error).__name__}: {error}"))
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
                tally.errors.append((time.monotonic(), f"client {client} query: {type(error).__name__}: {error}"))
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


class KillAndRestart(threading.Thread):
    """SIGKILLs one service at ``at`` (monotonic) and restarts it ``down`` seconds later; records when."""

    def __init__(self, deployment: ComposeProcesses, service: str, at: float, down: float) -> None:
        super().__init__(name=f"kill-{service}", daemon=True)
        self.deployment, self.service, self.at, self.down = deployment, service, at, down
        self.killed_at: float | None = None
        self.healthy_at: float | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            time.sleep(max(0.0, self.at - time.monotonic()))
            self.killed_at = time.monotonic()  # before the signal: calls fail from the moment it lands
            self.deployment.kill(self.service)
            time.sleep(self.down)
            self.deployment.restart(self.service)
            self.healthy_at = time.monotonic()
        except BaseException as error:  # noqa: BLE001 - reported by main
            self.failure = error

    def window(self) -> tuple[float, float] | None:
        if self.killed_at is None:
            return None
        return self.killed_at, (self.healthy_at or float("inf")) + WINDOW_GRACE_SECONDS


def rss_bytes(pid: int) -> int | None:
    """The resident memory of process ``pid`` (Linux), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class MemorySampler(threading.Thread):
    """Samples every service process's RSS every SAMPLE_SECONDS until ``stop`` is set."""

    def __init__(self, deployment: ComposeProcesses) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.deployment = deployment
        self.samples: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self.stop = threading.Event()

    def sample(self) -> None:
        now = time.monotonic()
        for name, pid in self.deployment.pids().items():
            rss = rss_bytes(pid)
            if rss is not None:
                self.samples[name].append((now, rss))

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            self.sample()

    def report(self) -> None:
        print(
            f"\nresident memory per service (sampled every {SAMPLE_SECONDS:.0f} s; the first sample is after "
            "a warm-up of the same mix)"
        )
        print(f"{'service':<14}{'start MB':>10}{'peak MB':>10}{'end MB':>10}{'growth MB':>11}{'MB/hour':>10}")
        for name in sorted(self.samples):
            samples = self.samples[name]
            (t0, first), (t1, last) = samples[0], samples[-1]
            peak = max(rss for _, rss in samples)
            hours = max(t1 - t0, 1e-9) / 3600
            mb = 1 << 20
            print(
                f"{name:<14}{first / mb:>10.1f}{peak / mb:>10.1f}{last / mb:>10.1f}{(last - first) / mb:>11.1f}"
                f"{(last - first) / mb / hours:>10.1f}"
            )


def run_mix(
    replicas: list[tuple[str, str, str]], datasource_ids: list[int], args, roots: str | None, seconds: float
) -> tuple[list[Tally], float, float]:
    """Runs the clients for ``seconds``; returns their tallies, when they started and how long they ran."""
    tallies = [Tally() for _ in range(args.clients)]
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=run_client,
            args=(
                i,
                replicas[i % len(replicas)],
                datasource_ids,
                args.batch,
                args.write_ratio,
                deadline,
                tallies[i],
                roots,
            ),
        )
        for i in range(args.clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tallies, started, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--datasources", type=int, default=2)
    parser.add_argument("--batch", type=int, default=20, help="rows per write")
    parser.add_argument("--write-ratio", type=float, default=0.5)
    parser.add_argument("--no-tls", dest="tls", action="store_false", help="plaintext between every part")
    parser.add_argument("--kill", default="metadata-2", help="the service to SIGKILL mid-run and restart ('none')")
    parser.add_argument("--kill-at", type=float, default=None, help="seconds into the run (default: a third)")
    parser.add_argument("--down-seconds", type=float, default=3.0, help="how long the killed service stays down")
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=0.0,
        help="run this long without a kill and report each service's memory growth",
    )
    args = parser.parse_args()
    soak = args.soak_minutes > 0
    seconds = args.soak_minutes * 60 if soak else args.seconds
    kill = None if soak or args.kill == "none" else args.kill

    scratch = tempfile.TemporaryDirectory(prefix="thresher-load-")
    variables = dict(VARIABLES)
    roots = None
    if args.tls:
        tls = make_certificates(Path(scratch.name))
        variables.update(TLS_VARIABLES, THRESHER_TLS_DIR=str(tls))
        roots = str(tls / "ca.pem")
    print(
        f"starting compose.yaml's services as processes (PostgreSQL, 2 metadata, scanner, 2 flight; tokens, "
        f"{'TLS' if args.tls else 'no TLS'}) ..."
    )
    with ComposeProcesses(os.path.join(ROOT, "compose.yaml"), variables) as deployment:
        replicas = [(deployment.published(m), deployment.published(f), deployment.published(7471)) for m, f in REPLICAS]
        admin = thresher.Connection(*replicas[0], token=TOKEN, root_certificates=roots)
        datasource_ids = [
            admin.call_metadata(
                "CreateDatasource",
                pb.CreateDatasourceRequest(namespace=NAMESPACE, name=f"ds{i}", source_uri="file:///load"),
            ).datasource.id
            for i in range(args.datasources)
        ]
        for datasource_id in datasource_ids:  # so that the first queries find the fields
            admin.call_metadata(
                "DefineFields",
                pb.DefineFieldsRequest(
                    datasource_id=datasource_id,
                    fields=[
                        common_pb2.Field(name="value", type=common_pb2.FIELD_TYPE_FLOAT),
                        common_pb2.Field(name="client", type=common_pb2.FIELD_TYPE_INT),
                    ],
                ),
            )
        sampler = MemorySampler(deployment)
        if soak:  # warm up first: a service's first minutes of memory are caches and pools filling, not growth
            run_mix(replicas, datasource_ids, args, roots, min(60.0, seconds / 10))
            sampler.sample()
            sampler.start()
        killer = None
        if kill is not None:
            kill_at = args.kill_at if args.kill_at is not None else seconds / 3
            killer = KillAndRestart(deployment, kill, time.monotonic() + kill_at, args.down_seconds)
            killer.start()
        tallies, started, elapsed = run_mix(replicas, datasource_ids, args, roots, seconds)
        if killer is not None:
            killer.join()
        if soak:
            sampler.stop.set()
            sampler.join()
            sampler.sample()

        latencies: dict[str, list[float]] = defaultdict(list)
        acknowledged: dict = {}
        errors = sorted(error for tally in tallies for error in tally.errors)
        for tally in tallies:
            for kind, values in tally.latencies.items():
                latencies[kind].extend(values)
            acknowledged.update(tally.acknowledged)
        problems = verify(admin, datasource_ids, acknowledged)
    scratch.cleanup()

    window = killer.window() if killer is not None else None
    inside = [e for e in errors if window is not None and window[0] <= e[0] <= window[1]]
    outside = [e for e in errors if e not in inside]
    total = sum(len(v) for v in latencies.values())
    print(
        f"\n{args.clients} clients x {elapsed:.1f} s over 2 metadata + 2 flight replicas, tokens, "
        f"{'TLS' if args.tls else 'no TLS'}, {args.datasources} shared datasources, {args.batch} rows per write"
    )
    print(f"{'operation':<14}{'count':>8}{'per s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for kind in sorted(latencies):
        values = np.array(latencies[kind]) * 1000
        print(
            f"{kind:<14}{len(values):>8}{len(values) / elapsed:>10.1f}{np.percentile(values, 50):>10.1f}"
            f"{np.percentile(values, 99):>10.1f}"
        )
    rows = sum(len(latencies[k]) for k in ("write_grpc", "write_flight")) * args.batch
    print(f"{'all':<14}{total:>8}{total / elapsed:>10.1f}   ({rows / elapsed:,.0f} rows written/s)")
    if killer is not None:
        if killer.failure is not None:
            print(f"the kill and restart of {kill} failed: {killer.failure}")
        else:
            print(
                f"{kill}: SIGKILLed {killer.killed_at - started:.1f} s in, healthy again "
                f"{killer.healthy_at - killer.killed_at:.1f} s later; window ends {WINDOW_GRACE_SECONDS:.0f} s after"
            )
        print(f"errors inside the kill's window: {len(inside)}")
        for when, error in inside[:5]:
            print(f"   {when - started:6.1f} s  {error[:200]}")
    print(f"errors{' outside it' if killer is not None else ''}: {len(outside)} (target: none)")
    for when, error in outside[:10]:
        print(f"   {when - started:6.1f} s  {error[:200]}")
    print(f"acknowledged writes checked: {len(acknowledged)}, missing or wrong: {len(problems)}")
    for problem in problems[:10]:
        print("  ", problem)
    if soak:
        sampler.report()
    failed_kill = killer is not None and killer.failure is not None
    return 1 if outside or problems or failed_kill else 0


if __name__ == "__main__":
    sys.exit(main())
