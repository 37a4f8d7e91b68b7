"""Arrow interchange: results read through ``__arrow_c_stream__`` and uploads from a streamed reader,
each against its peer in the same run.

- read: ``pyarrow.table(view)`` and ``polars.DataFrame(view)`` (the view streams its query from
  Flight) and ``view.iter_batches()``, against ``Connection.read_query`` (one DoGet read whole: the
  path ``ds.all()`` takes);
- upload: ``ds.upload(reader)`` streaming the batches of a ``RecordBatchReader``, against
  ``ds.upload(table)`` of the same rows.

Services run as ``thresher up`` in a child process; medians of ``--repeat`` interleaved rounds.

    python benchmarks/interchange.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import polars as pl
import pyarrow as pa
from service_process import ServiceProcess, empty_datasource
from upload import make_frame


def interleaved(runs: dict, repeat: int) -> dict[str, list[float]]:
    """Seconds of each run in each of ``repeat`` rounds, the runs taking turns so that load from
    elsewhere weighs on all alike."""
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, function in runs.items():
            started = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - started)
    return timings


def report(kind: str, timings: dict[str, list[float]], rows: int) -> None:
    """The median time of each run and its median ratio to the first (the peer) over the rounds."""
    peer = next(iter(timings.values()))
    for name, seconds in timings.items():
        ratio = statistics.median(p / s for p, s in zip(peer, seconds))
        median = statistics.median(seconds)
        print(f"{kind:<6} {name:<26} {median:6.3f} s  {rows / median:12,.0f} rows/s  {ratio:.2f}x of the peer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    table = pa.Table.from_pandas(make_frame(args.rows), preserve_index=False)
    print(f"data: {args.rows:,} rows x {table.num_columns - 1} fields; medians of {args.repeat} interleaved rounds")
    with ServiceProcess() as services:
        services.connect()
        ds = empty_datasource("bench/interchange", "rows")
        ds.upload(table, create_missing=True)
        view = ds.select("*")
        query = view.query_proto()

        def bare() -> None:
            assert ds.connection.read_query(query).num_rows == args.rows

        def arrow_stream() -> None:
            assert pa.table(view).num_rows == args.rows

        def polars_stream() -> None:
            assert pl.DataFrame(view).height == args.rows

        def batches() -> None:
            assert sum(batch.num_rows for batch in view.iter_batches(65_536)) == args.rows

        reads = {
            "read_query (peer)": bare,
            "pyarrow.table(view)": arrow_stream,
            "polars.DataFrame(view)": polars_stream,
            "view.iter_batches(65536)": batches,
        }
        for run in reads.values():
            run()  # warm-up
        report("read", interleaved(reads, args.repeat), args.rows)

        target = empty_datasource("bench/interchange", "uploads")
        target.upload(table.slice(0, 50_000), create_missing=True)  # warm-up

        def whole() -> None:
            target.upload(table, create_missing=True)

        def streamed() -> None:
            target.upload(
                pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=65_536)),
                create_missing=True,
            )

        report("upload", interleaved({"table (peer)": whole, "RecordBatchReader": streamed}, args.repeat), args.rows)


if __name__ == "__main__":
    main()
