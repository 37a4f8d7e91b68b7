"""granular's Loader surface: argument orders of both releases, recycle_after, mp, consumed,
save()/load() on the loader and its iterator, and load() while running."""

from __future__ import annotations

import multiprocessing

import pytest

from thresher.loader import Loader
from thresher.sources import Epochs

from .fakes import Points


def labels(batches) -> list[list[int]]:
    return [batch["label"].tolist() for batch in batches]


def take(iterator, n: int) -> list[dict]:
    return [next(iterator) for _ in range(n)]


def test_positional_arguments_in_granular_0_22_order():
    loader = Loader(Points(16), 4, 3, 0, 2, 1, 2)  # prefetch, workers, recycle_after, shard, shards
    assert (loader.prefetch, loader.workers, loader.recycle_after) == (3, 0, 2)
    assert (loader.shard_id, loader.num_shards) == (1, 2)
    assert labels(loader) == [[4, 5, 6, 7], [12, 13, 14, 15]]


def test_positional_arguments_in_granular_0_21_order():
    loader = Loader(Points(16), 4, (), None, 3, 0, 2, 1, 2)
    assert (loader.prefetch, loader.workers, loader.recycle_after) == (3, 0, 2)
    assert (loader.rank, loader.world_size) == (1, 2)


def test_removed_and_clashing_arguments_fail_clearly():
    with pytest.raises(ValueError, match="Transform"):
        Loader(Points(4), 2, (lambda x: x,))
    with pytest.raises(ValueError, match="Epochs"):
        Loader(Points(4), 2, shuffle=True)
    with pytest.raises(TypeError, match="both by position and by name"):
        Loader(Points(4), 2, 3, prefetch=4)
    with pytest.raises(TypeError, match="at most"):
        Loader(Points(4), 2, 1, 0, 0, 0, 1, None, "extra")
    with pytest.raises(ValueError, match="start_method or mp"):
        Loader(Points(4), 2, mp=multiprocessing.get_context("spawn"), start_method="spawn")


def test_mp_context_is_used_for_workers(no_leaks):
    expected = labels(Loader(Points(10), 4, workers=0))
    context = multiprocessing.get_context("spawn")
    with Loader(Points(10), 4, workers=1, mp=context) as loader:
        assert labels(loader) == expected


def test_recycle_after_bounds_shared_memory_when_batches_are_kept(no_leaks):
    source = Epochs(Points(50), shuffle=False)
    expected = labels(take(Loader(source, 5, workers=0), 40))
    with Loader(source, 5, workers=1, prefetch=2, recycle_after=3) as recycling:
        kept = take(recycling, 40)
        recycled_segments = len(recycling.shared_memory_names)
        # The latest batch and the 3 before it are intact.
        assert labels(kept[-4:]) == expected[-4:]
    with Loader(source, 5, workers=1, prefetch=2) as plain:
        kept_plain = take(plain, 40)
        plain_segments = len(plain.shared_memory_names)
        assert labels(kept_plain) == expected
    # Without recycling, every kept batch holds its own segment; with it, a bounded few.
    assert recycled_segments <= 3 + 2 + 2 < plain_segments


def test_consumed_save_and_load_on_the_loader_and_its_iterator():
    loader = Loader(Epochs(Points(30), seed=1), 4, workers=0, rank=1, world_size=2)
    expected = labels(take(Loader(Epochs(Points(30), seed=1), 4, workers=0, rank=1, world_size=2), 6))
    iterator = iter(loader)
    take(iterator, 3)
    assert iterator.consumed == loader.consumed == 3 * 4 * 2
    state = iterator.save()
    assert state == loader.save() == {"step": 24, "epoch": 0}
    assert labels(take(iterator, 3)) == expected[3:]
    iterator.load({"step": 24})  # granular's own state has the step alone
    assert labels(take(iterator, 3)) == expected[3:]


def test_load_while_running_drains_in_flight_batches_and_keeps_the_workers(no_leaks):
    source = Epochs(Points(40), seed=2)
    expected = labels(take(Loader(source, 4, workers=0), 12))
    with Loader(source, 4, workers=2, prefetch=6) as loader:
        take(loader, 5)
        pids = loader.worker_pids
        loader.load({"step": 8, "epoch": 0})
        assert labels(take(loader, 4)) == expected[2:6]
        assert loader.worker_pids == pids
        loader.load(loader.save())
        assert labels(take(loader, 2)) == expected[6:8]


def test_granular_reads_our_state_and_we_read_granulars():
    granular = pytest.importorskip("granular")
    ours = Loader(Epochs(Points(20)), 4, workers=0)
    take(ours, 2)
    theirs = granular.Loader(Epochs(Points(20)), 4, workers=0)
    theirs.load(ours.save())
    assert theirs.consumed == 8
    fresh = Loader(Epochs(Points(20)), 4, workers=0)
    fresh.load(theirs.save())
    assert fresh.consumed == 8 and labels(take(fresh, 1)) == labels(take(ours, 1))
    theirs.close()


def test_load_drops_in_flight_batches_without_computing_or_raising_them(no_leaks):
    from .fakes import FailAt, Recorder

    recorder = Recorder(40)
    loader = Loader(recorder, 4, workers=0, prefetch=5)
    next(loader)
    loader.load({"step": 20})
    assert recorder.asked == [0, 1, 2, 3]  # the dropped batches were never computed
    assert next(loader)["label"].tolist() == [20, 21, 22, 23]
    # A batch that fails while in flight is dropped with the others; the workers stay.
    with Loader(FailAt(40, bad=9), 4, workers=2, prefetch=4) as failing:
        next(failing)
        pids = failing.worker_pids
        failing.load({"step": 24})
        assert next(failing)["label"].tolist() == [24, 25, 26, 27]
        assert failing.worker_pids == pids
