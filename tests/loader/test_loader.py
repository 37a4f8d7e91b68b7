"""The Loader: contents, determinism, resuming, errors and clean shutdown."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from thresher.loader import Loader, LoaderError, WorkerError
from thresher.sources import Epochs, Transform

from .conftest import descendants, shm_exists
from .fakes import (
    BlockAt,
    DieAt,
    FailAt,
    Growing,
    Points,
    Ragged,
    Recorder,
    Unsendable,
    augment,
)


def take(loader: Loader, n: int) -> list[dict]:
    iterator = iter(loader)
    return [next(iterator) for _ in range(n)]


def assert_same_batches(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert a[key].dtype == b[key].dtype
                np.testing.assert_array_equal(a[key], b[key])
            else:
                assert type(a[key]) is type(b[key])
                assert len(a[key]) == len(b[key])
                for x, y in zip(a[key], b[key]):
                    np.testing.assert_array_equal(x, y)


def test_one_pass_over_a_finite_source(no_leaks):
    with Loader(Points(10), 4, workers=2) as loader:
        assert len(loader) == 3
        batches = list(loader)
        assert [b["label"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        first = batches[0]
        assert list(first) == ["image", "label", "score", "name"]
        assert first["image"].shape == (4, 4, 3) and first["image"].dtype == np.uint8
        assert first["label"].dtype == np.int64
        np.testing.assert_array_equal(first["score"], [0.0, 0.5, 1.0, 1.5])
        assert first["name"] == ["p0", "p1", "p2", "p3"]
        # The next iteration is the next pass, in the same order.
        assert loader.epoch == 1
        assert [b["label"].tolist() for b in loader][0] == [0, 1, 2, 3]


def test_drop_remainder_leaves_out_the_short_batch():
    loader = Loader(Points(10), 4, workers=0, drop_remainder=True)
    assert len(loader) == 2
    assert [b["label"].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_varying_shapes_and_strings_come_back_as_lists():
    with Loader(Ragged(), 5, workers=2) as loader:
        batch = take(loader, 1)[0]
    assert isinstance(batch["tokens"], list)
    assert [t.tolist() for t in batch["tokens"]] == [[], [0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert batch["raw"] == [b"\x00", b"\x01", b"\x02", b"\x03", b"\x04"]


def test_batches_do_not_depend_on_workers_or_mode():
    source = Transform(Epochs(Points(37), seed=5), augment, seed=1)
    expected = take(Loader(source, 8, workers=0), 12)
    for workers, mode in [(1, "process"), (3, "process"), (2, "thread")]:
        with Loader(source, 8, workers=workers, prefetch=5, mode=mode) as loader:
            assert_same_batches(take(loader, 12), expected)


START_METHODS_SCRIPT = """
import json, os, sys
import numpy as np
from thresher.loader import Loader
from thresher.sources import Epochs

data = [{"x": np.full(3, i), "s": str(i)} for i in range(20)]
out = {}
for method in sys.argv[1:]:
    with Loader(Epochs(data, seed=1), 6, workers=2, start_method=method) as loader:
        iterator = iter(loader)
        batches = [next(iterator) for _ in range(5)]
        names = loader.shared_memory_names
    out[method] = {
        "x": [b["x"].tolist() for b in batches],
        "s": [b["s"] for b in batches],
        "left": [n for n in names if os.path.exists("/dev/shm/" + n)],
    }
