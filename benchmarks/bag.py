"""Bag format: write MB/s (pre-encoded values) and random-read datapoints/s, Thresher vs ``granular``.

Both libraries write the same datapoints (already bytes, so no encoder runs) and then read the same
random indices from what they wrote; each figure is the best of ``--repeats`` runs after a warm-up,
measured in this one process, alternating the two. Thresher's writes include computing every record's
checksum and one per 64 KiB block of records (two passes over the bytes; granular makes none), and its
reads checking each record's. Ratios are by wall-clock time; the ratio by CPU time
(this process, kernel included) is printed too, as it is steadier on a machine shared with others.

    python benchmarks/bag.py [--datapoints 20000] [--reads 50000] [--repeats 5]

Targets (docs/design.md, "Performance targets"): both ratios >= 2.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = {"image": "bytes", "label": "bytes", "caption": "bytes", "tokens": "bytes", "frames": "bytes[]"}


def make_datapoints(count: int, seed: int = 0) -> list[dict]:
    """Pre-encoded datapoints: a 2-8 KB image, a label, a caption, 256 B of tokens, 0-5 frames of 1 KB."""
    rng = np.random.default_rng(seed)
    return [
        {
            "image": rng.bytes(int(rng.integers(2000, 8000))),
            "label": (i % 1000).to_bytes(2, "little"),
            "caption": f"a caption for datapoint number {i} ".encode() * 3,
            "tokens": rng.bytes(256),
            "frames": [rng.bytes(1000) for _ in range(int(rng.integers(0, 6)))],
        }
        for i in range(count)
    ]


def payload_bytes(datapoints: list[dict]) -> int:
    return sum(len(v) if isinstance(v, bytes) else sum(map(len, v)) for d in datapoints for v in d.values())


class Timer:
    """Wall-clock and CPU seconds (this process, kernel time included) of the block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def time_write(writer_cls, directory: Path, datapoints: list[dict]) -> Timer:
    shutil.rmtree(directory, ignore_errors=True)
    with Timer() as timer:
        with writer_cls(directory, SPEC, None) as writer:
            for datapoint in datapoints:
                writer.append(datapoint)
    return timer


def time_reads(reader, indices: list[int]) -> Timer:
    with Timer() as timer:
        for i in indices:
            reader[i]
    return timer


def best_of_both(ours, theirs, repeats: int) -> dict[str, tuple[float, float]]:
    """Best wall and CPU time of each, alternating runs so that load from elsewhere hits both alike."""
    ours(), theirs()  # warm-up: first touches of fresh memory and files are slow
    runs = [(ours(), theirs()) for _ in range(repeats)]
    return {
        "wall": (min(r[0].wall for r in runs), min(r[1].wall for r in runs)),
        "cpu": (min(r[0].cpu for r in runs), min(r[1].cpu for r in runs)),
    }


def report(name: str, unit: str, amount: float, times: dict[str, tuple[float, float]]) -> None:
    (ours, theirs), (ours_cpu, theirs_cpu) = times["wall"], times["cpu"]
    print(
        f"{name:5}  thresher {amount / ours:9.0f} {unit}   granular {amount / theirs:9.0f} {unit}   "
        f"ratio {theirs / ours:.2f}x   (by CPU time {theirs_cpu / ours_cpu:.2f}x)"
    )


def main() -> None:
    import granular

    import thresher.bag as bag

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datapoints", type=int, default=20000)
    parser.add_argument("--reads", type=int, default=50000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    datapoints = make_datapoints(args.datapoints)
    megabytes = payload_bytes(datapoints) / 1e6
    rng = random.Random(1)
    indices = [rng.randrange(args.datapoints) for _ in range(args.reads)]
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp, "thresher"), Path(tmp, "granular")
        writes = best_of_both(
            lambda: time_write(bag.DatasetWriter, ours, datapoints),
            lambda: time_write(granular.DatasetWriter, theirs, datapoints),
            args.repeats,
        )
        reader_ours, reader_theirs = bag.DatasetReader(ours, None), granular.DatasetReader(theirs, None)
        try:
            reads = best_of_both(
                lambda: time_reads(reader_ours, indices), lambda: time_reads(reader_theirs, indices), args.repeats
            )
        finally:
            reader_ours.close()
            reader_theirs.close()

    print(f"data: {args.datapoints} datapoints, {megabytes:.1f} MB pre-encoded, {args.reads} random reads")
    report("write", "MB/s", megabytes, writes)
    report("read", "dp/s", args.reads, reads)


if __name__ == "__main__":
    main()
