"""``iter_batches`` streams a view's result from Flight: the client never holds the whole result.

The client runs in a child process so that its memory (resident set, sampled after each batch) is its own, not the
services' (which run in this test's process). The same child also reads the whole result at once, so
the measurement is shown to see a materialized result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from tests.downloads.conftest import indexed

ROWS = 2_000_000
# ~250 MB of result from a quick upload (the store keeps the repeated value once).
NOTE = "n" * 100
# The promise: a 5M-row result iterates in under 300 MiB of growth; here, the same per row.
BOUND_MIB = 300 * ROWS / 5_000_000

CLIENT = textwrap.dedent("""
    import json, os, sys
    import thresher
    from thresher.connection import Connection

    def rss_mib():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    metadata, flight, datasource_id, mode = sys.argv[1:5]
    connection = Connection(metadata, flight)
    view = thresher.get_datasource(id=int(datasource_id), connection=connection).select("note")
    next(iter(view.limit(10).iter_batches(5)))  # warm up: connections, imports, first allocations
    before = peak = rss_mib()
    rows = nbytes = 0
    if mode == "stream":
        for batch in view.iter_batches(10_000):
            rows += batch.num_rows
            nbytes += batch.nbytes
            peak = max(peak, rss_mib())
    else:
        table = view.to_arrow()
        rows, nbytes = table.num_rows, table.nbytes
        peak = max(peak, rss_mib())
    print(json.dumps({"growth_mib": peak - before, "rows": rows, "result_mib": nbytes / 2**20}))
""")


def client_run(conn, ds, mode: str) -> dict:
    # Large blocks straight from mmap, so that freed ones leave the resident set at once: RSS then
    # measures what the client holds, not what glibc's allocator keeps around for reuse.
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, conn.metadata_address, conn.flight_address, str(ds.id), mode],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_iterating_a_large_result_keeps_client_memory_bounded(conn, namespace):
    paths = pa.array([f"rows/{i:07d}.bin" for i in range(ROWS)])
    ds = indexed(conn, namespace, "file:///nowhere", ["rows/0000000.bin"])
    ds.upload(pa.table({"path": paths, "note": pa.repeat(pa.scalar(NOTE), ROWS)}), create_missing=True)
    streamed = client_run(conn, ds, "stream")
    whole = client_run(conn, ds, "whole")
    assert streamed["rows"] == whole["rows"] == ROWS
    assert whole["result_mib"] > 2 * BOUND_MIB
    # Reading it whole costs at least the result; streaming it only what is in flight (a few batches
    # in gRPC's receive window), whatever the result's size.
    assert whole["growth_mib"] > 0.8 * whole["result_mib"], whole
    assert streamed["growth_mib"] < BOUND_MIB, (streamed, whole)


@pytest.fixture
def conn(local_services):
    return local_services.connect()
