"""SQL over Flight: a filter over 1M datapoints through ADBC's Flight SQL driver, against the same
filter through Thresher's Python client (docs/design.md, "The Flight surface"). Both end in pandas; the ratio is ADBC / client.

    python benchmarks/sql.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import time

import adbc_driver_flightsql.dbapi as flightsql
from query import make_frame
from service_process import ServiceProcess, best_of, empty_datasource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    frame = make_frame(args.rows)
    expected = len(frame[(frame["i0"] > 500) & (frame["f0"] < 0.5) & frame["s0"].str.startswith("a")])
    print(f"data: {args.rows:,} datapoints x {len(frame.columns) - 1} fields; filter keeps {expected:,} rows")

    with ServiceProcess() as services:
        services.connect()

        # Over a real (empty) folder, scanned: a source that cannot be scanned leaves the datasource's
        # last scan failed, and every query then warns about it.
        ds = empty_datasource("bench/sql", "table")
        started = time.perf_counter()
        ds.upload_metadata_from_dataframe(frame, path_column="path", create_missing=True)
        print(f"loaded through DoPut in {time.perf_counter() - started:.2f} s")
        query = ds[(ds["i0"] > 500) & (ds["f0"] < 0.5) & ds["s0"].startswith("a")]
        sql = 'SELECT * FROM "bench/sql"."table" WHERE i0 > 500 AND f0 < 0.5 AND starts_with(s0, \'a\')'

        with flightsql.connect(
            f"grpc://{services.environment['THRESHER_FLIGHT_ADDRESS']}", autocommit=True
        ) as connection:

            def adbc_query():
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetch_arrow_table().to_pandas()

            def client_query():
                return query.all().dataframe

            assert len(adbc_query()) == expected and len(client_query()) == expected
            adbc_s = best_of(adbc_query, args.repeats)
            client_s = best_of(client_query, args.repeats)
    print(f"ADBC Flight SQL -> pandas:      {adbc_s * 1000:8.1f} ms")
    print(f"Python client query -> pandas:  {client_s * 1000:8.1f} ms")
    print(f"ratio ADBC / client: {adbc_s / client_s:.2f}x (target <= 1.3x); load average {_load()}")


def _load() -> str:
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
