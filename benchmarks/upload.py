"""Upload N rows x 10 fields of metadata from a dataframe, then update 10% of them (target >= 1M rows/s).

End to end: pandas -> Arrow -> Flight DoPut -> flight service -> metadata service -> store, committed
atomically; once over the embedded DuckDB store and once over PostgreSQL (a throwaway cluster, as the
deployment tests start one). Peers measured in the same run: DuckDB's own in-process insert of the
same Arrow table, and the embedded store for PostgreSQL. Prints each services process's memory peak
(and the PostgreSQL cluster's).

    python benchmarks/upload.py [--rows 1000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from service_process import ServiceProcess, empty_datasource

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.array(["cat", "dog", "bird", "fish"])
    return pd.DataFrame({
        "path": [f"images/{i:08d}.png" for i in range(rows)],
        "episode": rng.integers(0, 100, rows), "frame": np.arange(rows), "camera": rng.integers(0, 4, rows),
        "score": rng.random(rows), "x": rng.random(rows), "y": rng.random(rows),
        "label": pd.array(labels[rng.integers(0, 4, rows)], dtype="string"),
        "split": pd.array(np.where(rng.random(rows) < 0.8, "train", "val"), dtype="string"),
        "reviewed": rng.random(rows) < 0.3,
        "captured": pd.to_datetime(rng.integers(1.6e9, 1.7e9, rows), unit="s", utc=True),
    })


def duckdb_insert(table: pa.Table, where: str) -> float:
    """Seconds for DuckDB itself to insert ``table`` into a new table at ``where`` and commit."""
    con = duckdb.connect(where)
    con.register("source_table", table)
    started = time.perf_counter()
    con.execute("CREATE TABLE t AS SELECT * FROM source_table").fetchall()
    took = time.perf_counter() - started
    con.close()
    return took


def peak_rss_mib(pids: list[int]) -> float:
    """The sum of the processes' peak resident memory (VmHWM), in MiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def descendants(pid: int) -> list[int]:
    found = [pid]
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for child in result.stdout.split():
        found += descendants(int(child))
    return found


def run_uploads(frame: pd.DataFrame, name: str) -> tuple[float, float, float]:
    """(new rows seconds, update seconds, services' memory peak MiB) over the services now running."""
    services = ServiceProcess()
    with services:
        services.connect()
        warm = empty_datasource(f"bench/{name}", "warmup")
        warm.upload_metadata_from_dataframe(frame.head(50_000), path_column="path", create_missing=True)
        ds = empty_datasource(f"bench/{name}", "table")
        started = time.perf_counter()
        ds.upload_metadata_from_dataframe(frame, path_column="path", create_missing=True)
        new_s = time.perf_counter() - started
        tenth = frame.sample(frac=0.1, random_state=2).sort_index()
        updated = tenth[["path"]].assign(score=tenth["score"] + 1, label="reviewed")
        started = time.perf_counter()
        ds.upload_metadata_from_dataframe(updated, path_column="path")
        update_s = time.perf_counter() - started
        assert ds.count() == len(frame)
        memory = peak_rss_mib(descendants(services._process.pid))
    return new_s, update_s, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL row")
    args = parser.parse_args()
    frame = make_frame(args.rows)
    rows, updates = args.rows, len(frame) // 10
    print(f"data: {rows:,} rows x {len(frame.columns) - 1} fields; updates: {updates:,} rows x 2 fields")
    os.environ.pop("THRESHER_POSTGRES_URL", None)
    new_s, update_s, memory = run_uploads(frame, "embedded")
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
    duckdb_s = duckdb_insert(table, ":memory:")
    with tempfile.TemporaryDirectory(prefix="thresher-bench-duckdb-") as folder:
        duckdb_file_s = duckdb_insert(table, os.path.join(folder, "peer.duckdb"))
    print(f"embedded store, new datapoints:  {rows / new_s:12,.0f} rows/s ({new_s:.2f} s)")
    print(f"embedded store, update 10%:      {updates / update_s:12,.0f} rows/s ({update_s:.2f} s)")
    print(f"duckdb in-process insert:        {rows / duckdb_s:12,.0f} rows/s ({duckdb_s:.2f} s)")
    print(f"duckdb insert into a file:       {rows / duckdb_file_s:12,.0f} rows/s ({duckdb_file_s:.2f} s)")
    if pg is not None:
        print(f"postgres store, new datapoints:  {rows / pg[0]:12,.0f} rows/s ({pg[0]:.2f} s)")
        print(f"postgres store, update 10%:      {updates / pg[1]:12,.0f} rows/s ({pg[1]:.2f} s)")
    print(f"ratio embedded new vs duckdb file insert (same durability): {duckdb_file_s / new_s:.2f}x")
    print(f"ratio embedded new vs duckdb insert: {duckdb_s / new_s:.2f}x (target >= 0.45x); "
          f">= 1,000,000 rows/s: {'met' if rows / new_s >= 1e6 else 'not met'}")
    print(f"ratio embedded update vs new, per row: {(updates / update_s) / (rows / new_s):.2f}x (target >= 1x)")
    if pg is not None:
        print(f"ratio postgres new vs embedded new: {new_s / pg[0]:.2f}x (target >= 0.4x)")
    print(f"memory peak: embedded services {memory:,.0f} MiB", end="")
    if pg is not None:
        print(f"; postgres-backed services {pg[2]:,.0f} MiB; postgres cluster {pg_memory:,.0f} MiB", end="")
    print()


if __name__ == "__main__":
    main()