print(json.dumps(out))
"""


@pytest.mark.slow(reason="worker processes of every start method")
def test_every_start_method_gives_the_same_batches_and_leaks_nothing():
    # In a fresh interpreter: forking this test process, which may hold other tests' threads,
    # is exactly what the default start method avoids. The resource tracker reports any shared
    # memory left registered on its stderr when the interpreter exits.
    methods = ["fork", "spawn", "forkserver"]
    run = subprocess.run(
        [sys.executable, "-c", START_METHODS_SCRIPT, *methods],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    results = json.loads(run.stdout)
    assert "resource_tracker" not in run.stderr, run.stderr
    for method in methods:
        assert results[method]["left"] == []
        assert results[method]["x"] == results["forkserver"]["x"]
        assert results[method]["s"] == results["forkserver"]["s"]
    first_epoch = [row[0] for batch in results["fork"]["x"][:3] for row in batch]
    assert len(set(first_epoch)) == 18 and set(first_epoch) <= set(range(20))


def test_save_and_load_resume_exactly(no_leaks):
    source = Epochs(Points(30), seed=2)
    expected = take(Loader(source, 7, workers=0), 10)
    with Loader(source, 7, workers=2) as loader:
        assert_same_batches(take(loader, 4), expected[:4])
        state = loader.save()
    assert state == {"step": 28, "epoch": 0}
    with Loader(source, 7, workers=2) as resumed:
        resumed.load(state)
        assert_same_batches(take(resumed, 6), expected[4:])


def test_load_does_not_replay_earlier_steps():
    source = Recorder(100)
    loader = Loader(source, 10, workers=0)
    loader.load({"step": 60, "epoch": 0})
    assert [b["label"][0] for b in loader] == [60, 70, 80, 90]
    assert min(source.asked) == 60


def test_load_while_batches_are_in_flight():
    source = Epochs(Points(50), seed=1)
    expected = take(Loader(source, 5, workers=0), 8)
    with Loader(source, 5, workers=2, prefetch=6) as loader:
        take(loader, 6)  # leaves batches computed ahead
        loader.load({"step": 10, "epoch": 0})
        assert_same_batches(take(loader, 6), expected[2:])


def test_resuming_a_finished_pass_starts_the_next_one():
    loader = Loader(Points(8), 4, workers=0)
    list(loader)
    assert loader.save() == {"step": 0, "epoch": 1}
    loader.load({"step": 8, "epoch": 0})
    assert list(loader) == []
    assert loader.epoch == 1


def test_bad_states_are_refused():
    loader = Loader(Points(8), 4, workers=0)
    for state in [None, {}, {"step": -1}, {"step": "3"}, {"step": 1, "epoch": -2}]:
        with pytest.raises(LoaderError):
            loader.load(state)


def test_batches_kept_by_the_caller_are_never_overwritten():
    with Loader(Epochs(Points(40), shuffle=False), 4, workers=2, prefetch=2) as loader:
        kept = take(loader, 25)
    for index, batch in enumerate(kept):
        expected = [(4 * index + i) % 40 for i in range(4)]
        assert batch["label"].tolist() == expected
        np.testing.assert_array_equal(batch["image"][:, 0, 0], expected)


def test_slots_grow_when_batches_outgrow_them():
    expected = take(Loader(Growing(), 4, workers=0), 12)
    with Loader(Growing(), 4, workers=2, prefetch=3) as loader:
        assert_same_batches(take(loader, 12), expected)


def test_lambdas_and_local_functions_reach_worker_processes():
    offset = 100

    def shift(point, seed):
        return {"label": point["label"] + offset}

    source = Transform(Transform(Points(6), lambda p, seed: {"label": p["label"] * 2}), shift)
    with Loader(source, 3, workers=2) as loader:
        assert [b["label"].tolist() for b in loader] == [[100, 102, 104], [106, 108, 110]]


def test_worker_exception_is_raised_with_its_traceback(no_leaks):
    loader = Loader(FailAt(20, bad=9), 4, workers=2)
    batches = []
    with pytest.raises(WorkerError) as caught:
        for batch in loader:
            batches.append(batch)
    assert len(batches) == 2  # the batches before the bad one arrive in order
    error = caught.value
    assert isinstance(error.__cause__, ValueError)
    assert "bad datapoint 9" in str(error)
    assert "in __getitem__" in error.traceback
    assert error.steps == range(8, 12)
    assert loader.worker_pids == []  # workers stopped at once
    # The position is unchanged: asking again recomputes the same failing batch.
    with pytest.raises(WorkerError):
        next(loader)
    loader.close()


def test_errors_in_threads_and_inline_are_raised_the_same_way():
    for workers, mode in [(0, "process"), (2, "thread")]:
        with Loader(FailAt(20, bad=1), 4, workers=workers, mode=mode) as loader:
            with pytest.raises(WorkerError) as caught:
                next(loader)
            assert isinstance(caught.value.__cause__, ValueError)
            assert "bad datapoint 1" in caught.value.traceback


def test_values_that_cannot_leave_the_worker_are_reported():
    with Loader(Unsendable(), 2, workers=1) as loader:
        with pytest.raises(WorkerError, match="pickle"):
            next(loader)
    # In threads nothing needs to travel, so the values come back as they are.
    with Loader(Unsendable(), 2, workers=1, mode="thread") as loader:
        assert len(next(loader)["lock"]) == 2


def test_a_worker_that_dies_is_reported(no_leaks):
    with Loader(DieAt(20, bad=5), 4, workers=2) as loader:
        assert next(loader)["label"].tolist() == [0, 1, 2, 3]
        with pytest.raises(WorkerError, match="exit code 7"):
            next(loader)


def test_close_leaves_no_process_or_shared_memory(no_leaks):
    loader = Loader(Epochs(Points(30)), 4, workers=2)
    batch = take(loader, 5)[-1]
    names = loader.shared_memory_names
    pids = loader.worker_pids
    assert names and all(shm_exists(name) for name in names)
    assert set(pids) <= descendants()
    loader.close()
    assert not any(shm_exists(name) for name in names)
    assert not set(pids) & descendants()
    # Arrays already handed out stay readable after close.
    assert batch["image"].shape == (4, 4, 3)
    assert int(batch["image"].sum()) == 12 * int(batch["label"].sum())
    with pytest.raises(LoaderError, match="closed"):
        next(loader)


def test_garbage_collection_shuts_the_loader_down(no_leaks):
    loader = Loader(Epochs(Points(30)), 4, workers=2)
    take(loader, 3)
    names, pids = loader.shared_memory_names, loader.worker_pids
    del loader
    gc.collect()
    assert not any(shm_exists(name) for name in names)
    assert not set(pids) & descendants()


def test_ctrl_c_shuts_the_loader_down(no_leaks, tmp_path):
    fifo = tmp_path / "blocked"
    os.mkfifo(fifo)
    main = threading.get_ident()
    # One worker and one batch in flight: the second batch is asked for inside next(), so the
    # worker blocks, and Ctrl-C lands, while the main thread waits in next().
    loader = Loader(BlockAt(40, bad=6, path=str(fifo)), 4, workers=1, prefetch=1)
    seen = {}

    def interrupt_when_blocked():
        with open(fifo) as f:  # returns once the worker is stuck inside the source
            f.read()
        seen["names"], seen["pids"] = loader.shared_memory_names, loader.worker_pids
        signal.pthread_kill(main, signal.SIGINT)

    assert next(loader)["label"].tolist() == [0, 1, 2, 3]
    watcher = threading.Thread(target=interrupt_when_blocked)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        next(loader)
    watcher.join()
    assert seen["names"] and seen["pids"]
    assert loader.worker_pids == []
    assert not any(shm_exists(name) for name in seen["names"])
    assert not set(seen["pids"]) & descendants()
    loader.close()


def test_spec_describes_one_datapoint():
    spec = Loader(Points(3), 2, workers=0).spec
    assert spec["image"] == (np.dtype(np.uint8), (4, 3))
    assert spec["label"] == (np.dtype(np.int64), ())
    assert spec["name"][0].kind == "U"


def test_arguments_are_checked():
    with pytest.raises(ValueError):
        Loader(Points(3), 0)
    with pytest.raises(ValueError):
        Loader(Points(3), 2, mode="fibers")
    with pytest.raises(ValueError):
        Loader(Points(3), 2, rank=2, world_size=2)
    with pytest.raises(ValueError):
        Loader(Points(3), 2, rank=0)


@pytest.mark.parametrize("reader_module", ["thresher.bag", "granular"])
def test_bag_dataset_reader_as_source(tmp_path, reader_module):
    granular = pytest.importorskip("granular")
    readers = pytest.importorskip(reader_module)
    spec = {"image": "array", "label": "int"}
    with granular.DatasetWriter(tmp_path / "ds", spec, granular.encoders) as writer:
        for i in range(20):
            writer.append({"image": np.full((2, 2), i, np.float32), "label": i + 1})
    reader = readers.DatasetReader(tmp_path / "ds", readers.decoders)
    try:
        with Loader(Epochs(reader, seed=3), 5, workers=2) as loader:
            batches = take(loader, 4)
        labels = np.concatenate([b["label"] for b in batches])
        assert sorted(labels.tolist()) == list(range(1, 21))
        for batch in batches:
            assert batch["image"].dtype == np.float32
            np.testing.assert_array_equal(batch["image"][:, 0, 0], batch["label"] - 1)
    finally:
        reader.close()
