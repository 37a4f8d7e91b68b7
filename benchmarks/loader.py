"""Loader throughput: decode PNG + batch 64 with 2 workers; and the time to resume.

Runs the loaders over the same bag dataset and the same reader, so they do the same work:
`thresher.loader.Loader` (without and with `recycle_after`), `granular.Loader` (the same two
ways), and a torch `DataLoader` (num_workers=2) over a map-style dataset. Each runs in a fresh process of its own, warms up first, and reports
samples/s, CPU time per sample and the peak memory of its whole process tree (PSS, so shared
memory counts once). The best of several interleaved rounds counts, as other work on a shared
machine slows single rounds down.
Targets: thresher >= 2x granular.Loader and >= 1.2x the torch DataLoader.

Resuming: the time from `load(state)` to the first batch, at step 10 and at step 100k (in batches),
in-process with no workers so that only the resume is timed. Nothing is replayed, so the ratio
should be about 1.

    python benchmarks/loader.py [--images 4096] [--size 64] [--batches 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

BATCH = 64
WORKERS = 2
CONTENDERS = ("thresher", "thresher-recycle", "granular", "granular-recycle", "torch")
RECYCLE_AFTER = 4


def make_dataset(directory: pathlib.Path, images: int, size: int) -> None:
    """PNG images with structure and noise, like photos compress, plus an int label."""
    import granular

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    spec = {"image": "png", "label": "int"}
    with granular.DatasetWriter(directory, spec, granular.encoders) as writer:
        for i in range(images):
            base = ramp[None, :, None] * rng.uniform(0.2, 1.0, 3) + ramp[:, None, None] * 0.3
            noisy = base + rng.normal(0, 12, (size, size, 3))
            image = np.clip(noisy, 0, 255).astype(np.uint8)
            writer.append({"image": image, "label": i % 100})


def open_reader(directory: pathlib.Path):
    """Thresher's bag reader when it is there, else Granular's; every contender uses this one."""
    try:
        from thresher.bag import DatasetReader, decoders
    except ImportError:
        from granular import DatasetReader, decoders
    return DatasetReader(directory, decoders)


class TorchDataset:
    """Map-style dataset over the bag for torch's DataLoader.

    Its workers are forked (torch's default), and forked workers sharing one open file would
    race on its offset, so each process opens its own reader on first use.
    """

    def __init__(self, directory: pathlib.Path, length: int) -> None:
        self.directory = directory
        self.length = length
        self.reader = None
        self.pid = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if self.pid != os.getpid():
            self.reader, self.pid = open_reader(self.directory), os.getpid()
        return self.reader[int(index)]


def iterate(name: str, reader, directory: pathlib.Path):
    """An endless iterator of batches for the contender, and a function that stops it."""
    recycle = RECYCLE_AFTER if name.endswith("-recycle") else False
    if name.startswith("thresher"):
        from thresher.loader import Loader
        from thresher.sources import Epochs

        loader = Loader(Epochs(reader, seed=0), BATCH, workers=WORKERS, prefetch=8, recycle_after=recycle)
        return iter(loader), loader.close
    if name.startswith("granular"):
        import granular

        loader = granular.Loader(granular.sources.Epochs(reader), BATCH, workers=WORKERS, recycle_after=recycle)
        return iter(loader), loader.close
    import torch

    torch_loader = torch.utils.data.DataLoader(
        TorchDataset(directory, len(reader)),
        batch_size=BATCH,
        shuffle=True,
        num_workers=WORKERS,
        drop_last=True,
        persistent_workers=True,
        generator=torch.Generator().manual_seed(0),
    )

    def endless():
        while True:
            yield from torch_loader

    return endless(), lambda: None


def _read(pid: int | str, name: str) -> str:
    """/proc/PID/NAME, or "" if the process has gone."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read()
    except OSError:
        return ""


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...)."""
    return _read(pid, "stat").rsplit(")", 1)[-1].split()


def _tree(root: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        fields = _stat(entry) if entry.isdigit() else []
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_pss_kib(root: int) -> int:
    """Proportional set size of a process tree, in KiB (shared pages split among sharers)."""
    total = 0
    for pid in _tree(root):
        for line in _read(pid, "smaps_rollup").splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) that a process tree's live processes have used."""
    ticks = 0
    for pid in _tree(root):
        fields = _stat(pid)
        if len(fields) > 12:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class PeakSampler(threading.Thread):
    """Samples the process tree's PSS every 20 ms and keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, tree_pss_kib(os.getpid()))


def run_one(name: str, directory: pathlib.Path, warmup: int, batches: int) -> dict:
    """Times one contender in this process; returns its figures."""
    sampler = PeakSampler()
    sampler.start()
    reader = open_reader(directory)
    batches_iter, stop = iterate(name, reader, directory)
    checksum = 0
    for _ in range(warmup):
        checksum += int(next(batches_iter)["label"][0])
    start, cpu_start = time.perf_counter(), tree_cpu_s(os.getpid())
    for _ in range(batches):
        batch = next(batches_iter)
        checksum += int(batch["label"][0])
        assert batch["image"].shape[0] == BATCH
    elapsed = time.perf_counter() - start
    cpu = tree_cpu_s(os.getpid()) - cpu_start
    sampler.done.set()
    sampler.join()
    stop()
    reader.close()
    return {
        "name": name,
        "samples_per_s": batches * BATCH / elapsed,
        "cpu_us_per_sample": cpu / (batches * BATCH) * 1e6,
        "peak_pss_mib": sampler.peak / 1024,
        "maxrss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checksum": checksum,
    }


def time_resume(directory: pathlib.Path, at_batch: int, repeats: int) -> float:
    """Median seconds from `load()` at `at_batch` batches into the job to its first batch."""
    from thresher.loader import Loader
    from thresher.sources import Epochs

    reader = open_reader(directory)
    times = []
    for _ in range(repeats):
        loader = Loader(Epochs(reader, seed=0), BATCH, workers=0)
        start = time.perf_counter()
        loader.load({"step": at_batch * BATCH, "epoch": 0})
        next(loader)
        times.append(time.perf_counter() - start)
        loader.close()
    reader.close()
    return float(np.median(times))


def report_resume(directory: pathlib.Path, repeats: int) -> None:
    time_resume(directory, 1, 3)  # warm up: page cache, imports
    early, late = [], []
    for _ in range(3):  # interleaved, so that other load on the machine hits both alike
        early.append(time_resume(directory, 10, repeats))
        late.append(time_resume(directory, 100_000, repeats))
    early_s, late_s = min(early), min(late)
    print(
        f"resume to the first batch: step 10 {early_s * 1e3:6.2f} ms, step 100k "
        f"{late_s * 1e3:6.2f} ms; step 100k / step 10 = {late_s / early_s:.2f}x "
        "(no replay: target about 1x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--warmup", type=int, default=30, help="batches before timing")
    parser.add_argument("--batches", type=int, default=300, help="batches timed")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contender")
    parser.add_argument("--resume-repeats", type=int, default=9, help="timed resumes per point")
    parser.add_argument("--only", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.only:  # a child run: one contender, figures as JSON on the last line
        print(json.dumps(run_one(args.only, args.dataset, args.warmup, args.batches)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(tmp) / "pngs"
        make_dataset(directory, args.images, args.size)
        reader = open_reader(directory)
        print(
            f"{args.images} PNG images {args.size}x{args.size}x3, batch {BATCH}, "
            f"{WORKERS} workers, {args.batches} batches timed after {args.warmup}; "
            f"reader: {type(reader).__module__}.{type(reader).__name__}"
        )
        reader.close()
        report_resume(directory, args.resume_repeats)
        # Other work on the machine comes and goes: run the contenders in turn, several rounds,
        # and keep each one's best round.
        runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        for _ in range(args.rounds):
            for name in CONTENDERS:
                command = [
                    sys.executable, __file__, "--only", name, "--dataset", str(directory),
                    "--warmup", str(args.warmup), "--batches", str(args.batches),
                ]  # fmt: skip
                output = subprocess.run(command, check=True, capture_output=True, text=True)
                runs[name].append(json.loads(output.stdout.strip().splitlines()[-1]))
    best = {}
    for name, results in runs.items():
        best[name] = max(results, key=lambda r: r["samples_per_s"])
        rates = ", ".join(f"{r['samples_per_s']:.0f}" for r in results)
        cpu = min(r["cpu_us_per_sample"] for r in results)
        peak = max(r["peak_pss_mib"] for r in results)
        print(
            f"  {name:16s} {best[name]['samples_per_s']:7.0f} samples/s (rounds: {rates})   "
            f"CPU {cpu:5.0f} us/sample   peak PSS {peak:6.1f} MiB   "
            f"parent maxrss {best[name]['maxrss_self_mib']:6.1f} MiB"
        )
    ours = best["thresher"]["samples_per_s"]
    vs_granular = ours / best["granular"]["samples_per_s"]
    vs_torch = ours / best["torch"]["samples_per_s"]
    print(f"thresher / granular.Loader = {vs_granular:.2f}x (target >= 2x)")
    recycled = best["thresher-recycle"]["samples_per_s"]
    print(
        f"thresher recycle_after={RECYCLE_AFTER} / without = {recycled / ours:.2f}x; "
        f"/ granular.Loader recycle_after={RECYCLE_AFTER} = "
        f"{recycled / best['granular-recycle']['samples_per_s']:.2f}x (target >= 2x)"
    )
    print(f"thresher / torch DataLoader = {vs_torch:.2f}x (target >= 1.2x)")
    cpu = {name: min(r["cpu_us_per_sample"] for r in results) for name, results in runs.items()}
    print(
        "CPU per sample, whole process tree (less sensitive to other load on the machine): "
        f"granular / thresher = {cpu['granular'] / cpu['thresher']:.2f}x, "
        f"recycling: {cpu['granular-recycle'] / cpu['thresher-recycle']:.2f}x, "
        f"torch / thresher = {cpu['torch'] / cpu['thresher']:.2f}x"
    )


if __name__ == "__main__":
    main()
