"""Reads a blocking iterator ahead in a thread, so receiving the next message overlaps sending the last."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

T = TypeVar("T")


class _End:
    """Follows the source's last item."""


_END = _End()
# How often the reading thread checks whether the consumer went away while the queue is full.
_POLL_SECONDS = 0.1


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(
    source: Iterator[T], depth: int, on_close: Callable[[], object] | None = None
) -> Generator[T, None, None]:
    """Yields what ``source`` yields, reading up to ``depth`` items ahead on a daemon thread.

    An error raised by ``source`` is raised here after the items before it. Closing this generator
    early calls ``on_close`` (e.g. to cancel the call behind ``source``) and stops the thread.
    """
    items: queue.Queue[T | _Failure | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: T | _Failure | _End) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put(_Failure(error))
        else:
            put(_END)

    threading.Thread(target=pump, name="read-ahead", daemon=True).start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        if on_close is not None:
            on_close()
