"""Where a PostgreSQL store's query result spends its time, against the embedded store's, in one run.

`benchmarks/query.py` times the targets end to end (client -> flight -> store). This one takes the
store alone (no services, no Flight) over the same 1M x 20 frame, once embedded (DuckDB) and once over
a throwaway PostgreSQL cluster started with compose.yaml's settings, and splits the PostgreSQL side
of the 3-predicate query and of the full result into:

- ``server``: PostgreSQL producing the result as binary COPY, written to ``/dev/null`` by the server
  itself (no client, no socket; the cluster's user is a superuser, as in the tests' clusters);
- ``adbc``: the same statement read through ADBC's driver into Arrow and dropped (server + socket +
  ADBC's conversion), with the client's CPU beside it;
- ``store``: ``store.query`` drained (the above plus compiling, the catalog read and the store's
  per-batch work);
- the full result in 2 id-range partitions, read by 2 connections at once, as the flight replicas do.

The machine is shared: compare the rows of one run, and note the load average it prints.

    python benchmarks/postgres_read.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from query import make_frame

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def best(work: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """The fastest of ``repeats`` runs of ``work``: (wall seconds, this process's CPU seconds)."""
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def three_predicates(datasource_id: int) -> Any:
    """The benchmark's filter, (i0 > 500) & (f0 < 0.5) & s0.startswith('a'), as the client sends it."""
    from thresher.v1 import common_pb2 as c

    def compare(field: str, op: int, **value: Any) -> Any:
        return c.Filter(comparison=c.Comparison(field=field, op=op, value=c.Value(**value)))

    return c.Query(
        datasource_id=datasource_id,
        filter=c.Filter(
            all_of=c.FilterList(
                filters=[
                    compare("i0", c.COMPARISON_OPERATOR_GT, int_value=500),
                    compare("f0", c.COMPARISON_OPERATOR_LT, float_value=0.5),
                    compare("s0", c.COMPARISON_OPERATOR_STARTSWITH, string_value="a"),
                ]
            )
        ),
    )


def drain(store: Any, query: Any) -> pa.Table:
    schema, batches = store.query(query)
    return pa.Table.from_batches(list(batches), schema)


def load(store: Any, table: pa.Table, label: str) -> int:
    source = store.create_datasource(f"bench/{label}", "t", "file:///x", "")
    started = time.perf_counter()
    store.upsert(source.id, table, "path", "bench", create_missing=True)
    print(f"{label}: loaded in {time.perf_counter() - started:.2f} s")
    return int(source.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import adbc_driver_postgresql.dbapi as adbc_postgres

    from tests.deploy.compose_processes import load_compose, postgres_settings
    from tests.deploy.postgres import LocalPostgres
    from thresher.services.metadata.server import open_store
    from thresher.v1 import common_pb2

    table = pa.Table.from_pandas(make_frame(args.rows), preserve_index=False)
    compose = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compose.yaml")
    settings = postgres_settings(
        load_compose(compose, {"THRESHER_TOKENS": "unused", "THRESHER_SERVICE_TOKEN": "unused"})["services"][
            "postgres"
        ]["command"]
    )
    print(f"load average at start: {open('/proc/loadavg').read().strip()}")

    with tempfile.TemporaryDirectory() as home:
        embedded = open_store(home)
        source = load(embedded, table, "embedded")
        embedded_s = {
            name: best(lambda q=q: drain(embedded, q), args.repeats)[0]
            for name, q in [("3-predicate", three_predicates(source)), ("full", common_pb2.Query(datasource_id=source))]
        }
        embedded.close()

    with LocalPostgres(settings=settings) as server, tempfile.TemporaryDirectory() as home:
        store = open_store(home, postgres_url=server.url)
        source = load(store, table, "postgres")
        connections = [adbc_postgres.connect(server.url, autocommit=False) for _ in range(2)]

        def read(connection: Any, sql: str) -> int:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return sum(batch.num_rows for batch in cursor.fetch_record_batch())

        def server_only(connection: Any, sql: str) -> None:
            with connection.cursor() as cursor:
                cursor.execute(f"COPY ({sql}) TO '/dev/null' (FORMAT binary)")

        def both(work: Callable[[Any, str], Any], sqls: list[str]) -> None:
            threads = [threading.Thread(target=work, args=pair) for pair in zip(connections, sqls)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        for name, query in [
            ("3-predicate", three_predicates(source)),
            ("full", common_pb2.Query(datasource_id=source)),
        ]:
            with store.dialect.read() as session:
                _, compiled = store._compile(session, query)  # noqa: SLF001 - the exact SQL the store runs
            sql = compiled.sql
            result = drain(store, query)
            print(f"\n{name}: {result.num_rows:,} rows, {result.nbytes / 1e6:.0f} MB of Arrow; SQL: {sql}")
            server_s, _ = best(lambda: server_only(connections[0], sql), args.repeats)
            adbc_s, adbc_cpu = best(lambda: read(connections[0], sql), args.repeats)
            store_s, _ = best(lambda: drain(store, query), args.repeats)
            print(f"  PostgreSQL alone (COPY binary to /dev/null) {server_s * 1000:7.0f} ms")
            print(
                f"  through ADBC into Arrow                    {adbc_s * 1000:7.0f} ms (client CPU {adbc_cpu * 1000:.0f} ms)"
            )
            print(f"  store.query drained                        {store_s * 1000:7.0f} ms")
            print(
                f"  embedded store.query drained               {embedded_s[name] * 1000:7.0f} ms "
                f"(PostgreSQL {store_s / embedded_s[name]:.1f}x)"
            )
            if name == "full":
                middle = (result["datapoint_id"].to_numpy().min() + result["datapoint_id"].to_numpy().max()) // 2
                halves = [f"{sql} AND datapoint_id <= {middle:d}", f"{sql} AND datapoint_id > {middle:d}"]
                server2_s, _ = best(lambda: both(server_only, halves), args.repeats)
                adbc2_s, _ = best(lambda: both(read, halves), args.repeats)
                print(
                    f"  2 partitions at once: PostgreSQL alone {server2_s * 1000:.0f} ms, through ADBC {adbc2_s * 1000:.0f} ms"
                )
        for connection in connections:
            connection.close()
        store.close()
    print(f"\nload average at end: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
