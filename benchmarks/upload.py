"""Upload N rows x 10 fields of metadata from a dataframe, then update 10% of them (target >= 1M rows/s).

End to end: pandas -> Arrow -> Flight DoPut -> flight service -> metadata service -> store, committed
atomically; once over the embedded DuckDB store and once over PostgreSQL (a throwaway cluster, as the
deployment tests start one). Peers measured in the same run: DuckDB's own in-process insert of the
same Arrow table, and the embedded store for PostgreSQL. Prints each services process's memory peak
(and the PostgreSQL cluster's).

Besides wall-clock time it prints CPU seconds: the services process's (every thread of the three
services `thresher up` runs in it) and the client's, against the CPU seconds of DuckDB's own insert.
On a shared machine wall time mostly measures the other tenants; CPU time is what the upload costs.

    python benchmarks/upload.py [--rows 1000000] [--no-postgres]
    python benchmarks/upload.py --rows 10000000 --no-postgres   # the 10M run (minutes; not in CI)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from service_process import ServiceProcess, descendants, empty_datasource, peak_rss_mib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.array(["cat", "dog", "bird", "fish"])
    return pd.DataFrame(
        {
            "path": [f"images/{i:08d}.png" for i in range(rows)],
            "episode": rng.integers(0, 100, rows),
            "frame": np.arange(rows),
            "camera": rng.integers(0, 4, rows),
            "score": rng.random(rows),
            "x": rng.random(rows),
            "y": rng.random(rows),
            "label": pd.array(labels[rng.integers(0, 4, rows)], dtype="string"),
            "split": pd.array(np.where(rng.random(rows) < 0.8, "train", "val"), dtype="string"),
            "reviewed": rng.random(rows) < 0.3,
            "captured": pd.to_datetime(rng.integers(1.6e9, 1.7e9, rows), unit="s", utc=True),
        }
    )


def duckdb_insert(table: pa.Table, where: str) -> tuple[float, float]:
    """(seconds, CPU seconds) for DuckDB itself to insert ``table`` into a new table at ``where`` and commit."""
    con = duckdb.connect(where)
    con.register("source_table", table)
    started, cpu = time.perf_counter(), time.process_time()
    con.execute("CREATE TABLE t AS SELECT * FROM source_table").fetchall()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    con.close()
    return took, cpu


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user + system) the processes have used so far."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def run_uploads(frame: pd.DataFrame, name: str) -> dict[str, float]:
    """Seconds and CPU seconds of the new-rows upload and the update, and the services' memory peak (MiB)."""
    services = ServiceProcess()
    with services:
        services.connect()
        warm = empty_datasource(f"bench/{name}", "warmup")
        warm.upload_metadata_from_dataframe(frame.head(50_000), path_column="path", create_missing=True)
        ds = empty_datasource(f"bench/{name}", "table")
        pids = descendants(services._process.pid)
        tenth = frame.sample(frac=0.1, random_state=2).sort_index()
        updated = tenth[["path"]].assign(score=tenth["score"] + 1, label="reviewed")
        result: dict[str, float] = {}
        for step, data, create in (("new", frame, True), ("update", updated, False)):
            started, cpu, client = time.perf_counter(), cpu_seconds(pids), time.process_time()
            ds.upload_metadata_from_dataframe(data, path_column="path", create_missing=create)
            result[step] = time.perf_counter() - started
            result[f"{step}_cpu"] = cpu_seconds(pids) - cpu
            result[f"{step}_client_cpu"] = time.process_time() - client
        assert ds.count() == len(frame)
        result["memory"] = peak_rss_mib(descendants(services._process.pid))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL row")
    args = parser.parse_args()
    frame = make_frame(args.rows)
    rows, updates = args.rows, len(frame) // 10
    print(f"data: {rows:,} rows x {len(frame.columns) - 1} fields; updates: {updates:,} rows x 2 fields")
    os.environ.pop("THRESHER_POSTGRES_URL", None)
    embedded = run_uploads(frame, "embedded")
    new_s, update_s = embedded["new"], embedded["update"]
    pg = None
    if not args.no_postgres:
        from tests.deploy.postgres import throwaway_postgres

        with throwaway_postgres() as server:
            os.environ["THRESHER_POSTGRES_URL"] = server.url
            try:
                pg = run_uploads(frame, "postgres")
                with open(os.path.join(server.data, "postmaster.pid")) as pid_file:
                    pg_memory = peak_rss_mib(descendants(int(pid_file.readline())))
            finally:
                os.environ.pop("THRESHER_POSTGRES_URL", None)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    duckdb_s, _ = duckdb_insert(table, ":memory:")
    with tempfile.TemporaryDirectory(prefix="thresher-bench-duckdb-") as folder:
        duckdb_file_s, duckdb_file_cpu = duckdb_insert(table, os.path.join(folder, "peer.duckdb"))
    print(
        f"embedded store, new datapoints:  {rows / new_s:12,.0f} rows/s ({new_s:.2f} s; CPU: services "
        f"{embedded['new_cpu']:.2f} s, client {embedded['new_client_cpu']:.2f} s)"
    )
    print(
        f"embedded store, update 10%:      {updates / update_s:12,.0f} rows/s ({update_s:.2f} s; CPU: services "
        f"{embedded['update_cpu']:.2f} s, client {embedded['update_client_cpu']:.2f} s)"
    )
    print(f"duckdb in-process insert:        {rows / duckdb_s:12,.0f} rows/s ({duckdb_s:.2f} s)")
    print(
        f"duckdb insert into a file:       {rows / duckdb_file_s:12,.0f} rows/s ({duckdb_file_s:.2f} s; "
        f"CPU {duckdb_file_cpu:.2f} s)"
    )
    if pg is not None:
        print(f"postgres store, new datapoints:  {rows / pg['new']:12,.0f} rows/s ({pg['new']:.2f} s)")
        print(f"postgres store, update 10%:      {updates / pg['update']:12,.0f} rows/s ({pg['update']:.2f} s)")
    print(
        f"ratio embedded new vs duckdb file insert (same durability): {duckdb_file_s / new_s:.2f}x "
        f"(target >= 0.45x); in CPU seconds (services + client): "
        f"{duckdb_file_cpu / (embedded['new_cpu'] + embedded['new_client_cpu']):.2f}x"
    )
    print(
        f"ratio embedded new vs duckdb insert: {duckdb_s / new_s:.2f}x; "
        f">= 1,000,000 rows/s: {'met' if rows / new_s >= 1e6 else 'not met'}"
    )
    update_cpu = embedded["update_cpu"] + embedded["update_client_cpu"]
    new_cpu = embedded["new_cpu"] + embedded["new_client_cpu"]
    print(
        f"ratio embedded update vs new, per row: {(updates / update_s) / (rows / new_s):.2f}x (target >= 1x); "
        f"in CPU seconds: {(updates / update_cpu) / (rows / new_cpu):.2f}x"
    )
    if pg is not None:
        print(f"ratio postgres new vs embedded new: {new_s / pg['new']:.2f}x (target >= 0.4x)")
    print(f"memory peak: embedded services {embedded['memory']:,.0f} MiB", end="")
    if pg is not None:
        print(f"; postgres-backed services {pg['memory']:,.0f} MiB; postgres cluster {pg_memory:,.0f} MiB", end="")
    print(" (`thresher up` runs the metadata, scanner and flight services in one process)")
    print(f"load average: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
