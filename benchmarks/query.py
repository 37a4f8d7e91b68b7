"""Query 1M datapoints x 20 fields with a 3-predicate filter into pandas (docs/design.md, "Performance targets": rows 1, 2 and 5).

Thresher end to end (client -> flight service -> metadata service -> DuckDB and back as Arrow) is
compared with DuckDB in-process on the same data into pandas (target <= 1.5x) and with pandas
boolean indexing on an in-memory dataframe (target <= 2x). The same services over a PostgreSQL store
(a throwaway cluster, as the tests start one) are compared with the embedded store in the same run:
the 3-predicate query (target <= 2x) and the full result as Arrow, read in 2 partitions (target
<= 2.5x).

    python benchmarks/query.py [--rows 1000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd
from service_process import ServiceProcess, best_of, best_of_interleaved, empty_datasource

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


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


def measure_services(
    frame: pd.DataFrame,
    expected: int,
    repeats: int,
    label: str,
    environment: dict[str, str] | None = None,
    peers: dict[str, Callable[[], object]] | None = None,
) -> dict:
    """Loads ``frame`` through the services (started with ``environment``) and times the 3-predicate
    query into pandas and the full result as Arrow. ``peers``: in-process queries timed in turns with
    the services' query (their times come back under their names), so that each ratio sees one load."""
    from thresher.v1 import common_pb2, flight_pb2

    with ServiceProcess(environment=environment) as services:
        connection = services.connect()
        ds = empty_datasource(f"bench/query-{label}", "table")
        started = time.perf_counter()
        ds.upload_metadata_from_dataframe(frame, path_column="path", create_missing=True)
        load_s = time.perf_counter() - started
        query = ds[(ds["i0"] > 500) & (ds["f0"] < 0.5) & ds["s0"].startswith("a")]

        def thresher_query():
            return query.all().dataframe

        got = thresher_query()
        assert len(got) == expected, (len(got), expected)
        timed = best_of_interleaved({"query": thresher_query, **(peers or {})}, repeats)
        whole = common_pb2.Query(datasource_id=ds.id)

        def full_result():
            return connection.read_query(whole)

        assert full_result().num_rows == len(frame)
        full_s = best_of(full_result, repeats)
        # The partitions the timed read used: ``read_query`` plans them on the store's estimate.
        descriptor = flight_pb2.FlightCommand(
            estimated_query=flight_pb2.EstimatedQueryCommand(query=whole)
        ).SerializeToString()
        import pyarrow.flight as fl

        partitions = len(
            connection.flight.get_flight_info(
                fl.FlightDescriptor.for_command(descriptor), options=connection._flight_options
            ).endpoints
        )  # noqa: SLF001
        memory = services.memory_peak_mib()
        connection.close()
    return {
        **timed,
        "load": load_s,
        "full": full_s,
        "query_proto": query.query_proto(),
        "partitions": partitions,
        "memory": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL store's rows")
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

    # DuckDB and pandas take turns with the services' query (best_of_interleaved): timed one after the
    # other, a ratio on a shared machine compared two different loads.
    peers = {"duckdb": duckdb_query, "pandas": pandas_query}
    embedded = measure_services(frame, expected, args.repeats, "embedded", peers=peers)
    print(f"embedded: loaded through DoPut in {embedded['load']:.2f} s")
    duckdb_s, pandas_s, thresher_s = embedded["duckdb"], embedded["pandas"], embedded["query"]
    store_s, plain_s = versioning_cost(frame, embedded["query_proto"], sql, args.repeats)
    print(f"thresher (services, Flight, pandas): {thresher_s * 1000:8.1f} ms")
    print(f"duckdb in-process -> pandas:         {duckdb_s * 1000:8.1f} ms")
    print(f"pandas boolean indexing:            {pandas_s * 1000:8.1f} ms")
    print(f"ratio vs duckdb: {thresher_s / duckdb_s:.2f}x (target <= 1.5x)")
    print(f"ratio vs pandas: {thresher_s / pandas_s:.2f}x (target <= 2x)")
    print(
        f"versioned store, current state -> Arrow: {store_s * 1000:8.1f} ms; "
        f"plain DuckDB table -> Arrow: {plain_s * 1000:8.1f} ms; ratio {store_s / plain_s:.2f}x"
    )
    print(f"embedded full result -> Arrow ({embedded['partitions']} partition(s)): {embedded['full'] * 1000:8.1f} ms")
    print(f"memory peak: embedded services {embedded['memory']:,.0f} MiB (`thresher up` runs all three in one process)")
    if not args.no_postgres:
        postgres_rows(frame, expected, args.repeats, embedded)


def postgres_rows(frame: pd.DataFrame, expected: int, repeats: int, embedded: dict) -> None:
    """The same services over a throwaway PostgreSQL cluster, against the embedded store's numbers."""
    from tests.deploy.compose_processes import load_compose, postgres_settings
    from tests.deploy.postgres import LocalPostgres

    # The cluster runs with the settings compose.yaml gives PostgreSQL (shared_buffers, WAL sizes...).
    compose = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compose.yaml")
    settings = postgres_settings(
        load_compose(compose, {"THRESHER_TOKENS": "unused", "THRESHER_SERVICE_TOKEN": "unused"})["services"][
            "postgres"
        ]["command"]
    )
    # Two partitions for the full result: half of it per partition, with 10% to spare, since the read
    # plans them on PostgreSQL's estimate of the row count, which may exceed it slightly (1,000,036 rows
    # for 1M made three partitions).
    environment = {"THRESHER_FLIGHT_PARTITION_ROWS": str(math.ceil(len(frame) * 0.55))}
    with LocalPostgres(settings=settings) as server:
        environment["THRESHER_POSTGRES_URL"] = server.url
        postgres = measure_services(frame, expected, repeats, "postgres", environment)
    print(
        f"postgres: loaded through DoPut in {postgres['load']:.2f} s "
        f"({embedded['load'] / postgres['load']:.2f}x the embedded store's rate)"
    )
    print(
        f"postgres 3-predicate query -> pandas: {postgres['query'] * 1000:8.1f} ms; "
        f"ratio vs embedded {postgres['query'] / embedded['query']:.2f}x (target <= 2x)"
    )
    print(
        f"postgres full result -> Arrow ({postgres['partitions']} partitions): {postgres['full'] * 1000:8.1f} ms; "
        f"ratio vs embedded {postgres['full'] / embedded['full']:.2f}x (target <= 2.5x)"
    )
    print(f"memory peak: postgres-backed services {postgres['memory']:,.0f} MiB")


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
