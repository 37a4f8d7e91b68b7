"""Scan of 200k local files vs a bare ``os.scandir`` walk that stats every file (DESIGN §7: ≥ 0.5×).

The scan runs through the services (``thresher up`` in a child process, as deployed): StartScan on the
scanner service, which lists the folder, diffs it against the metadata service and writes every file's
automatic fields there (DuckDB store); the time is from StartScan until GetScanStatus says READY. A
rescan with nothing changed is timed too.

Run: ``python benchmarks/scan.py [--files N] [--dir DIR]`` (DIR keeps the files between runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from service_process import ServiceProcess

from thresher.transport import open_channel
from thresher.v1 import common_pb2, metadata_service_pb2 as mpb, metadata_service_pb2_grpc
from thresher.v1 import scanner_service_pb2 as spb, scanner_service_pb2_grpc

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--dir", default=None, help="where to keep the files (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = args.dir or os.path.join(scratch, "files")
        os.makedirs(root, exist_ok=True)
        make_files(root, args.files)
        warm = os.path.join(scratch, "warm")
        make_files(warm, 2_000)

        found = bare_walk(root)  # warms the page and dentry caches

        bare_times, first_times, rescan_times = [], [], []
        with ServiceProcess() as services, \
                open_channel(services.environment["THRESHER_METADATA_ADDRESS"]) as m_channel, \
                open_channel(services.environment["THRESHER_SCANNER_ADDRESS"]) as s_channel:
            meta = metadata_service_pb2_grpc.MetadataServiceStub(m_channel)
            scanner = scanner_service_pb2_grpc.ScannerServiceStub(s_channel)

            def datasource(name: str, path: str) -> int:
                return meta.CreateDatasource(mpb.CreateDatasourceRequest(
                    namespace="bench/scan", name=name, source_uri=path)).datasource.id

            timed_scan(scanner, datasource("warm-up", warm))
            # Interleaved, so that load from elsewhere on the machine weighs on both sides alike.
            for attempt in range(args.repeat):
                start = time.perf_counter()
                bare_walk(root)
                bare_times.append(time.perf_counter() - start)
                source = datasource(f"files-{attempt}", root)
                seconds, scan = timed_scan(scanner, source)
                assert scan.datapoints_added == found, scan
                first_times.append(seconds)
                seconds, scan = timed_scan(scanner, source)
                assert (scan.datapoints_added, scan.datapoints_updated, scan.datapoints_removed) == (0, 0, 0)
                rescan_times.append(seconds)

    def report(what: str, times: list[float], target: str = "") -> None:
        ratios = [bare / seconds for bare, seconds in zip(bare_times, times)]
        seconds = statistics.median(times)
        print(f"{what:<30} {seconds:.3f} s ({found / seconds:>9,.0f} files/s), "
              f"{statistics.median(ratios):.2f}x of the bare walk (runs: {', '.join(f'{r:.2f}' for r in ratios)}){target}")

    report("bare os.scandir + stat walk:", bare_times)
    report("first scan via the services:", first_times, " - target >= 0.5x")
    report("rescan, nothing changed:", rescan_times)


if __name__ == "__main__":
    main()
