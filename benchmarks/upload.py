"""Upload 1M rows x 10 fields of metadata from a dataframe (DESIGN §7, row 3: >= 1M rows/s).

End to end: pandas -> Arrow -> Flight DoPut -> flight service -> metadata service -> DuckDB,
committed atomically. Also prints DuckDB's own in-process insert of the same table as a peer.

    python benchmarks/upload.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import time

import duckdb
import numpy as np
import pandas as pd

from service_process import ServiceProcess, empty_datasource


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    frame = make_frame(args.rows)
    print(f"data: {args.rows:,} rows x {len(frame.columns) - 1} fields")
    with ServiceProcess() as services:
        services.connect()
        import thresher

        warm = empty_datasource("bench/upload", "warmup")
        warm.upload_metadata_from_dataframe(frame.head(50_000), path_column="path", create_missing=True)
        ds = empty_datasource("bench/upload", "table")
        started = time.perf_counter()
        ds.upload_metadata_from_dataframe(frame, path_column="path", create_missing=True)
        new_s = time.perf_counter() - started
        updated = frame.assign(score=frame["score"] + 1)
        started = time.perf_counter()
        ds.upload_metadata_from_dataframe(updated, path_column="path", create_missing=True)
        update_s = time.perf_counter() - started
        assert ds.count() == args.rows
    con = duckdb.connect()
    con.register("source_frame", frame)
    started = time.perf_counter()
    con.execute("CREATE TABLE t AS SELECT * FROM source_frame")
    duckdb_s = time.perf_counter() - started
    print(f"thresher, new datapoints:      {args.rows / new_s:12,.0f} rows/s ({new_s:.2f} s)")
    print(f"thresher, update existing:     {args.rows / update_s:12,.0f} rows/s ({update_s:.2f} s)")
    print(f"duckdb in-process insert:      {args.rows / duckdb_s:12,.0f} rows/s ({duckdb_s:.2f} s)")
    print(f"ratio new vs duckdb insert: {duckdb_s / new_s:.2f}x; target >= 1,000,000 rows/s end to end: "
          f"{'met' if args.rows / new_s >= 1e6 else 'not met'}")


if __name__ == "__main__":
    main()
