"""Running one function over many items on a few threads, with a bounded queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
# Items queued per thread: enough to keep every thread busy, few enough that a million items never
# become a million futures at once.
QUEUED_PER_THREAD = 4


def run_all(
    function: Callable[[T], object], items: Iterable[T], threads: int, on_done: Callable[[], None] | None = None
) -> list[BaseException]:
    """Calls ``function(item)`` for every item on up to ``threads`` threads; ``on_done`` after each call.

    A failing call does not stop the others: the failures are returned, in the order they happened.
    """
    failures: list[BaseException] = []
    pending: set[Future[object]] = set()

    def settle(done: set[Future[object]]) -> None:
        for future in done:
            error = future.exception()
            if error is not None:
                failures.append(error)
            if on_done is not None:
                on_done()

    with ThreadPoolExecutor(max(1, threads)) as pool:
        for item in items:
            if len(pending) >= threads * QUEUED_PER_THREAD:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                settle(done)
            pending.add(pool.submit(function, item))
        settle(wait(pending).done)
    return failures
