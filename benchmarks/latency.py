"""Interactive latency: p50/p99 of small reads against a bare gRPC unary echo on loopback (the floor).

In the same run, against ``thresher up`` in a child process (DuckDB store) holding ``--rows``
datapoints with a few fields:

* echo: a bare gRPC unary call (bytes in, the same bytes out) to a server in a process of its own;
* ``get_datapoint`` of random paths of the whole datasource (targets: p50 <= 2x echo and <= 1 ms on
  a quiet machine), served by the store's in-memory path index: the benchmark makes the lookups that
  start reading it, waits for the services' log to say it is read (and prints that line: rows, size,
  read time), then measures. In turns with it: the same lookups through Flight
  (``direct_read_rows=0``, the path every read took before) and as the same ReadQuery on a channel of
  its own per call (dial, handshake, call, close) to show what connection reuse saves;
* ``get_datapoint`` of random paths right after a write: the write drops the index and the store
  answers with its compiled statement until lookups come back (``BUILD_AFTER`` of them), so each write
  is followed by one lookup fewer than that, all measured (the writes are not);
* ``get_datapoints`` of 100 paths, ``count()`` with and without a filter, a 100-row query, ``fields``;
* FiftyOne's ``dataset[sample_id]`` on the same data, where fiftyone is installed and its database
  starts: its bundled mongod needs OpenSSL 1.1, which ``scripts/fetch_libssl11.sh`` unpacks into
  ``.cache/libssl1.1`` (the default of ``$THRESHER_LIBSSL11_DIR`` here); its database lives in a
  temporary folder and is stopped at the end.

Every row prints its p50 as a multiple of the echo's, the echo measured in turns with that row's
calls (so load that comes and goes weighs on both), and the run starts and ends with the load
average: on a busy machine compare ratios, not milliseconds.

Run: ``python benchmarks/latency.py [--rows 1000000] [--calls 300] [--no-fiftyone]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
from service_process import ServiceProcess, empty_datasource

ECHO_SERVER = """
import sys, time
from concurrent import futures
import grpc
handler = grpc.method_handlers_generic_handler("bench.Echo", {
    "Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
"""


def timings(call: Callable[[], object], calls: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        call()
    spent = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return spent


def interleaved(calls: dict[str, Callable[[], object]], rounds: int, warmup: int = 20) -> dict[str, list[float]]:
    """Timings of each call, taken in turns, so load from elsewhere on the machine weighs on all alike."""
    spent: dict[str, list[float]] = {name: [] for name in calls}
    for round_number in range(warmup + rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            if round_number >= warmup:
                spent[name].append(time.perf_counter() - started)
    return spent


def report(name: str, spent: list[float], floor: float | None) -> float:
    p50 = statistics.median(spent)
    p99 = float(np.percentile(spent, 99))
    ratio = f"{p50 / floor:6.1f}x echo" if floor else ""
    print(f"{name:<44} p50 {p50 * 1e3:8.3f} ms   p99 {p99 * 1e3:8.3f} ms   {ratio}", flush=True)
    return p50


class Echo:
    """The floor, measured in turns with each row: a row's ratio is to the echo of the same moments,
    so load that comes and goes on a shared machine weighs on both."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.call = call
        self.spent: list[float] = []

    def row(self, name: str, call: Callable[[], object], calls: int) -> float:
        spent = interleaved({"echo": self.call, name: call}, calls)
        self.spent += spent["echo"]
        return report(name, spent[name], statistics.median(spent["echo"]))


@contextlib.contextmanager
def echo_server() -> Iterator[Callable[[], object]]:
    """A bare gRPC unary echo in a process of its own, and a call of it on loopback."""
    server = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary("/bench.Echo/Echo")
            payload = b"x" * 64
            yield lambda: echo(payload, timeout=10)
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "path": [f"images/{i:08d}.jpg" for i in range(rows)],
            "label": np.array(["cat", "dog", "bird", "fish"])[rng.integers(0, 4, rows)],
            "width": rng.integers(100, 2000, rows),
            "score": rng.random(rows),
            "reviewed": rng.random(rows) < 0.1,
        }
    )


