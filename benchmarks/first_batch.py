"""Time to the first training batch: lazy DataLoader workers against fetching every file first.

An S3 datasource (moto's server in a child process, objects put through its backend) of N small
files is indexed in the services (``thresher up`` in another child process). For each N the clock
runs from ``as_ml_dataloader("torch", num_workers=W)`` to the first batch in hand:

- lazy (Thresher now): the workers, each with its own connection, fetch only their batches' files;
- the peer, everything first (what Thresher did before: ``strategy="preload"``), then the same
  DataLoader reading the cache. The peer runs only up to ``--peer-max`` files: its time grows with
  N (seconds per thousand files here), the lazy one's should not.

It also counts the files in the cache after the first batch (what was really fetched).

    python benchmarks/first_batch.py [--files 1000,100000] [--peer-max 1000] [--workers 2] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from moto_s3 import BUCKET, PREFIX, MotoS3, key  # noqa: E402
from service_process import ServiceProcess  # noqa: E402

from tests.downloads.conftest import indexed  # noqa: E402
from tests.storage_endpoints import AWS_ENV  # noqa: E402


def index(connection, files: int, name: str):
    """A datasource over the first ``files`` objects, its datapoints uploaded (no scan: this times loading)."""
    paths = [key(i)[len(PREFIX) :] for i in range(files)]
    return indexed(
        connection,
        "bench/first-batch",
        f"s3://{BUCKET}/{PREFIX.rstrip('/')}",
        paths,
        extra={"label": [i % 10 for i in range(files)]},
    )


def first_batch_seconds(result, savedir: str, workers: int, batch: int, strategy: str) -> tuple[float, int]:
    started = time.perf_counter()
    loader = result.as_ml_dataloader(
        "torch",
        metadata_columns=["label"],
        tensorizers=["bytes", "auto"],
        strategy=strategy,
        savedir=savedir,
        progress=False,
        batch_size=batch,
        num_workers=workers,
        collate_fn=list,
    )
    batches = iter(loader)
    first = next(batches)
    elapsed = time.perf_counter() - started
    assert len(first) == batch
    del batches
    fetched = sum(1 for path in pathlib.Path(savedir).rglob("*.txt") if path.is_file())
    return elapsed, fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", default="1000,100000", help="comma-separated result sizes")
    parser.add_argument("--peer-max", type=int, default=1000, help="largest size the fetch-everything peer runs at")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    sizes = [int(size) for size in args.files.split(",")]

    os.environ.update(AWS_ENV)
    with MotoS3(max(sizes)) as endpoint:
        os.environ["THRESHER_S3_ENDPOINT_URL"] = endpoint  # the flight service reads the bucket through it
        with ServiceProcess() as services, tempfile.TemporaryDirectory() as scratch:
            connection = services.connect()
            # Warm up: the fork server and torch in the workers, the services' connections.
            warm = index(connection, args.batch * 4, "warmup").all()
            first_batch_seconds(warm, os.path.join(scratch, "warm"), args.workers, args.batch, "lazy")
            print(
                f"{args.workers} workers, batches of {args.batch}, files of a few bytes on moto's S3 "
                "(through the flight service)"
            )
            for files in sizes:
                result = index(connection, files, f"n{files}").all()
                lazy, fetched = first_batch_seconds(
                    result, os.path.join(scratch, f"lazy{files}"), args.workers, args.batch, "lazy"
                )
                line = f"{files:>7} files  lazy workers {lazy:6.2f} s to the first batch ({fetched} files fetched)"
                if files <= args.peer_max:
                    peer, everything = first_batch_seconds(
                        result, os.path.join(scratch, f"peer{files}"), args.workers, args.batch, "preload"
                    )
                    line += f"  |  fetch everything first {peer:6.2f} s ({everything} files)  {peer / lazy:.1f}x"
                print(line, flush=True)


if __name__ == "__main__":
    main()
