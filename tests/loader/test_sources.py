"""Step sources: pure functions of the step, Granular's semantics, the seed honoured."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from thresher import sources
from thresher.sources import Epochs, Interleave, Mix, Sample, Transform, Truncate

from .fakes import Points, augment


@pytest.fixture
def granular():
    return pytest.importorskip("granular")


def labels(source, steps) -> list[int]:
    return [source(step)["label"] for step in steps]


def test_epochs_visit_every_item_once_per_epoch_in_a_new_order():
    source = Epochs(Points(20), seed=3)
    first, second = labels(source, range(20)), labels(source, range(20, 40))
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second
    assert labels(source, range(20)) == first  # the same step always gives the same item


def test_epochs_honour_the_seed():
    orders = {seed: labels(Epochs(Points(50), seed=seed), range(50)) for seed in (0, 1, 2)}
    assert len({tuple(order) for order in orders.values()}) == 3
    assert labels(Epochs(Points(50), seed=1), range(50)) == orders[1]


def test_epochs_with_seed_zero_match_granular(granular):
    ours, theirs = Epochs(Points(30)), granular.sources.Epochs(Points(30))
    assert labels(ours, range(90)) == labels(theirs, range(90))


def test_epochs_without_shuffle_and_with_a_shorter_length():
    assert labels(Epochs(Points(10), shuffle=False), range(12)) == [*range(10), 0, 1]
    assert sorted(labels(Epochs(Points(10), length=4), range(4))) == [0, 1, 2, 3]
    assert Epochs(Points(10)).size is None
    with pytest.raises(TypeError):
        len(Epochs(Points(10)))


def test_epochs_pickle_without_their_cached_orders():
    source = Epochs(Points(1000), seed=4)
    expected = labels(source, range(5))
    payload = pickle.dumps(source)
    assert len(payload) < 2000
    assert labels(pickle.loads(payload), range(5)) == expected


def test_transform_passes_the_per_step_seed():
    seen = []

    def record(point, seed):
        seen.append(seed)
        return point

    source = Transform(Points(5), record, seed=9)
    source(3)
    assert seen == [[9, 3]]
    assert len(source) == 5  # a transform of a finite source stays finite
    noisy = Transform(Points(5), augment, seed=1)
    np.testing.assert_array_equal(noisy(2)["noise"], noisy(2)["noise"])
    assert not np.array_equal(noisy(2)["noise"], noisy(3)["noise"])
    assert not np.array_equal(noisy(2)["noise"], Transform(Points(5), augment, seed=2)(2)["noise"])


def test_sample_draws_like_granular(granular):
    ours = Sample(Points(100), seed=5)
    theirs = granular.sources.Sample(Points(100), seed=5)
    assert labels(ours, range(50)) == labels(theirs, range(50))
    assert all(0 <= label < 100 for label in labels(ours, range(200)))


def test_truncate_cycles_through_the_first_items():
    assert labels(Truncate(Points(10), 3), range(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert labels(Truncate(Points(2), 5), range(3)) == [0, 1, 0]


def test_interleave_takes_each_source_in_turn():
    source = Interleave([Points(3), Transform(Points(4), lambda p, seed: {"label": -p["label"]})])
    assert labels(source, range(6)) == [0, 0, 1, -1, 2, -2]
    assert source.size == 6


def test_mix_chooses_like_granular_and_by_weight(granular):
    parts = [Points(1000), Transform(Points(1000), lambda p, seed: {"label": -1})]
    ours = Mix(parts, [3, 1], seed=7)
    theirs = granular.sources.Mix(parts, [3, 1], seed=7)
    assert labels(ours, range(200)) == labels(theirs, range(200))
    picks = labels(ours, range(1000))
    assert 650 < sum(label >= 0 for label in picks) < 850  # about 3 in 4 from the first
    assert all(label >= 0 for label in labels(Mix(parts, [1, 0]), range(100)))
    with pytest.raises(ValueError):
        Mix(parts, [1])
    with pytest.raises(ValueError):
        Mix(parts, [0, 0])


def test_any_indexable_or_callable_is_a_source():
    assert sources.as_function(Points(3))(1)["label"] == 1
    assert sources.as_function(lambda step: {"s": step})(4) == {"s": 4}
    assert sources.size_of([{"a": 1}] * 3) == 3
    assert sources.size_of(lambda step: {}) is None
    with pytest.raises(TypeError):
        sources.as_function(42)