def load_average() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "unknown"


def fiftyone_row(frame: pd.DataFrame, calls: int, echo: Echo) -> None:
    # Its own database folder (a shared ~/.fiftyone may hold another user's running mongod), and the
    # OpenSSL 1.1 its bundled mongod links against.
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", tempfile.mkdtemp(prefix="fiftyone-latency-"))
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("THRESHER_LIBSSL11_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "libssl1.1"))
    try:
        from thresher.ml.voxel51 import fiftyone

        fo = fiftyone()
        fo.config.show_progress_bars = False
        dataset = fo.Dataset()
        dataset.add_samples(
            [
                fo.Sample(
                    filepath=f"/data/{row.path}",
                    label=row.label,
                    width=int(row.width),
                    score=float(row.score),
                    reviewed=bool(row.reviewed),
                )
                for row in frame.itertuples()
            ]
        )
    except Exception as error:  # noqa: BLE001 - a peer that cannot start is skipped, with the reason
        print(f"{'FiftyOne dataset[sample_id]':<44} skipped: {type(error).__name__}: {error}"[:200])
        return
    try:
        ids = dataset.values("id")
        rng = random.Random(1)
        echo.row(f"FiftyOne dataset[sample_id] ({len(frame):,}, peer)", lambda: dataset[rng.choice(ids)], calls)
    finally:
        dataset.delete()
        import fiftyone.core.odm.database as database

        database._disconnect()
        if database._db_service is not None:  # the mongod it started
            database._db_service.stop()


def path_index_logged(log_path: str, datasource_id: int, timeout: float = 120) -> str:
    """What the services' log says of the datasource's path index, once it says it (read, or refused)."""
    said = (f"path index of datasource {datasource_id}:", f"datasource {datasource_id} passes")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path) as log:
            for line in log:
                for words in said:
                    if words in line:
                        return words + line.split(words, 1)[1].rstrip()
        time.sleep(0.05)
    return f"no word of datasource {datasource_id}'s path index in {timeout:.0f} s: lookups took the statement"


