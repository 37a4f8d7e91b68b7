"""Bag shards over Flight (docs/design.md, "Performance targets": shard streaming ≥ 0.8× a bare pyarrow Flight server).

A sharded bag dataset of N datapoints (a 4 KiB ``file``, an ``int`` label, a small ``array``) is
registered with ``thresher up`` running in a child process (as deployed), then:

* shard streaming: every shard fetched with DoGet through Thresher's flight service, against a bare
  pyarrow Flight server whose DoGet returns the same tables (C++ all the way), fetches alternating.
  Thresher checks every byte it sends against the bags' block checksums; the bare server checks nothing;
* loading: one epoch of ``Loader(Remote(...))`` (through flight) against ``Loader(ShardedDatasetReader)``
  on the same folder, both decoding every key, same batch size and workers.

Run: ``python benchmarks/flight.py [--points N] [--shardlen K] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_process import ServiceProcess  # noqa: E402


class BareServer(fl.FlightServerBase):
    """DoGet returns the table of the shard the ticket names (``b"3"``)."""

    def __init__(self, tables: list[pa.Table]) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self._tables = tables

    def do_get(self, context, ticket):
        return fl.RecordBatchStream(self._tables[int(ticket.ticket)])


def write_dataset(folder: str, points: int, shardlen: int) -> None:
    from thresher.bag import ShardedDatasetWriter, encoders

    rng = np.random.default_rng(0)
    spec = {"file": "bytes", "label": "int", "x": "array"}
    with ShardedDatasetWriter(folder, spec, encoders, shardlen=shardlen) as writer:
        for i in range(points):
            writer.append({"file": rng.bytes(4096), "label": i % 10, "x": rng.random(8, dtype=np.float32)})


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=40_000)
    parser.add_argument("--shardlen", type=int, default=4_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import thresher
    from thresher.bag import ShardedDatasetReader, decoders
    from thresher.loader import Loader
    from thresher.services.flight.shards import shard_ticket
    from thresher.sources import Remote

    folder = tempfile.mkdtemp(prefix="thresher-bench-bag-")
    write_dataset(folder, args.points, args.shardlen)
    with ServiceProcess() as services:
        conn = services.connect()
        thresher.datasets.register_export("bench/flight", "bag", folder, connection=conn)
        dataset = "bench/flight/bag"
        client = fl.FlightClient(f"grpc://{conn.flight_address}")
        shards = -(-args.points // args.shardlen)
        tickets = [fl.Ticket(shard_ticket(dataset, shard)) for shard in range(shards)]
        tables = [client.do_get(ticket).read_all() for ticket in tickets]  # warms both sides up
        size = sum(table.nbytes for table in tables)
        bare = BareServer([table.combine_chunks() for table in tables])
        bare_client = fl.FlightClient(f"grpc://127.0.0.1:{bare.port}")

        def thresher_fetch() -> None:
            for ticket in tickets:
                client.do_get(ticket).read_all()

        def bare_fetch() -> None:
            for shard in range(shards):
                bare_client.do_get(fl.Ticket(str(shard).encode())).read_all()

        bare_fetch()
        ours, theirs = [], []
        for _ in range(args.repeat):  # alternating, so load from elsewhere weighs on both alike
            ours.append(timed(thresher_fetch))
            theirs.append(timed(bare_fetch))
        ratio = min(theirs) / min(ours)
        print(f"shard streaming, {args.points} points in {shards} shards ({size / 2**20:.0f} MiB):")
        print(
            f"  thresher {size / min(ours) / 2**20:8.0f} MiB/s   bare pyarrow {size / min(theirs) / 2**20:8.0f} MiB/s"
            f"   ratio {ratio:.2f}x (target >= 0.8x)"
        )

        def epoch(source, mode) -> None:
            with Loader(source, args.batch, workers=args.workers, mode=mode) as loader:
                for _ in loader:
                    pass

        local = ShardedDatasetReader(folder, decoders)
        remote_times, local_times = [], []
        for _ in range(max(1, args.repeat // 2)):
            remote_times.append(timed(lambda: epoch(Remote(dataset, connection=conn), "thread")))
            local_times.append(timed(lambda: epoch(local, "process")))
        print(f"loader, one epoch, batch {args.batch}, {args.workers} workers:")
        print(
            f"  remote {args.points / min(remote_times):9.0f} points/s   local bag "
            f"{args.points / min(local_times):9.0f} points/s   ratio {min(local_times) / min(remote_times):.2f}x"
            f"   (median remote {statistics.median(remote_times):.2f} s)"
        )
        bare.shutdown()


if __name__ == "__main__":
    main()
