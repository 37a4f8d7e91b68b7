"""A training script as a granular user writes it, run with `granular` or with `thresher.bag`.

    python granular_script.py MODULE FOLDER OUT.json

It writes a dataset and a sharded dataset with MODULE, reads them back, mixes them with the
sources, and loads batches with worker processes, saving and resuming on the way; the batches go
to OUT.json as lists so the two runs can be compared. Nothing in it names thresher: the only
difference between the runs is the module imported as `granular`.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import sys

import numpy as np


def augment(point, seed):
    """A Transform function at module level, so worker processes can unpickle it."""
    rng = np.random.default_rng(seed)
    return {**point, "noise": rng.integers(0, 1000, size=2)}


def points(count, offset):
    for i in range(count):
        yield {"image": np.full((2, 3), (i + offset) % 251, np.uint8), "label": i + offset}


def as_lists(batch):
    return {key: np.asarray(value).tolist() for key, value in sorted(batch.items())}


def main(module_name, folder, out):
    granular = importlib.import_module(module_name)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"image": "array", "label": "int"}
    with granular.DatasetWriter(folder / "single", spec, granular.encoders) as writer:
        for point in points(30, 0):
            writer.append(point)
    with granular.ShardedDatasetWriter(folder / "sharded", spec, granular.encoders, 8) as writer:
        for point in points(20, 1000):
            writer.append(point)
    # Only picklable decoders, so that spawned workers can receive the readers.
    decoders = {key: granular.decoders[key] for key in ("array", "int")}
    single = granular.DatasetReader(folder / "single", decoders)
    sharded = granular.ShardedDatasetReader(folder / "sharded", decoders)
    assert len(single) == 30 and len(sharded) == 20

    sources = granular.sources
    first = sources.Transform(sources.Epochs(single, shuffle=True), augment, seed=3)
    second = sources.Transform(sources.Epochs(sharded, shuffle=True), augment, seed=4)
    source = sources.Mix([sources.Interleave([first, second]), second], [0.7, 0.3], seed=5)

    result = {}
    loader = granular.Loader(source, batch=6, prefetch=4, workers=2)
    iterator = iter(loader)
    result["first"] = [as_lists(next(iterator)) for _ in range(5)]
    state = loader.save()
    result["state"] = state
    result["after"] = [as_lists(next(iterator)) for _ in range(3)]
    # Loading while running: the batches in flight are drained, the next one is the state's.
    iterator.load(state)
    result["reloaded"] = [as_lists(next(iterator)) for _ in range(3)]
    result["consumed"] = iterator.consumed
    loader.close()

    resumed = granular.Loader(source, batch=6, prefetch=4, workers=2)
    resumed.load(state)
    iterator = iter(resumed)
    result["resumed"] = [as_lists(next(iterator)) for _ in range(3)]
    resumed.close()

    halves = []
    for shard_id in range(2):
        part = granular.Loader(source, batch=6, workers=1, shard_id=shard_id, num_shards=2)
        iterator = iter(part)
        halves.append([as_lists(next(iterator)) for _ in range(2)])
        part.close()
    result["shards"] = halves
    pathlib.Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