def after_writes(ds, paths: list[str], echo: Echo, calls: int) -> None:
    """get_datapoint of random paths, ``BUILD_AFTER - 1`` after each small write: the store's statement
    path (the write dropped the index, and that few lookups do not start reading another)."""
    from thresher.services.metadata.path_index import BUILD_AFTER

    rng = random.Random(2)
    per_write = BUILD_AFTER - 1
    spent: dict[str, list[float]] = {"echo": [], "lookup": []}
    for round_number in range(max(calls // per_write, 2) + 1):  # the first round warms up
        with ds.metadata_context() as ctx:
            ctx.update_metadata(rng.choice(paths), {"reviewed": bool(round_number % 2)})
        for name, took in interleaved(
            {"echo": echo.call, "lookup": lambda: ds.get_datapoint(rng.choice(paths))}, per_write, 0
        ).items():
            if round_number:
                spent[name] += took
    echo.spent += spent["echo"]
    name = "get_datapoint after a write (statement)"
    report(name, spent["lookup"], statistics.median(spent["echo"]))


def small_reads(
    ds, paths: list[str], env: dict[str, str], echo: Echo, calls: int, log_path: str
) -> tuple[float, float]:
    """The rows of Thresher's small reads; returns get_datapoint's p50 and the echo's beside it."""
    from thresher.connection import Connection
    from thresher.core.transport import open_channel
    from thresher.datasource import Datasource
    from thresher.query import QuerySpec
    from thresher.services.metadata.path_index import BUILD_AFTER
    from thresher.v1.metadata_service_pb2 import ReadQueryRequest
    from thresher.v1.metadata_service_pb2_grpc import MetadataServiceStub

    rng = random.Random(0)
    addresses = (env["THRESHER_METADATA_ADDRESS"], env["THRESHER_FLIGHT_ADDRESS"], env["THRESHER_SCANNER_ADDRESS"])
    via_flight = Datasource(Connection(*addresses, direct_read_rows=0), ds._shared.proto)

    def fresh_connection_lookup() -> None:
        # What a client without shared channels pays: dial, handshake, the same ReadQuery, close, on
        # a channel of its own (Connections share theirs, which stays open while one holds it).
        with open_channel(addresses[0]) as channel:
            query = QuerySpec(filter=ds.column("path") == rng.choice(paths), limit=1).to_proto(ds.id)
            answer = MetadataServiceStub(channel).ReadQuery(ReadQueryRequest(query=query, max_rows=1), timeout=10)
            pa.ipc.open_stream(answer.arrow_stream).read_all()

    # Random paths of the whole datasource, answered by the store's path index once it is read: the
    # lookups that start reading it, then the services' word that it is read.
    for _ in range(BUILD_AFTER):
        ds.get_datapoint(rng.choice(paths))
    print(f"(path index: {path_index_logged(log_path, ds.id)})", flush=True)
    lookups = interleaved(
        {
            "echo": echo.call,
            "get_datapoint (random path, path index)": lambda: ds.get_datapoint(rng.choice(paths)),
            "get_datapoint through Flight (before)": lambda: via_flight.get_datapoint(rng.choice(paths)),
            "get_datapoint, fresh connection per call": fresh_connection_lookup,
        },
        calls,
    )
    lookup_floor = statistics.median(lookups.pop("echo"))
    lookup = [report(name, spent, lookup_floor) for name, spent in lookups.items()][0]
    echo.row("get_datapoints (100 paths)", lambda: ds.get_datapoints(rng.sample(paths, 100)), max(calls // 3, 10))
    echo.row("count()", ds.count, calls)
    filtered = ds[(ds["label"] == "cat") & (ds["score"] > 0.5)]
    echo.row("count() with a filter", filtered.count, max(calls // 3, 10))
    echo.row("100-row query (filter, limit 100)", lambda: filtered.head(100), calls)
    echo.row("fields", lambda: ds.fields, calls)
    after_writes(ds, paths, echo, calls)  # last: its writes drop the index
    return lookup, lookup_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument(
        "--fiftyone-rows",
        type=int,
        default=200_000,
        help="datapoints in the FiftyOne peer's dataset (loading it is slow)",
    )
    parser.add_argument("--no-fiftyone", action="store_true")
    args = parser.parse_args()
    import thresher

    frame = make_frame(args.rows)
    print(
        f"data: {args.rows:,} datapoints x {len(frame.columns) - 1} fields; {args.calls} calls per row; "
        f"p50/p99 per call; load average {load_average()}"
    )
    with echo_server() as echo_call:
        report("gRPC unary echo (floor)", timings(echo_call, args.calls), None)
        echo = Echo(echo_call)
        log_path = os.path.join(tempfile.mkdtemp(prefix="thresher-latency-"), "services.log")
        with ServiceProcess(log_path=log_path) as services:
            services.connect()
            ds = empty_datasource("bench/latency", "images")
            started = time.perf_counter()
            for start in range(0, args.rows, 250_000):
                ds.upload_metadata_from_dataframe(frame.iloc[start : start + 250_000], create_missing=True)
            print(f"(loaded in {time.perf_counter() - started:.1f} s)")
            lookup, lookup_floor = small_reads(
                ds, frame["path"].tolist(), services.environment, echo, args.calls, log_path
            )
            thresher.connection.set_default_connection(None)
        if not args.no_fiftyone:
            fiftyone_row(frame.iloc[: args.fiftyone_rows], args.calls, echo)
    ratio, absolute = lookup <= 2 * lookup_floor, lookup <= 1e-3
    print(
        f"get_datapoint p50 {lookup * 1e3:.3f} ms = {lookup / lookup_floor:.1f}x echo: "
        f"{'meets' if ratio else 'misses'} <= 2x echo, {'meets' if absolute else 'misses'} <= 1 ms "
        "(the target: both, on a quiet machine)"
    )
    print(f"load average at the end: {load_average()}")
    os.environ.pop("THRESHER_METADATA_ADDRESS", None)


if __name__ == "__main__":
    main()
