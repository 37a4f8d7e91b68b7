"""A bag export written by Ray tasks: one task per shard, the same files as a local export.

The driver plans the export exactly as ``thresher.export`` does (spec, keys, manifest, the check against
an earlier export at the target) and hands each task the rows of one shard: paths and metadata values,
which are small; the files are fetched by the task itself (through flight, or from an enabled bucket).
A task writes its shard with the same writer and encoders as the local export, so every shard file is
byte for byte the one a local export writes. A shard is complete once its ``spec.json`` is in: a task
that finds its shard complete skips it, and one that finds it unfinished (its earlier attempt died)
clears it and writes it again, so a retried or resumed export has every datapoint exactly once. The
manifest is written by the driver, ``complete`` only after every task succeeded.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from thresher import export as exporting
from thresher.core.bag import ShardedDatasetWriter, encoders, files
from thresher.core.bag.sharded import shard_name
from thresher.core.bag.spec import SPEC_FILE
from thresher.ray_engine import require_ray
from thresher.ray_engine.remote import DatasourceRef

# A task that dies (its worker or node lost) is run again this many times; each run resumes the shard.
TASK_RETRIES = 3


def write_shard(
    source: DatasourceRef,
    target: str,
    spec: dict[str, str],
    shardlen: int,
    shards: int,
    number: int,
    points: list[dict[str, Any]],
    image_size: tuple[int, int] | None,
    threads: int,
    on_record: Callable[[int, int], None] | None = None,
) -> int:
    """Writes shard ``number`` of ``shards`` holding ``points`` (their files fetched here); returns the
    rows written now (0 when the shard was already complete). ``on_record(shard, row)`` is called after
    each row (progress reporting, fault injection)."""
    with ShardedDatasetWriter(
        target, spec, encoders, shardlen=shardlen, shardstart=number, shardstep=max(1, shards)
    ) as writer:
        if len(writer) == len(points) and writer.shards:
            return 0  # complete from an earlier attempt or an earlier export
        fetch = None
        datasource = None
        if exporting.FILE_KEY in spec:
            datasource = source.open()
            fetch = exporting.fetcher(datasource, spec[exporting.FILE_KEY], image_size)
        try:
            with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
                contents = pool.map(fetch, (p[exporting.PATH_KEY] for p in points)) if fetch else (None for _ in points)
                for row, (point, content) in enumerate(zip(points, contents)):
                    if fetch:
                        point = {**point, exporting.FILE_KEY: content}
                    writer.append(point)
                    if on_record is not None:
                        on_record(number, row)
        finally:
            if datasource is not None:
                datasource.connection.close()
    return len(points)


def export_on_ray(
    result: Any,
    target: str,
    columns: Sequence[str] | None = None,
    shardlen: int = exporting.DEFAULT_SHARDLEN,
    formats: dict[str, str] | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    files_too: bool = True,
    threads: int = 8,
    num_cpus: float = 1,
    on_record: Callable[[int, int], None] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """``QueryResult.export`` with every shard written by a Ray task; returns the manifest.

    ``threads``: file fetches in flight per task; ``num_cpus``: CPUs Ray reserves per task. The target
    must be reachable from every node (``s3://``/``gs://``, or a shared folder) on a cluster.
    ``progress`` is accepted for the local export's signature; Ray's dashboard shows the tasks.
    """
    ray = require_ray()
    plan = exporting.plan_export(result, target, columns, shardlen, formats, image_size, files_too)
    target, paths, manifest = plan.target, plan.paths, plan.manifest
    shards = max(1, math.ceil(len(paths) / shardlen))
    done = sum(
        min(shardlen, len(paths) - n * shardlen)
        for n in range(shards)
        if files.exists(files.join(files.join(target, shard_name(n)), SPEC_FILE))
    )
    if not files.is_remote(target):
        os.makedirs(target, exist_ok=True)
    exporting.write_manifest(target, {**manifest, "rows_done": done})
    values = plan.values()
    source = DatasourceRef.of(plan.datasource)
    task = ray.remote(write_shard).options(num_cpus=num_cpus, max_retries=TASK_RETRIES)
    pending = []
    for number in range(shards):
        rows = range(number * shardlen, min(len(paths), (number + 1) * shardlen))
        points = [plan.point(values, i) for i in rows]
        pending.append(
            task.remote(source, target, plan.spec, shardlen, shards, number, points, image_size, threads, on_record)
        )
    ray.get(pending)
    manifest.update(rows_done=len(paths), shards=shards, complete=True)
    exporting.write_manifest(target, manifest)
    return manifest
