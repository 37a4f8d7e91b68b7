"""Executors that compute whole batches: in the caller, in threads, or in worker processes.

Each takes `submit(index, steps)` for the batches in order and hands them back with
`result(index)` (or drops them with `discard(index)`) in that same order; a batch is computed whole by one worker, so the order and the
contents do not depend on how many workers there are.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import pickle
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing import connection, resource_tracker
from typing import Any

import numpy as np

from thresher.loader import batching
from thresher.loader.loader_errors import LoaderError, WorkerError
from thresher.loader.shared_memory import Attachments, Slot, SlotPool
from thresher.sources import as_function

# How often an idle worker checks that its parent is still there.
_PARENT_CHECK_S = 1.0
# How long close() lets busy workers finish their batch before terminating them. Workers hold
# nothing that needs a graceful end (the parent owns the shared memory), so this is short.
_JOIN_TIMEOUT_S = 1.0


def compute(source: Callable[[int], Any], steps: range) -> dict[str, Any]:
    """One batch in this process: stacked arrays and lists, in key order."""
    return batching.Columns.of(batching.fetch(source, steps)).stacked()


def _failure(exc: BaseException, steps: range, where: str) -> WorkerError:
    text = "".join(traceback.format_exception(exc))
    error = WorkerError(
        f"computing the batch of steps {steps.start}..{steps.stop - 1} failed {where}:\n{text}",
        steps=steps,
        traceback=text,
    )
    error.__cause__ = exc
    return error


class InlineExecutor:
    """Computes each batch in the calling thread when it is asked for (workers=0)."""

    def __init__(self, source: Callable[[int], Any]) -> None:
        self._source = source
        self._steps: dict[int, range] = {}

    def submit(self, index: int, steps: range) -> None:
        self._steps[index] = steps

    def result(self, index: int) -> dict[str, Any]:
        steps = self._steps.pop(index)
        try:
            return compute(self._source, steps)
        except Exception as exc:
            raise _failure(exc, steps, "in the calling thread") from exc

    def discard(self, index: int) -> None:
        """Drops a batch not yet computed: nothing to wait for."""
        self._steps.pop(index, None)

    def close(self) -> None:
        self._steps.clear()


class ThreadExecutor:
    """Computes batches in a pool of threads: for sources that wait on I/O more than compute."""

    def __init__(self, source: Callable[[int], Any], workers: int) -> None:
        self._source = source
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "thresher-loader")
        self._futures: dict[int, tuple[range, concurrent.futures.Future[dict[str, Any]]]] = {}

    def submit(self, index: int, steps: range) -> None:
        self._futures[index] = (steps, self._pool.submit(compute, self._source, steps))

    def result(self, index: int) -> dict[str, Any]:
        steps, future = self._futures.pop(index)
        try:
            return future.result()
        except Exception as exc:
            raise _failure(exc, steps, "in a worker thread") from exc

    def discard(self, index: int) -> None:
        """Drops a batch: cancelled if not started, else left to finish unread."""
        _, future = self._futures.pop(index)
        future.cancel()

    def close(self) -> None:
        self._futures.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


def serialise(source: Any) -> bytes:
    """The source as bytes for the workers; lambdas and local functions go by value."""
    try:
        import cloudpickle
    except ImportError:
        cloudpickle = None
    try:
        if cloudpickle is not None:
            dumped: bytes = cloudpickle.dumps(source)
            return dumped
        return pickle.dumps(source)
    except Exception as exc:
        raise LoaderError(
            f"cannot send the source to worker processes ({exc}); use mode='thread' or make the source picklable"
        ) from exc


def _worker_main(payload: bytes, conn: connection.Connection, stop: Any) -> None:
    """A worker process: receive (index, start, stop, slot), answer with one message a batch."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    attachments = Attachments()
    source, broken = None, None
    try:
        source = as_function(pickle.loads(payload))
    except Exception as exc:
        broken = exc  # reported with the first batch asked for, like any batch's failure
    try:
        while not stop.is_set():
            if not conn.poll(_PARENT_CHECK_S):
                if os.getppid() != parent:
                    return  # orphaned: the parent died without closing us
                continue
            task = conn.recv()
            if task is None or stop.is_set():
                return
            index, first, last, slot = task
            steps = range(first, last)
            try:
                if broken is not None:
                    raise broken
                assert source is not None, "loaded, or broken says why not"
                message: tuple[Any, ...] = ("ok", index, *_compute_into(source, steps, slot, attachments))
            except Exception as exc:
                message = _error(index, exc)
            try:
                conn.send(message)
            except OSError:
                raise
            except Exception as exc:  # a list value that cannot be pickled
                conn.send(_error(index, exc))
    except (EOFError, OSError):
        return  # the parent closed the pipe or went away
    finally:
        attachments.close()


