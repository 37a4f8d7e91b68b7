"""Elastic resume and weighted mixtures with the remote (flight) source.

Ranks are simulated, one loader and one Remote per rank as separate processes would have them.
"""

from __future__ import annotations

import collections
import hashlib

import pytest

from thresher.bag import DatasetReader, DatasetWriter, ShardedDatasetReader, ShardedDatasetWriter, decoders, encoders
from thresher.loader import Loader
from thresher.sources import Epochs, Mix, Remote, Transform

from .conftest import SPEC, points

BATCH = 4


def run_ranks(dataset, connection, world_size, state=None, batches=None):
    """Each rank's batches of names, the rows its Remote fetched, and the job's state."""
    names, fetched, states = [], [], []
    for rank in range(world_size):
        remote = Remote(dataset, connection=connection, prefetch=2)
        with Loader(remote, BATCH, workers=0, rank=rank, world_size=world_size) as loader:
            if state is not None:
                loader.load(state)
            iterator = iter(loader)
            taken = iterator if batches is None else (next(iterator) for _ in range(batches))
            names.append([list(batch["name"]) for batch in taken])
            states.append(loader.save())
        fetched.append(sorted({piece for piece, _ in remote.fetched}))
        remote.close()
    assert all(s == states[0] for s in states)
    return names, fetched, states[0]


def flat(per_rank) -> list[str]:
    return [name for round_ in zip(*per_rank) for batch in round_ for name in batch]


def rows(pieces, shardlen) -> list[int]:
    return sorted(shard * shardlen + row for shard, start, stop in pieces for row in range(start, stop))


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 3)])
def test_remote_source_resumes_at_another_world_size_each_rank_reading_its_own_shards(
    flight_pair, bag_dataset, connect_to, before, after
):
    size = 50
    dataset, _ = bag_dataset(size, BATCH)
    conn = connect_to(flight_pair[0])
    first, first_fetched, state = run_ranks(dataset, conn, before, batches=2)
    rest, rest_fetched, _ = run_ranks(dataset, conn, after, state)
    expected = [f"p{i}" for i in range(size)]
    assert sorted(flat(first) + flat(rest), key=lambda n: int(n[1:])) == expected  # each once
    assert flat(rest) == expected[state["step"] :]
    assert len({len(batches) for batches in rest}) == 1
    # Shard ownership follows the new world size: a rank fetches exactly the rows of its own
    # batches from the resumed step on (shardlen == batch: whole shards), nothing else.
    for rank, pieces in enumerate(rest_fetched):
        own = sorted(int(name[1:]) for batch in rest[rank] for name in batch)
        assert rows(pieces, BATCH) == own
    for rank, pieces in enumerate(first_fetched):
        own = sorted(int(name[1:]) for batch in first[rank] for name in batch)
        assert set(own) <= set(rows(pieces, BATCH))


def _bag(folder, prefix: str, count: int, sharded: bool):
    writer = (
        ShardedDatasetWriter(folder, SPEC, encoders, shardlen=16) if sharded else DatasetWriter(folder, SPEC, encoders)
    )
    with writer:
        for point in points(count):
            writer.append({**point, "name": f"{prefix}{point['name']}"})


def _mixture(remote, local, sharded):
    sources = [Epochs(local, seed=1), Epochs(sharded, seed=2), Epochs(remote, seed=3)]
    return Mix(sources, [0.5, 0.3, 0.2], seed=7)


def _origin(name: str) -> str:
    return name[0]  # "a…" local, "b…" local sharded, "p…" remote


@pytest.mark.slow  # 100k samples: about 15 s on 2 idle cores
def test_a_weighted_mixture_of_local_and_remote_datasets_keeps_its_proportions(
    flight_pair, bag_dataset, connect_to, tmp_path
):
    dataset, _ = bag_dataset(48, 16)
    _bag(tmp_path / "a", "a", 40, sharded=False)
    _bag(tmp_path / "b", "b", 30, sharded=True)
    remote = Remote(dataset, connection=connect_to(flight_pair[0]), prefetch=4)
    local, sharded = DatasetReader(tmp_path / "a", decoders), ShardedDatasetReader(tmp_path / "b", decoders)
    mix = _mixture(remote, local, sharded)
    total, batch = 100_000, 500
    checked = 20  # batches read twice for determinism
    counts, digest = collections.Counter(), hashlib.sha256()
    with Loader(mix, batch, workers=2, prefetch=4) as loader:
        for number in range(total // batch):
            names = next(loader)["name"]
            counts.update(_origin(name) for name in names)
            if number < checked:
                digest.update("".join(names).encode())
    shares = {origin: counts[origin] / total for origin in "abp"}
    for origin, weight in zip("abp", [0.5, 0.3, 0.2]):
        assert abs(shares[origin] - weight) < 0.01, shares
    # Deterministic: the same mixture, read again in another mode, gives the same datapoints.
    again = hashlib.sha256()
    with Loader(mix, batch, workers=2, mode="thread") as loader:
        for _ in range(checked):
            again.update("".join(next(loader)["name"]).encode())
    assert again.hexdigest() == digest.hexdigest()
    remote.close()


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 3)])
def test_a_mixture_with_a_remote_part_resumes_at_another_world_size(
    flight_pair, bag_dataset, connect_to, tmp_path, before, after
):
    dataset, _ = bag_dataset(48, 16)
    _bag(tmp_path / "a", "a", 40, sharded=False)
    _bag(tmp_path / "b", "b", 30, sharded=True)

    def mixture():
        remote = Remote(dataset, connection=connect_to(flight_pair[0]))
        return _mixture(remote, DatasetReader(tmp_path / "a", decoders), ShardedDatasetReader(tmp_path / "b", decoders))

    def names(world_size, state=None, batches=6):
        per_rank, states = [], []
        for rank in range(world_size):
            with Loader(mixture(), BATCH, workers=0, rank=rank, world_size=world_size) as loader:
                if state is not None:
                    loader.load(state)
                per_rank.append([list(next(loader)["name"]) for _ in range(batches)])
                states.append(loader.state_dict())
        assert all(s == states[0] for s in states)
        return flat(per_rank), states[0]

    single, _ = names(1, batches=30)
    first, state = names(before, batches=2)
    rest, _ = names(after, state, batches=3)
    assert first + rest == single[: len(first) + len(rest)]


def _tag(point: dict, seed) -> dict:
    return {**point, "tagged": True}


def test_transform_and_mix_pass_the_loaders_read_plan_to_remote_parts(flight_pair, bag_dataset, connect_to):
    dataset, _ = bag_dataset(24, BATCH)
    conn = connect_to(flight_pair[0])
    first, second = Remote(dataset, connection=conn), Remote(dataset, connection=conn)
    source = Mix([Transform(first, _tag), Transform(second, _tag)], [0.5, 0.5], seed=1)
    with Loader(source, BATCH, workers=0, rank=1, world_size=3) as loader:
        loader.load({"step": 6})
        batches = list(loader)
    # From step 6, rank 1 of 3 has global batches 1 and 4: steps 10..13 and 22..23.
    assert [sorted(int(n[1:]) for n in batch["name"]) for batch in batches] == [[10, 11, 12, 13], [22, 23]]
    for remote in (first, second):
        assert remote.plan == [(2, 2, 4), (3, 0, 2), (5, 2, 4)]
        remote.close()
