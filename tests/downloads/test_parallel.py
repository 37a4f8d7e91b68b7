"""run_all: every item processed on a few threads, failures collected rather than stopping the rest."""

from __future__ import annotations

import threading

from thresher.parallel import run_all


def test_every_item_runs_and_failures_are_returned():
    seen, lock, done = [], threading.Lock(), []

    def work(item: int) -> None:
        with lock:
            seen.append(item)
        if item % 10 == 3:
            raise ValueError(f"item {item}")

    failures = run_all(work, iter(range(1000)), threads=3, on_done=lambda: done.append(1))
    assert sorted(seen) == list(range(1000)) and len(done) == 1000
    assert sorted(str(f) for f in failures) == sorted(f"item {i}" for i in range(3, 1000, 10))
    assert run_all(work, [], threads=4) == []