def _compute_into(
    source: Callable[[int], Any], steps: range, slot: Slot | None, attachments: Attachments
) -> tuple[list[str], list[tuple[str, str, tuple[int, ...], int]], int, dict[str, np.ndarray], dict[str, list[Any]]]:
    columns = batching.Columns.of(batching.fetch(source, steps))
    layout, nbytes = columns.layout()
    inline: dict[str, np.ndarray]
    if slot is not None and nbytes <= slot[2]:
        columns.write(layout, attachments.buffer(slot))
        inline = {}
    else:
        # No slot yet, or too small: send the arrays in the message this once; the parent grows
        # its slots to `nbytes` for the batches after.
        inline = {key: np.stack(arrays) for key, arrays in columns.arrays.items()}
        layout = []
    return columns.keys, layout, nbytes, inline, columns.lists


def _error(index: int, exc: BaseException) -> tuple[str, int, str, bytes | None]:
    """The message for a failed batch: its traceback as text, and the exception if it pickles."""
    try:
        dumped = pickle.dumps(exc)
    except Exception:
        dumped = None
    return ("error", index, "".join(traceback.format_exception(exc)), dumped)


class ProcessExecutor:
    """Computes batches in worker processes that stack them into shared-memory slots.

    Batch i goes to worker i % workers, so each worker's pipe returns its batches in order; one
    small message a batch tells where its arrays lie, and carries any list values. With
    `recycle_after` R, a batch's slot is reused once R later batches have been handed out,
    instead of once its arrays are gone.
    """

    def __init__(self, source: Any, workers: int, context: Any, recycle_after: int = 0) -> None:
        payload = serialise(source)
        self.recycle_after = recycle_after
        self._handed_out: collections.deque[int] = collections.deque()
        # Workers must share the parent's resource tracker: a forked worker that found none
        # would start its own, which would unlink the parent's slots when that worker exits.
        resource_tracker.ensure_running()
        self.pool = SlotPool()
        self._stop = context.Event()
        self._conns: list[connection.Connection] = []
        self._procs: list[Any] = []
        self._pending: dict[int, tuple[range, int | None]] = {}
        try:
            for number in range(workers):
                parent_end, child_end = context.Pipe(duplex=True)
                self._conns.append(parent_end)
                process = context.Process(
                    target=_worker_main,
                    args=(payload, child_end, self._stop),
                    name=f"thresher-loader-{number}",
                    daemon=True,
                )
                process.start()
                self._procs.append(process)
                # Only the worker holds its end now, so its death shows as EOF here.
                child_end.close()
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [process.pid for process in self._procs]

    def submit(self, index: int, steps: range) -> None:
        slot = self.pool.acquire()
        self._pending[index] = (steps, None if slot is None else slot[0])
        self._conns[index % len(self._conns)].send((index, steps.start, steps.stop, slot))

    def result(self, index: int) -> dict[str, Any]:
        number = index % len(self._conns)
        conn, process = self._conns[number], self._procs[number]
        steps, slot = self._pending.pop(index)
        message = None
        if conn in connection.wait([conn, process.sentinel]) or conn.poll():
            try:
                message = conn.recv()
            except (EOFError, OSError):
                pass
        if message is None:
            process.join(_JOIN_TIMEOUT_S)
            raise WorkerError(
                f"worker process {number} (pid {process.pid}) died with exit code "
                f"{process.exitcode} while computing the batch of steps "
                f"{steps.start}..{steps.stop - 1}",
                steps=steps,
            )
        if message[0] == "error":
            if slot is not None:
                self.pool.release(slot)
            _, _, text, dumped = message
            error = WorkerError(
                f"computing the batch of steps {steps.start}..{steps.stop - 1} failed in "
                f"worker process {number} (pid {process.pid}):\n{text}",
                steps=steps,
                traceback=text,
            )
            try:
                error.__cause__ = pickle.loads(dumped) if dumped else None
            except Exception:
                pass
            raise error
        _, answered, keys, layout, nbytes, inline, lists = message
        assert answered == index, (answered, index)
        self.pool.need(nbytes)
        # A worker sends a layout only for a batch it wrote into the slot it was given.
        if layout and slot is not None and self.recycle_after:
            arrays = self.pool.views(slot, layout, nbytes, recycled=True)
            self._handed_out.append(slot)
            if len(self._handed_out) > self.recycle_after:
                self.pool.release(self._handed_out.popleft())
        elif layout and slot is not None:
            arrays = self.pool.views(slot, layout, nbytes)
        else:
            arrays = inline
            if slot is not None:
                self.pool.release(slot)
        return {key: arrays[key] if key in arrays else lists[key] for key in keys}

    def discard(self, index: int) -> None:
        """Receives a batch and drops it, so the worker's pipe stays in order; a failed batch is
        dropped too, but a dead worker still raises `WorkerError`."""
        try:
            self.result(index)
        except WorkerError as error:
            if error.traceback == "":  # the worker died: its pipe is broken
                raise

    def close(self) -> None:
        """Stops the workers (terminating any that do not stop in time) and unlinks the slots."""
        self._stop.set()
        # The None wakes an idle worker; closing our end fails a busy one's next send (unless
        # forked siblings hold copies of it, where the None and the stop event still work).
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for process in self._procs:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(_JOIN_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
        self._procs, self._conns = [], []
        self._pending.clear()
        self.pool.close()
