"""Elastic resume: a state saved with N ranks resumes with M ranks, exactly once.

Ranks are simulated in one process (one loader per rank); tests/loader/test_checkpoint.py runs
real gloo ranks.
"""

from __future__ import annotations

import numpy as np
import pytest

from thresher.loader import Loader
from thresher.sources import Epochs, Mix, Transform

from .fakes import Points

BATCH = 4


class Offset(Points):
    """Points whose labels start at 1000, so a mixture's datapoints say where they came from."""

    def __getitem__(self, index: int) -> dict:
        return {**super().__getitem__(index), "label": 1000 + index}


def run_ranks(source, world_size, state=None, batches=None, *, workers=0, drop_remainder=False):
    """Each rank's label batches (all of a finite pass when `batches` is None), and its state."""
    per_rank, states = [], []
    for rank in range(world_size):
        with Loader(source, BATCH, workers=workers, rank=rank, world_size=world_size,
                    drop_remainder=drop_remainder) as loader:  # fmt: skip
            if state is not None:
                loader.load(state)
            iterator = iter(loader)
            taken = iterator if batches is None else (next(iterator) for _ in range(batches))
            per_rank.append([batch["label"].tolist() for batch in taken])
            states.append(loader.state_dict())
    assert all(s == states[0] for s in states), "ranks in step save the same state"
    return per_rank, states[0]


def flat(per_rank) -> list[int]:
    """The labels of all ranks' batches, round by round, rank by rank."""
    return [label for round_ in zip(*per_rank) for batch in round_ for label in batch]


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 3)])
@pytest.mark.parametrize("size", [50, 64, 41])
def test_finite_source_resumes_at_another_world_size_exactly_once(before, after, size):
    first, state = run_ranks(Points(size), before, batches=2)
    assert state["step"] == 2 * BATCH * before
    rest, _ = run_ranks(Points(size), after, state)
    seen, delivered = flat(first), flat(rest)
    assert sorted(seen + delivered) == list(range(size))  # every datapoint once, none twice
    assert delivered == list(range(state["step"], size))  # in the job's step order
    assert len({len(batches) for batches in rest}) == 1  # every rank as many batches


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 3)])
def test_drop_remainder_drops_only_the_tail_that_fills_no_whole_round(before, after):
    size = 59
    first, state = run_ranks(Points(size), before, batches=2, drop_remainder=True)
    rest, _ = run_ranks(Points(size), after, state, drop_remainder=True)
    delivered = flat(rest)
    whole = (size - state["step"]) // (BATCH * after) * BATCH * after
    assert delivered == list(range(state["step"], state["step"] + whole))
    assert not set(flat(first)) & set(delivered)
    assert {len(b) for batches in rest for b in batches} == {BATCH}


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 3)])
def test_shuffled_epochs_resume_the_rest_of_the_epoch_exactly_once(before, after):
    length = 70
    source = Epochs(Points(length), seed=9)
    first, state = run_ranks(source, before, batches=3)
    remaining = length - state["step"]
    rounds = -(-remaining // (BATCH * after))
    rest, _ = run_ranks(source, after, state, batches=rounds)
    epoch_rest = flat(rest)[:remaining]  # the steps of epoch 0; the rest is epoch 1
    assert sorted(flat(first) + epoch_rest) == list(range(length))
    # The order is a function of (seed, epoch, world size per segment): any workers, same batches.
    again, _ = run_ranks(source, after, state, batches=rounds, workers=2)
    assert again == rest


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 3)])
def test_a_mixture_resumes_at_another_world_size_exactly_once(before, after):
    size = 90
    mix = Mix([Points(size), Transform(Offset(size), _keep)], [0.6, 0.4], seed=3)
    single, _ = run_ranks(mix, 1)
    first, state = run_ranks(mix, before, batches=2)
    rest, _ = run_ranks(mix, after, state)
    # Step s gives datapoint s of the source the mixture picks for s: the same picks resumed.
    assert flat(first) + flat(rest) == flat(single)
    assert sorted(label % 1000 for label in flat(first) + flat(rest)) == list(range(size))
    assert len({len(batches) for batches in rest}) == 1


def test_resume_after_resume_chains_segments_of_different_world_sizes():
    size = 97
    a, state_a = run_ranks(Points(size), 4, batches=1)
    b, state_b = run_ranks(Points(size), 2, state_a, batches=2)
    c, _ = run_ranks(Points(size), 3, state_b)
    assert flat(a) + flat(b) + flat(c) == list(range(size))


def _keep(point: dict, seed) -> dict:
    return point


def test_state_dict_is_save_and_load_state_dict_is_load():
    loader = Loader(Epochs(Points(20)), BATCH, workers=0)
    next(loader)
    assert loader.state_dict() == loader.save() == {"step": 4, "epoch": 0}
    other = Loader(Epochs(Points(20)), BATCH, workers=0)
    other.load_state_dict({"step": np.int64(4), "epoch": 0})
    assert next(other)["label"].tolist() == next(loader)["label"].tolist()
