"""Query 1M datapoints x 20 fields with a 3-predicate filter into pandas (DESIGN §7, rows 1 and 2).

Thresher end to end (client -> flight service -> metadata service -> DuckDB and back as Arrow) is
compared with DuckDB in-process on the same data into pandas (target <= 1.5x) and with pandas
boolean indexing on an in-memory dataframe (target <= 2x).

    python benchmarks/query.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import time

import duckdb
import numpy as np
import pandas as pd

from service_process import ServiceProcess, empty_datasource, best_of


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    columns: dict[str, object] = {"path": [f"images/{i:08d}.png" for i in range(rows)]}
    for i in range(8):
        columns[f"i{i}"] = rng.integers(0, 1000, rows)
    for i in range(6):
        columns[f"f{i}"] = rng.random(rows)
    for i in range(3):
        columns[f"s{i}"] = pd.array(words[rng.integers(0, len(words), rows)], dtype="string")
    columns["b0"] = rng.random(rows) < 0.5
    columns["b1"] = rng.random(rows) < 0.1
    columns["t0"] = pd.to_datetime(rng.integers(1.6e9, 1.7e9, rows), unit="s", utc=True)
    return pd.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    frame = make_frame(args.rows)
    fields = [c for c in frame.columns if c != "path"]
    print(f"data: {args.rows:,} datapoints x {len(fields)} fields")

    def pandas_query():
        return frame[(frame["i0"] > 500) & (frame["f0"] < 0.5) & frame["s0"].str.startswith("a")]

    expected = len(pandas_query())
    print(f"filter: (i0 > 500) & (f0 < 0.5) & s0.startswith('a') -> {expected:,} rows")

    con = duckdb.connect()
    con.register("source_frame", frame)
    con.execute("CREATE TABLE t AS SELECT * FROM source_frame")
    sql = "SELECT * FROM t WHERE i0 > 500 AND f0 < 0.5 AND starts_with(s0, 'a')"

    def duckdb_query():
        return con.sql(sql).to_arrow_table().to_pandas()

    with ServiceProcess() as services:
        services.connect()
        import thresher

        ds = empty_datasource("bench/query", "table")
        started = time.perf_counter()
        ds.upload_metadata_from_dataframe(frame, path_column="path", create_missing=True)
        print(f"loaded through DoPut in {time.perf_counter() - started:.2f} s")
        query = ds[(ds["i0"] > 500) & (ds["f0"] < 0.5) & ds["s0"].startswith("a")]

        def thresher_query():
            return query.all().dataframe

        got = thresher_query()
        assert len(got) == expected, (len(got), expected)
        thresher_s = best_of(thresher_query, args.repeats)
    duckdb_s = best_of(duckdb_query, args.repeats)
    pandas_s = best_of(pandas_query, args.repeats)
    store_s, plain_s = versioning_cost(frame, query.query_proto(), sql, args.repeats)
    print(f"thresher (services, Flight, pandas): {thresher_s * 1000:8.1f} ms")
    print(f"duckdb in-process -> pandas:         {duckdb_s * 1000:8.1f} ms")
    print(f"pandas boolean indexing:            {pandas_s * 1000:8.1f} ms")
    print(f"ratio vs duckdb: {thresher_s / duckdb_s:.2f}x (target <= 1.5x)")
    print(f"ratio vs pandas: {thresher_s / pandas_s:.2f}x (target <= 2x)")
    print(f"versioned store, current state -> Arrow: {store_s * 1000:8.1f} ms; "
          f"plain DuckDB table -> Arrow: {plain_s * 1000:8.1f} ms; ratio {store_s / plain_s:.2f}x")


def versioning_cost(frame: pd.DataFrame, query, sql: str, repeats: int) -> tuple[float, float]:
    """The store's current-state query (with its log beside it) against a plain table, both in-process
    on one file each, so the cost of keeping every write shows without any transport."""
    import tempfile

    import pyarrow as pa

    from thresher.services.metadata.server import open_store

    with tempfile.TemporaryDirectory() as home:
        store = open_store(home)
        source = store.create_datasource("bench/store", "t", "file:///x", "")
        store.upsert(source.id, pa.Table.from_pandas(frame, preserve_index=False), "path", "bench", create_missing=True)
        query.datasource_id = source.id
        plain = duckdb.connect(f"{home}/plain.duckdb")
        plain.register("source_frame", frame)
        plain.execute("CREATE TABLE t AS SELECT * FROM source_frame")
        store_s = best_of(lambda: pa.Table.from_batches(list(store.query(query)[1])), repeats)
        plain_s = best_of(lambda: plain.sql(sql).to_arrow_table(), repeats)
        store.close()
    return store_s, plain_s


if __name__ == "__main__":
    main()
