"""The two scan rows of docs/design.md's "Performance targets", each against the bare listing of the same source (target ≥ 0.5×):

- local: 200k files vs a bare ``os.scandir`` walk that stats every file;
- s3: 20k objects on an S3 endpoint (moto's server in a process of its own, ``moto_s3.py``) vs a bare
  paginated ListObjectsV2 with boto3 against the same endpoint.

A scan runs through the services (``thresher up`` in a child process, as deployed): StartScan on the
scanner service, which lists the source, diffs it against the metadata service and writes every
file's automatic fields there (DuckDB store); the time is from StartScan until GetScanStatus says
READY. A rescan with nothing changed is timed too. Bare runs and scans are interleaved, so load from
elsewhere on the machine weighs on both alike; the ratio is bare time / scan time, median of the runs.

Run: ``python benchmarks/scan.py [--rows local,s3] [--files N] [--dir DIR] [--s3-objects N]``
(DIR keeps the local files between runs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from moto_s3 import BUCKET, PREFIX, MotoS3
from service_process import ServiceProcess

from thresher.core.transport import open_channel
from thresher.v1 import common_pb2, metadata_service_pb2_grpc, scanner_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb
from thresher.v1 import scanner_service_pb2 as spb

FILES_PER_FOLDER = 1000


def make_files(root: str, count: int) -> None:
    """``count`` small files, a thousand per folder; skipped when the folder already holds them."""
    marker = f"{root.rstrip('/')}.complete-{count}"  # beside the folder, so no scan lists it
    if os.path.exists(marker):
        return
    print(f"creating {count:,} files under {root} ...", flush=True)
    for i in range(count):
        folder = os.path.join(root, f"part{i // FILES_PER_FOLDER:04d}")
        if i % FILES_PER_FOLDER == 0:
            os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i:07d}.txt"), "wb") as file:
            file.write(b"%d" % i)
    open(marker, "wb").close()


def bare_walk(root: str) -> int:
    """The baseline: every file found with os.scandir and stat'ed."""
    files = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    entry.stat(follow_symlinks=False)
                    files += 1
    return files


def timed_scan(scanner, datasource_id: int) -> tuple[float, common_pb2.ScanStatus]:
    start = time.perf_counter()
    assert scanner.StartScan(spb.StartScanRequest(datasource_id=datasource_id)).started
    while True:
        scan = scanner.GetScanStatus(spb.GetScanStatusRequest(datasource_id=datasource_id)).scan
        if scan.state in (common_pb2.SCAN_STATE_READY, common_pb2.SCAN_STATE_FAILED):
            elapsed = time.perf_counter() - start
            if scan.state == common_pb2.SCAN_STATE_FAILED:
                raise SystemExit(f"scan failed: {scan.failure_reason}")
            return elapsed, scan
        time.sleep(0.02)


def bare_listing(client, bucket: str, prefix: str) -> int:
    """The S3 baseline: every object under the prefix, from paginated ListObjectsV2 calls."""
    objects = 0
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        objects += len(page.get("Contents", ()))
    return objects


@dataclasses.dataclass
class Row:
    name: str
    found: int
    bare: list[float] = dataclasses.field(default_factory=list)
    first: list[float] = dataclasses.field(default_factory=list)
    rescan: list[float] = dataclasses.field(default_factory=list)

    def report(self, baseline: str) -> None:
        def line(what: str, times: list[float], target: str = "") -> None:
            seconds = statistics.median(times)
            text = f"  {what:<28} {seconds:7.3f} s ({self.found / seconds:>9,.0f} files/s)"
            if times is not self.bare:
                ratios = [bare / seconds for bare, seconds in zip(self.bare, times)]
                text += (
                    f", {statistics.median(ratios):.2f}x of the bare listing "
                    f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}){target}"
                )
            print(text)

        print(f"{self.name}: {self.found:,} files")
        line(f"{baseline}:", self.bare)
        line("first scan via the services:", self.first, " - target >= 0.5x")
        line("rescan, nothing changed:", self.rescan)


def compare(row: Row, bare: Callable[[], int], new_datasource: Callable[[str], int], scanner, repeat: int) -> None:
    """Runs the bare listing and a first scan and a rescan of a new datasource ``repeat`` times, interleaved."""
    for attempt in range(repeat):
        start = time.perf_counter()
        assert bare() == row.found
        row.bare.append(time.perf_counter() - start)
        source = new_datasource(f"{row.name}-{attempt}")
        seconds, scan = timed_scan(scanner, source)
        assert scan.datapoints_added == row.found, scan
        row.first.append(seconds)
        seconds, scan = timed_scan(scanner, source)
        assert (scan.datapoints_added, scan.datapoints_updated, scan.datapoints_removed) == (0, 0, 0)
        row.rescan.append(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="local,s3", help="which rows to run (default: %(default)s)")
    parser.add_argument("--files", type=int, default=200_000, help="local files (default: %(default)s)")
    parser.add_argument("--dir", default=None, help="where to keep the local files (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the local row (default: %(default)s)")
    parser.add_argument("--s3-objects", type=int, default=20_000, help="S3 objects (default: %(default)s)")
    parser.add_argument("--s3-repeat", type=int, default=3, help="runs of the s3 row (default: %(default)s)")
    args = parser.parse_args()
    rows = set(args.rows.split(","))

    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        if "s3" in rows:
            import boto3

            endpoint = stack.enter_context(MotoS3(args.s3_objects))
            # The scanner (a child process) takes the endpoint and credentials from the environment.
            os.environ.update(
                {
                    "THRESHER_S3_ENDPOINT_URL": endpoint,
                    "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench",
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
            )
            s3 = boto3.session.Session().client("s3", endpoint_url=endpoint)
        if "local" in rows:
            root = args.dir or os.path.join(scratch, "files")
            os.makedirs(root, exist_ok=True)
            make_files(root, args.files)
        warm = os.path.join(scratch, "warm")
        make_files(warm, 2_000)

        services = stack.enter_context(ServiceProcess())
        m_channel = stack.enter_context(open_channel(services.environment["THRESHER_METADATA_ADDRESS"]))
        s_channel = stack.enter_context(open_channel(services.environment["THRESHER_SCANNER_ADDRESS"]))
        meta = metadata_service_pb2_grpc.MetadataServiceStub(m_channel)
        scanner = scanner_service_pb2_grpc.ScannerServiceStub(s_channel)

        def datasource_of(uri: str) -> Callable[[str], int]:
            def create(name: str) -> int:
                return meta.CreateDatasource(
                    mpb.CreateDatasourceRequest(namespace="bench/scan", name=name, source_uri=uri)
                ).datasource.id

            return create

        timed_scan(scanner, datasource_of(warm)("warm-up"))
        if "local" in rows:
            local = Row("local", bare_walk(root))  # the first walk also warms the page and dentry caches
            compare(local, lambda: bare_walk(root), datasource_of(root), scanner, args.repeat)
            local.report("bare os.scandir + stat walk")
        if "s3" in rows:
            s3_row = Row("s3", bare_listing(s3, BUCKET, PREFIX))
            compare(
                s3_row,
                lambda: bare_listing(s3, BUCKET, PREFIX),
                datasource_of(f"s3://{BUCKET}/{PREFIX}"),
                scanner,
                args.s3_repeat,
            )
            s3_row.report("bare ListObjectsV2 pages")


if __name__ == "__main__":
    main()
