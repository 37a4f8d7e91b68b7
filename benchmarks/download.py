"""Download throughput through Thresher vs boto3 directly, on the same S3 objects.

The S3 endpoint is moto's server in a child process and the services run as ``thresher up`` in
another, so neither shares the client's interpreter lock. Each round downloads every object of an
S3 datasource into a fresh folder three ways, interleaved so that load from elsewhere weighs on all
alike: boto3 ``get_object`` in a thread pool writing each file (the peer), ``download_files`` through
the flight service, and ``download_files`` straight from the bucket (``enable_s3_bucket_downloader``).
Both Thresher paths also write each file under a temporary name and rename it.

Run: ``python benchmarks/download.py [--objects N] [--size BYTES] [--threads T]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from service_process import ServiceProcess

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.storage_endpoints import AWS_ENV, free_port, wait_for_port  # noqa: E402

BUCKET = "bench-downloads"
PREFIX = "objects"


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}"


def boto3_client(endpoint: str, threads: int):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=threads),
    )


def boto3_download(client, keys: list[str], target: str, threads: int) -> None:
    """The peer: get_object per key in a thread pool, each body streamed into its file."""

    def one(key: str) -> None:
        path = os.path.join(target, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        body = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"]
        with open(path, "wb") as handle:
            for chunk in body.iter_chunks(8 * 1024 * 1024):
                handle.write(chunk)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--size", type=int, default=1024 * 1024, help="bytes per object")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    os.environ.update(AWS_ENV)
    moto, endpoint = start_moto()
    os.environ["THRESHER_S3_ENDPOINT_URL"] = endpoint  # the services read the bucket through it too
    import thresher
    from thresher.core.storage import open_storage

    client = boto3_client(endpoint, args.threads)
    client.create_bucket(Bucket=BUCKET)
    storage = open_storage(f"s3://{BUCKET}/{PREFIX}")
    keys = [f"part{i // 100:03d}/{i:06d}.bin" for i in range(args.objects)]
    payload = os.urandom(args.size)
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(lambda key: storage.write(key, payload), keys))
    total_mb = args.objects * args.size / 1e6

    try:
        with ServiceProcess() as services, tempfile.TemporaryDirectory() as scratch:
            services.connect()
            ds = thresher.datasources.get_or_create("bench/downloads", "objects", f"s3://{BUCKET}/{PREFIX}")
            ds.wait_until_ready(timeout=300, progress=False)
            result = ds.all()
            assert len(result) == args.objects, len(result)

            def peer() -> None:
                boto3_download(client, keys, os.path.join(scratch, "peer"), args.threads)

            def through_flight() -> None:
                thresher.disable_bucket_downloaders()
                result.download_files(
                    os.path.join(scratch, "flight"),
                    keep_source_prefix=False,
                    redownload=True,
                    threads=args.threads,
                    progress=False,
                )

            def from_bucket() -> None:
                thresher.enable_s3_bucket_downloader(client)
                result.download_files(
                    os.path.join(scratch, "bucket"),
                    keep_source_prefix=False,
                    redownload=True,
                    threads=args.threads,
                    progress=False,
                )

            runs: dict[str, list[float]] = {
                "boto3 directly": [],
                "Thresher via flight": [],
                "Thresher from the bucket": [],
            }
            for run in (peer, through_flight, from_bucket):
                run()  # warm-up: connections, page cache, first touch of the target files
            for _ in range(args.repeat):
                for name, run in zip(runs, (peer, through_flight, from_bucket)):
                    started = time.perf_counter()
                    run()
                    runs[name].append(time.perf_counter() - started)
            for folder in ("flight", "bucket"):
                with open(os.path.join(scratch, folder, keys[-1]), "rb") as handle:
                    assert handle.read() == payload
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        moto.terminate()
        moto.wait()

    peer_times = runs["boto3 directly"]
    print(
        f"{args.objects} objects x {args.size:,} bytes ({total_mb:.0f} MB), {args.threads} threads, "
        f"median of {args.repeat} interleaved runs"
    )
    for name, times in runs.items():
        ratios = [p / t for p, t in zip(peer_times, times)]
        seconds = statistics.median(times)
        print(
            f"{name:<26} {seconds:.3f} s  {total_mb / seconds:7.1f} MB/s  {statistics.median(ratios):.2f}x of boto3 "
            f"(runs: {', '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
