"""Shared-memory slots that worker processes write whole batches into.

The parent owns every segment: it creates them, hands a free one to each batch it asks a worker
for, and unlinks them all on close. The arrays a batch returns are views of its slot, so no byte
is copied after the worker stacks it; the slot goes back to the pool only when the last of those
views is gone, so a batch the caller keeps is never overwritten. Reusing slots also avoids the
page faults of fresh memory on every batch.
"""

from __future__ import annotations

import collections
import threading
import weakref
from multiprocessing import shared_memory

import numpy as np

from thresher.loader import batching

# A slot with room for what the largest batch so far needed, plus this share, so that batches
# that vary a little in size do not replace slots again and again.
_HEADROOM = 8
_PAGE = 4096

Slot = tuple[int, str, int]  # (id, segment name, size)


def _discard(segment: shared_memory.SharedMemory) -> None:
    """Unlinks a segment and unmaps it, or leaves the mapping to arrays that still view it."""
    try:
        segment.unlink()
    except FileNotFoundError:
        pass
    try:
        segment.close()
    except BufferError:
        # A caller still holds arrays over this segment. Its name is gone already; drop our
        # handle on the mapping so it is unmapped when the last of those arrays is.
        segment._mmap = None  # type: ignore[attr-defined]  # noqa: SLF001 - private, so not in typeshed; no public way to do this
        try:
            segment.close()
        except BufferError:
            pass


class SlotPool:
    """The parent's segments: acquire one per batch, view it, and it comes back by itself."""

    def __init__(self) -> None:
        self._segments: dict[int, shared_memory.SharedMemory] = {}
        self._free: collections.deque[int] = collections.deque()
        self._lock = threading.Lock()
        self._count = 0
        self.slot_bytes = 0
        self.closed = False

    def need(self, nbytes: int) -> None:
        """Notes that a batch needed `nbytes`; later slots are made at least that big."""
        if nbytes > self.slot_bytes:
            wanted = nbytes + nbytes // _HEADROOM
            self.slot_bytes = -(-wanted // _PAGE) * _PAGE

    def acquire(self) -> Slot | None:
        """A free slot of the current size, or None until a batch has told the size."""
        if self.slot_bytes == 0 or self.closed:
            return None
        with self._lock:
            if self._free:
                slot = self._free.popleft()
            else:
                slot, self._count = self._count, self._count + 1
            segment = self._segments.get(slot)
            if segment is None or segment.size < self.slot_bytes:
                if segment is not None:
                    _discard(segment)
                segment = shared_memory.SharedMemory(create=True, size=self.slot_bytes)
                self._segments[slot] = segment
        return slot, segment.name, segment.size

    def release(self, slot: int) -> None:
        """Puts back a slot whose batch did not use it."""
        if not self.closed:
            self._free.append(slot)

    def views(
        self, slot: int, layout: list[tuple[str, str, tuple[int, ...], int]], nbytes: int, recycled: bool = False
    ) -> dict[str, np.ndarray]:
        """The batch's arrays over the slot; the slot is free again once they are all gone, or
        with `recycled` when the caller releases it."""
        owner = np.frombuffer(_buffer(self._segments[slot]), np.uint8, count=nbytes)
        if not recycled:
            finalizer = weakref.finalize(owner, self.release, slot)
            finalizer.atexit = False
        return batching.views(owner, layout)

    @property
    def names(self) -> list[str]:
        """The names of the live segments."""
        return [segment.name for segment in self._segments.values()]

    def close(self) -> None:
        """Unlinks every segment; arrays still held stay valid until they are dropped."""
        with self._lock:
            self.closed = True
            segments, self._segments = list(self._segments.values()), {}
            self._free.clear()
        for segment in segments:
            _discard(segment)


class Attachments:
    """A worker's handles on the parent's slots, opened on first use and kept for reuse."""

    def __init__(self) -> None:
        self._open: dict[int, shared_memory.SharedMemory] = {}

    def buffer(self, slot: Slot) -> memoryview:
        """The slot's memory, attaching to it (again, if the parent replaced it) as needed."""
        slot_id, name, _ = slot
        segment = self._open.get(slot_id)
        if segment is None or segment.name != name:
            if segment is not None:
                segment.close()
            segment = shared_memory.SharedMemory(name=name)
            self._open[slot_id] = segment
        return _buffer(segment)

    def close(self) -> None:
        """Detaches from every slot (the parent unlinks them)."""
        for segment in self._open.values():
            segment.close()
        self._open.clear()


def _buffer(segment: shared_memory.SharedMemory) -> memoryview:
    """The segment's memory (typeshed has ``buf`` None once the segment is closed)."""
    buffer = segment.buf
    if buffer is None:
        raise ValueError(f"shared memory segment {segment.name} is closed")
    return buffer
