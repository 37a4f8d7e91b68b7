"""Arrow interchange: results read through ``__arrow_c_stream__`` and uploads from a streamed reader,
each against its peer in the same run.

- read: ``pyarrow.table(view)`` and ``polars.DataFrame(view)`` (the view streams its query from
  Flight) and ``view.iter_batches()``, against ``Connection.read_query`` (one DoGet read whole: the
  path ``ds.all()`` takes);
- upload: ``ds.upload(reader)`` streaming the batches of a ``RecordBatchReader``, against
  ``ds.upload(table)`` of the same rows.

Services run as ``thresher up`` in a child process; the best of ``--repeat`` interleaved rounds counts.

    python benchmarks/interchange.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import polars as pl
import pyarrow as pa

from service_process import ServiceProcess, empty_datasource
from upload import make_frame


def best(function, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = pa.Table.from_pandas(make_frame(args.rows), preserve_index=False)
    print(f"data: {args.rows:,} rows x {table.num_columns - 1} fields; best of {args.repeat}")
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

        for run in (bare, arrow_stream, polars_stream, batches):
            run()  # warm-up
        reads = {name: best(run, args.repeat) for name, run in (
            ("read_query (peer)", bare), ("pyarrow.table(view)", arrow_stream),
            ("polars.DataFrame(view)", polars_stream), ("view.iter_batches(65536)", batches))}
        peer = reads["read_query (peer)"]
        for name, seconds in reads.items():
            print(f"read  {name:<26} {seconds:6.3f} s  {args.rows / seconds:12,.0f} rows/s  "
                  f"{peer / seconds:.2f}x of the peer")

        target = empty_datasource("bench/interchange", "uploads")
        target.upload(table.slice(0, 50_000), create_missing=True)  # warm-up

        def whole() -> None:
            target.upload(table, create_missing=True)

        def streamed() -> None:
            target.upload(pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=65_536)),
                          create_missing=True)

        whole_s, streamed_s = best(whole, args.repeat), best(streamed, args.repeat)
        print(f"upload table (peer)                {whole_s:6.3f} s  {args.rows / whole_s:12,.0f} rows/s")
        print(f"upload RecordBatchReader           {streamed_s:6.3f} s  {args.rows / streamed_s:12,.0f} rows/s  "
              f"{whole_s / streamed_s:.2f}x of the peer")


if __name__ == "__main__":
    main()
