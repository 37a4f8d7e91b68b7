"""Partitioning across ranks: equal shares, together the single-process order."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.loader import Loader
from thresher.loader.schedule import Partition
from thresher.sources import Epochs

from .fakes import Points


def label_batches(loader, n=None) -> list[list[int]]:
    iterator = iter(loader)
    if n is None:
        return [b["label"].tolist() for b in iterator]
    return [next(iterator)["label"].tolist() for _ in range(n)]


def interleave(per_rank: list[list]) -> list:
    return [batch for round_ in zip(*per_rank) for batch in round_]


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_together_give_the_single_process_order(world_size):
    source = Epochs(Points(23), seed=1)
    single = label_batches(Loader(source, 4, workers=0), 12 * world_size)
    per_rank = [
        label_batches(Loader(source, 4, workers=0, rank=r, world_size=world_size), 12)
        for r in range(world_size)
    ]
    assert interleave(per_rank) == single


@pytest.mark.parametrize(("size", "world_size"), [(23, 2), (23, 3), (24, 3), (5, 2)])
def test_every_rank_gets_as_many_batches_of_a_finite_source(size, world_size):
    single = label_batches(Loader(Points(size), 4, workers=0))
    per_rank = [
        label_batches(Loader(Points(size), 4, workers=0, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    counts = {len(batches) for batches in per_rank}
    assert counts == {len(single) // world_size}
    # Only whole rounds are kept: the trailing batches that not every rank could get go.
    assert interleave(per_rank) == single[: len(single) // world_size * world_size]


def test_granular_shard_names_are_accepted():
    loader = Loader(Points(16), 4, workers=0, shard_id=1, num_shards=2)
    assert (loader.rank, loader.world_size) == (1, 2)
    assert label_batches(loader) == [[4, 5, 6, 7], [12, 13, 14, 15]]
    with pytest.raises(ValueError):
        Loader(Points(16), 4, rank=0, world_size=2, shard_id=0, num_shards=2)


def test_any_ranks_state_resumes_every_rank_even_at_another_world_size():
    source = Epochs(Points(40), seed=2)
    single = label_batches(Loader(source, 3, workers=0), 30)
    ranks = [Loader(source, 3, workers=2, rank=r, world_size=2) for r in range(2)]
    try:
        for loader in ranks:
            label_batches(loader, 5)
        states = [loader.save() for loader in ranks]
    finally:
        for loader in ranks:
            loader.close()
    assert states[0] == states[1] == {"step": 30, "epoch": 0}
    resumed = []
    for r in range(3):
        loader = Loader(source, 3, workers=0, rank=r, world_size=3)
        loader.load(states[0])
        resumed.append(label_batches(loader, 4))
    assert interleave(resumed) == single[10:22]


def test_partition_arithmetic():
    part = Partition(batch=4, size=10, rank=1, world_size=2)
    assert part.count(0) == 1  # global batches [0..3] [4..7] [8,9]: one full round
    assert part.steps(0, 0) == range(4, 8)
    assert part.position(0, 1) == 8
    last = Partition(batch=4, size=12, rank=2, world_size=3)
    assert last.count(0) == 1 and last.steps(0, 0) == range(8, 12)
    assert Partition(batch=4, size=10, drop_remainder=True).count(0) == 2
    assert Partition(batch=4, size=10).count(0) == 3
    assert Partition(batch=4, size=10).steps(0, 2) == range(8, 10)
    assert Partition(batch=4).count(0) is None
    np.testing.assert_equal(Partition(batch=4, size=10).count(12), 0)
