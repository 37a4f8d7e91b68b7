"""Filtered k-NN over 1M x 128-d float32 vectors (the similarity row of the targets table).

Thresher end to end (client -> flight service -> metadata service -> DuckDB + usearch index and
back) against LanceDB's vector search with a prefilter and FiftyOne Brain's similarity index (sklearn
backend) on the same vectors, where they are installed. For filters keeping 100%, 10% and 1% of the
rows it prints index build time, k=10 query latency p50/p99, recall@10 against an exact numpy search
over the filtered rows, and memory. Targets: p50 <= 10 ms at 10% on a quiet machine, recall >= 0.95,
faster than both peers.

    python benchmarks/similarity.py [--rows 1000000] [--dim 128] [--queries 100] [--no-lancedb] [--no-fiftyone]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

os.environ.setdefault("LANCE_LOG", "error")  # LanceDB's deprecation notices, one per query

from service_process import ServiceProcess, empty_datasource

K = 10
FILTERS = {"100%": None, "10%": 10, "1%": 1}  # keeps rows with bucket < value (buckets 0..99)


def make_vectors(rows: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered vectors (a mixture of 1000 gaussians, as embeddings are) and a bucket 0..99 per row."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    vectors = np.empty((rows, dim), np.float32)
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        vectors[start : start + n] = centres[rng.integers(0, 1000, n)] + rng.normal(scale=0.6, size=(n, dim))
    return vectors, rng.integers(0, 100, rows)


def exact_truth(vectors: np.ndarray, bucket: np.ndarray, queries: np.ndarray) -> dict[str, list[set[int]]]:
    """The exact k nearest row numbers (cosine) per filter and query."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    truth = {}
    for name, below in FILTERS.items():
        rows = np.arange(len(vectors)) if below is None else np.flatnonzero(bucket < below)
        answers = []
        for query in queries:
            scores = unit[rows] @ (query / np.linalg.norm(query))
            top = np.argpartition(-scores, K)[:K]
            answers.append(set(rows[top].tolist()))
        truth[name] = answers
    return truth


@contextlib.contextmanager
def progress(what: str, every: float = 30.0) -> Iterator[None]:
    """Prints how long ``what`` has run every ``every`` seconds until it ends (builds at 1M take minutes)."""
    done = threading.Event()
    started = time.perf_counter()

    def tick() -> None:
        while not done.wait(every):
            print(f"  {what}: {time.perf_counter() - started:.0f} s", flush=True)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        print(f"  {what}: done in {time.perf_counter() - started:.1f} s", flush=True)


def rss_mb(pid: int | None = None) -> float:
    import psutil

    return psutil.Process(pid or os.getpid()).memory_info().rss / 2**20


def summarise(latencies: list[float], found: list[set[int]], truth: list[set[int]]) -> tuple[float, float, float]:
    recall = np.mean([len(f & t) / K for f, t in zip(found, truth)])
    return float(np.percentile(latencies, 50)) * 1000, float(np.percentile(latencies, 99)) * 1000, float(recall)


def run_thresher(vectors, bucket, queries, truth) -> dict:
    rows = len(vectors)
    paths = np.array([f"v{i:07d}" for i in range(rows)])
    out = {}
    with ServiceProcess() as services:
        services.connect()
        ds = empty_datasource("bench/similarity", "vectors")
        from thresher.core.vectors import vector_array

        started = time.perf_counter()
        for start in range(0, rows, 100_000):
            stop = min(rows, start + 100_000)
            ds.upload_metadata_from_dataframe(
                pa.table(
                    {"path": paths[start:stop], "emb": vector_array(vectors[start:stop]), "bucket": bucket[start:stop]}
                ),
                create_missing=True,
            )  # virtual paths, created on purpose
        out["load_s"] = time.perf_counter() - started
        before = rss_mb(services._process.pid)
        started = time.perf_counter()
        with progress("thresher index build"):
            ds.create_vector_index("emb", metric="cosine")
        out["build_s"] = time.perf_counter() - started
        out["memory_mb"] = rss_mb(services._process.pid) - before
        for name, below in FILTERS.items():
            view = ds if below is None else ds[ds["bucket"] < below]
            view = view.select("bucket")
            for query in queries[:3]:  # warm up: the index is loaded, caches filled
                view.nearest("emb", query, k=K)
            latencies, found = [], []
            for query in queries:
                started = time.perf_counter()
                result = view.nearest("emb", query, k=K)
                latencies.append(time.perf_counter() - started)
                found.append({int(path[1:]) for path in result.paths})
            out[name] = summarise(latencies, found, truth[name])
    return out


