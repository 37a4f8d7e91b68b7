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
        label_batches(Loader(source, 4, workers=0, rank=r, world_size=world_size), 12) for r in range(world_size)
    ]
    assert interleave(per_rank) == single


@pytest.mark.parametrize(("size", "world_size"), [(23, 2), (23, 3), (24, 3), (5, 2), (2, 3)])
def test_every_rank_gets_as_many_batches_and_every_step_once(size, world_size):
    per_rank = [
        label_batches(Loader(Points(size), 4, workers=0, rank=r, world_size=world_size)) for r in range(world_size)
    ]
    rounds = -(-size // (4 * world_size))
    assert {len(batches) for batches in per_rank} == {rounds}
    # Taken in turn, the ranks' batches are the single-process order, the tail round included
    # (its batches cut at the last step, some maybe empty).
    single = label_batches(Loader(Points(size), 4, workers=0))
    assert [b for b in interleave(per_rank) if b] == single
    delivered = [label for batch in interleave(per_rank) for label in batch]
    assert delivered == list(range(size))


@pytest.mark.parametrize(("size", "world_size"), [(23, 2), (23, 3), (24, 3), (5, 2)])
def test_drop_remainder_leaves_out_the_tail_that_fills_no_whole_round(size, world_size):
    per_rank = [
        label_batches(Loader(Points(size), 4, workers=0, rank=r, world_size=world_size, drop_remainder=True))
        for r in range(world_size)
    ]
    rounds = size // (4 * world_size)
    assert {len(batches) for batches in per_rank} == {rounds}
    delivered = [label for batch in interleave(per_rank) for label in batch]
    assert delivered == list(range(rounds * 4 * world_size))


def test_a_rank_whose_tail_part_is_empty_gets_an_empty_batch_of_the_right_shape():
    batches = list(Loader(Points(5), 4, workers=0, rank=2, world_size=3))
    assert [len(b["label"]) for b in batches] == [0]
    assert batches[0]["image"].shape == (0, 4, 3) and batches[0]["image"].dtype == np.uint8
    assert batches[0]["name"] == []


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
    assert part.count(0) == 2  # [0..3] [4..7] a full round, then the tail [8] [9]
    assert part.steps(0, 0) == range(4, 8)
    assert part.steps(0, 1) == range(10, 10)  # the tail's second slice: empty
    assert Partition(batch=4, size=10, rank=0, world_size=2).steps(0, 1) == range(8, 10)
    assert part.position(0, 1) == 8 and part.position(0, 2) == 10
    assert list(part.ranges(0)) == [range(4, 8), range(10, 10)]
    assert Partition(batch=4, size=10, rank=1, world_size=2, drop_remainder=True).count(0) == 1
    last = Partition(batch=4, size=12, rank=2, world_size=3)
    assert last.count(0) == 1 and last.steps(0, 0) == range(8, 12)
    assert Partition(batch=4, size=10, drop_remainder=True).count(0) == 2
    assert Partition(batch=4, size=10).count(0) == 3
    assert Partition(batch=4, size=10).steps(0, 2) == range(8, 10)
    assert Partition(batch=4).count(0) is None
    np.testing.assert_equal(Partition(batch=4, size=10).count(12), 0)