def run_lancedb(vectors, bucket, queries, truth) -> dict | None:
    try:
        import lancedb
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="lancedb-bench-")
    out = {}
    try:
        db = lancedb.connect(folder)
        dim = vectors.shape[1]
        table = pa.table(
            {
                "id": np.arange(len(vectors)),
                "bucket": bucket,
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
            }
        )
        before = rss_mb()
        started = time.perf_counter()
        # LanceDB's current index API (the metric/num_partitions keywords are deprecated and log a notice).
        from lancedb.index import BTree, IvfPq

        with progress("lancedb table and index build"):
            tbl = db.create_table("vectors", data=table)
            tbl.create_index(
                "vector",
                config=IvfPq(
                    distance_type="cosine",
                    num_partitions=max(1, int(np.sqrt(len(vectors)))),
                    num_sub_vectors=max(1, dim // 8),
                ),
            )
            tbl.create_index("bucket", config=BTree())
        out["build_s"] = time.perf_counter() - started
        for name, below in FILTERS.items():

            def search(query):
                builder = (
                    tbl.search(query)
                    .distance_type("cosine")
                    .nprobes(20)
                    .refine_factor(10)
                    .limit(K)
                    .select(["id", "_distance"])  # naming _distance: its scanner logs a warning per query otherwise
                )
                if below is not None:
                    builder = builder.where(f"bucket < {below}", prefilter=True)
                return builder.to_arrow()

            for query in queries[:3]:
                search(query)
            latencies, found = [], []
            for query in queries:
                started = time.perf_counter()
                result = search(query)
                latencies.append(time.perf_counter() - started)
                found.append(set(result["id"].to_pylist()))
            out[name] = summarise(latencies, found, truth[name])
        out["memory_mb"] = rss_mb() - before
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def run_fiftyone(vectors, bucket, queries, truth) -> dict | None:
    # Its own database folder (a shared ~/.fiftyone may hold another user's running mongod), and the
    # OpenSSL 1.1 that its bundled mongod needs (scripts/fetch_libssl11.sh).
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", tempfile.mkdtemp(prefix="fiftyone-bench-"))
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("THRESHER_LIBSSL11_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "libssl1.1"))
    try:
        import fiftyone.brain  # noqa: F401

        from thresher.ml import voxel51

        fo = voxel51.fiftyone()
        fo.config.show_progress_bars = False
        dataset = fo.Dataset()
    except Exception as error:  # noqa: BLE001 - not installed, or its database cannot start here
        print(f"FiftyOne Brain skipped: {type(error).__name__}: {error}")
        return None
    import fiftyone.brain as fob
    from fiftyone import ViewField as F

    out = {}
    try:
        started = time.perf_counter()
        print(f"  fiftyone: adding {len(bucket):,} samples", flush=True)
        dataset.add_samples(
            [fo.Sample(filepath=f"/nowhere/v{i:07d}.png", bucket=int(b), row=i) for i, b in enumerate(bucket)]
        )
        out["load_s"] = time.perf_counter() - started
        before = rss_mb()
        started = time.perf_counter()
        with progress("fiftyone brain similarity index"):
            fob.compute_similarity(dataset, embeddings=vectors, backend="sklearn", metric="cosine", brain_key="sim")
        out["build_s"] = time.perf_counter() - started
        out["memory_mb"] = rss_mb() - before
        for name, below in FILTERS.items():
            view = dataset if below is None else dataset.match(F("bucket") < below)

            def search(query):
                return view.sort_by_similarity(query, k=K, brain_key="sim").values("row")

            for query in queries[:3]:
                search(query)
            latencies, found = [], []
            for query in queries:
                started = time.perf_counter()
                rows = search(query)
                latencies.append(time.perf_counter() - started)
                found.append(set(rows))
            out[name] = summarise(latencies, found, truth[name])
    finally:
        dataset.delete()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--no-lancedb", action="store_true")
    parser.add_argument("--no-fiftyone", action="store_true")
    args = parser.parse_args()
    vectors, bucket = make_vectors(args.rows, args.dim)
    rng = np.random.default_rng(1)
    queries = vectors[rng.integers(0, args.rows, args.queries)] + rng.normal(scale=0.3, size=(args.queries, args.dim))
    queries = queries.astype(np.float32)
    print(
        f"data: {args.rows:,} x {args.dim}-d float32, k={K}, {args.queries} queries per filter "
        f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})"
    )
    truth = exact_truth(vectors, bucket, queries)
    print(f"{'system':30} {'build s':>8} {'mem MB':>8}  " + "  ".join(f"{n:>24}" for n in FILTERS))
    print(f"{'':30} {'':>8} {'':>8}  " + "  ".join(f"{'p50/p99 ms, recall':>24}" for _ in FILTERS), flush=True)
    runs = {"thresher": run_thresher}
    if not args.no_lancedb:
        runs["lancedb (IVF_PQ, prefilter)"] = run_lancedb
    if not args.no_fiftyone:
        runs["fiftyone brain (sklearn)"] = run_fiftyone
    results = {}
    for system, run in runs.items():  # each row printed as it is measured: a 1M run takes many minutes
        out = results[system] = run(vectors, bucket, queries, truth)
        if out is None:
            print(f"{system:30} not installed", flush=True)
            continue
        cells = "  ".join(f"{out[n][0]:8.2f}/{out[n][1]:8.2f} {out[n][2]:5.3f}" for n in FILTERS)
        print(
            f"{system:30} {out['build_s']:8.1f} {out['memory_mb']:8.0f}  {cells}  (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    ours = results["thresher"]
    for system, out in results.items():
        if system != "thresher" and out is not None:
            ratios = ", ".join(f"{n}: {out[n][0] / ours[n][0]:.1f}x" for n in FILTERS)
            print(f"thresher p50 speed-up over {system}: {ratios}")
    p50, _, recall = ours["10%"]
    print(
        f"targets at 10%: p50 {p50:.2f} ms (<= 10: {'met' if p50 <= 10 else 'MISSED'}), "
        f"recall {recall:.3f} (>= 0.95: {'met' if recall >= 0.95 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
