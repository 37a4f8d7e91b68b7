"""The Loader: batches of a source, computed ahead by workers, deterministic and resumable."""

from __future__ import annotations

import multiprocessing
import os
import weakref
from functools import cached_property
from typing import Any

import numpy as np

from thresher.loader import batching
from thresher.loader.arguments import name_positionals
from thresher.loader.loader_errors import LoaderError
from thresher.loader.schedule import Partition, resolve_ranks
from thresher.loader.workers import InlineExecutor, ProcessExecutor, ThreadExecutor
from thresher.sources import as_function, size_of

_MODES = ("process", "thread")
_WORKER_MODULE = "thresher.loader.workers"


def default_start_method() -> str:
    """forkserver where there is one, else spawn.

    Plain fork is the fastest to start but copies a process that may hold threads (gRPC, Arrow,
    torch pools) in whatever state their locks were, which can hang the child; forkserver forks
    from a clean single-threaded server instead and still starts workers in milliseconds.
    """
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _context(start_method: str | Any | None) -> Any:
    if start_method is not None and not isinstance(start_method, str):
        return start_method  # a multiprocessing context
    context = multiprocessing.get_context(start_method or default_start_method())
    if context.get_start_method() == "forkserver":
        # Have the server import the worker code once, so that each worker forked from it
        # starts in milliseconds rather than importing numpy and thresher anew. (Python 3.11's
        # forkserver does not preload __main__ either, whatever its default says.) This only
        # adds to the preload list, and only matters if the server has not started yet.
        from multiprocessing import forkserver

        server = forkserver._forkserver  # noqa: SLF001 - the preload list has no public getter
        preload = list(getattr(server, "_preload_modules", ["__main__"]))
        if _WORKER_MODULE not in preload:
            context.set_forkserver_preload([*preload, _WORKER_MODULE])
    return context


def _default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(8, cpus)


class _Resources:
    """What a loader must release: held apart from it so a finalizer can close it after GC."""

    def __init__(self) -> None:
        self.executor: Any = None

    def close(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.close()


def _template(batch: dict[str, Any]) -> dict[str, Any]:
    """Per key (dtype, shape of one row) for an array, None for a list."""
    return {
        key: (value.dtype, value.shape[1:]) if isinstance(value, np.ndarray) else None for key, value in batch.items()
    }


class Loader:
    """Batches of `batch` datapoints from `source`, computed ahead by `workers`.

    `source` is a step source (`thresher.sources`, any callable of the step) or anything with
    `__getitem__` and `__len__`. An endless source gives endless batches; a finite one gives one
    pass (an epoch) per iteration (`for batch in loader` again starts the next pass). Batch k of
    a rank holds the steps of global batch `k * world_size + rank` (see `schedule` for the last
    round of a finite pass), so the batches are a pure function of the source and the step: the
    same for any `workers`, `prefetch`, `recycle_after` or `mode`, and `save()` / `load()` (or
    `state_dict()` / `load_state_dict()`) resume exactly without replaying, with the same or
    another number of ranks.

    A batch is a dict: per key one array stacked over the batch, or a list where the values are
    not numeric arrays of one shape and dtype (strings, ragged arrays). In process mode the
    arrays are views of shared memory, reused once the arrays are dropped, or with
    `recycle_after=R` once R more batches have been handed out.

    The arguments after `batch` may be passed by position in the orders of either `granular`
    release: `(prefetch, workers, recycle_after, shard_id, num_shards, mp)` (0.22 and later) or
    `(fns, shuffle, prefetch, workers, ...)` (0.21, `fns=()` and `shuffle=None` only).

    Args:
        source: the step source or indexable dataset.
        batch: datapoints per batch.
        prefetch: batches computed ahead, at least one per worker (default two per worker).
        workers: worker processes (or threads); 0 computes batches in the calling thread.
        recycle_after: in process mode, reuse a batch's shared memory once this many later
            batches have been handed out, whether or not its arrays are still held (granular's
            option: no bookkeeping per batch; a batch kept longer is overwritten). 0 or False
            (default) reuses memory only once the batch's arrays are gone.
        drop_remainder: leave out the tail of a finite pass that does not fill a whole batch on
            every rank.
        rank: this process's rank in a multi-node job; by default taken from
            `torch.distributed` when it is initialised, else 0.
        world_size: the number of ranks (default as for `rank`, else 1).
        shard_id: granular's name for `rank`.
        num_shards: granular's name for `world_size`.
        mode: "process" for CPU-bound sources, "thread" for sources that wait on I/O.
        start_method: multiprocessing start method or context (default forkserver, see
            `default_start_method`).
        mp: granular's name for `start_method`.
        fns: granular 0.21's removed argument; only `()` is accepted.
        shuffle: granular 0.21's removed argument; only None is accepted.
    """

    def __init__(
        self,
        source: Any,
        batch: int,
        *positional: Any,
        prefetch: int | None = None,
        workers: int | None = None,
        recycle_after: int | bool | None = None,
        drop_remainder: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        shard_id: int | None = None,
        num_shards: int | None = None,
        mode: str = "process",
        start_method: str | Any | None = None,
        mp: Any = None,
        fns: tuple[Any, ...] = (),
        shuffle: None = None,
    ) -> None:
        named = name_positionals(positional, {
            "prefetch": prefetch, "workers": workers, "recycle_after": recycle_after,
            "shard_id": shard_id, "num_shards": num_shards, "mp": mp, "fns": fns,
            "shuffle": shuffle,
        })  # fmt: skip
        prefetch, workers, mp = named["prefetch"], named["workers"], named["mp"]
        shard_id, num_shards = named["shard_id"], named["num_shards"]
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if shard_id is not None or num_shards is not None:
            if rank is not None or world_size is not None:
                raise ValueError("pass rank/world_size or shard_id/num_shards, not both")
            rank, world_size = shard_id, num_shards
            if rank is None or world_size is None:  # granular's defaults are 0 and 1
                rank, world_size = rank or 0, world_size or 1
        if mp is not None and start_method is not None:
            raise ValueError("pass start_method or mp, not both")
        rank, world_size = resolve_ranks(rank, world_size)
        self.source = source
        self.workers = _default_workers() if workers is None else int(workers)
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, got {workers}")
        self.prefetch = max(1, self.workers, 2 * self.workers if prefetch is None else prefetch)
        self.recycle_after = int(named["recycle_after"] or 0)
        if self.recycle_after < 0:
            raise ValueError(f"recycle_after must be 0 or more, got {self.recycle_after}")
        self.mode = mode
        self._partition = Partition(
            batch=int(batch),
            size=size_of(source),
            rank=rank,
            world_size=world_size,
            drop_remainder=bool(drop_remainder),
        )
        self._context = _context(mp if mp is not None else start_method)
        self._start = 0  # the step this pass started (or was resumed) at
        self._epoch = 0  # passes finished over a finite source
        self._consumed = 0  # batches handed out since _start
        self._requested = 0  # batches given to the executor since _start
        self._empty: set[int] = set()  # requested batches with no steps (a short tail round)
        self._planned: int | None = None  # the start the source's reads are planned for
        self._template: dict[str, Any] | None = None  # a batch's keys, dtypes and shapes
        self._closed = False
        self._resources = _Resources()
        # Stops the workers and frees the shared memory when the loader is garbage collected or
        # the interpreter exits, even if close() is never called.
        self._finalizer = weakref.finalize(self, self._resources.close)

    @property
    def batch(self) -> int:
        """Datapoints per batch."""
        return self._partition.batch

    @property
    def rank(self) -> int:
        """This process's rank in the job."""
        return self._partition.rank

    @property
    def world_size(self) -> int:
        """How many ranks share the job."""
        return self._partition.world_size

    shard_id = rank
    num_shards = world_size

    @property
    def drop_remainder(self) -> bool:
        """Whether the tail of a finite pass that does not fill a batch on every rank is left out."""
        return self._partition.drop_remainder

    @property
    def epoch(self) -> int:
        """How many passes over a finite source have finished (0 for an endless one)."""
        return self._epoch

    @property
    def consumed(self) -> int:
        """The job's global step after the batches handed out so far (granular's counter)."""
        return self._partition.position(self._start, self._consumed)

    @property
    def step(self) -> int:
        """The job's global step after the batches requested from the workers so far."""
        return self._partition.position(self._start, self._requested)

    @cached_property
    def spec(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """Each key's (dtype, shape) in one datapoint, read from the source at step 0."""
        point = as_function(self.source)(0)
        return {key: batching.describe(value) for key, value in point.items()}

    def __len__(self) -> int:
        """Batches per pass for this rank; a loader over an endless source has no length."""
        count = self._partition.count(0)
        if count is None:
            raise TypeError("a loader over an endless source has no length")
        return count

    def __iter__(self) -> Loader:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._closed:
            raise LoaderError("this loader is closed")
        count = self._partition.count(self._start)
        if count is not None and self._consumed >= count:
            # End of a pass over a finite source; the next iteration starts the next one.
            self._drain()
            self._start = self._consumed = self._requested = 0
            self._epoch += 1
            raise StopIteration
        try:
            executor = self._executor()
            ahead = self._consumed + self.prefetch
            if count is not None:
                ahead = min(ahead, count)
            while self._requested < ahead:
                steps = self._partition.steps(self._start, self._requested)
                if steps:
                    executor.submit(self._requested, steps)
                else:
                    self._empty.add(self._requested)
                self._requested += 1
            if self._consumed in self._empty:
                self._empty.discard(self._consumed)
                batch = self._empty_batch()
            else:
                batch = executor.result(self._consumed)
                if self._template is None:
                    self._template = _template(batch)
        except BaseException:
            # A worker failed, or Ctrl-C: stop everything now. The position is unchanged, so a
            # later next() starts fresh workers and asks for this same batch again.
            self._shutdown()
            raise
        self._consumed += 1
        return batch

    def save(self) -> dict[str, int]:
        """The position after the batches handed out so far; `load()` continues from there.

        `step` counts the whole job (all ranks), so every rank of a job in step saves the same
        state, and that state resumes the job with any number of ranks. granular's `load()`
        reads it too (it uses `step` alone).
        """
        return {"step": self.consumed, "epoch": self._epoch}

    def load(self, state: dict[str, int]) -> None:
        """Continues from a state `save()` (or granular's `save()`) returned.

        Works while running: batches already computed ahead are drained and dropped, as
        granular does, and the workers keep running.
        """
        step = state.get("step") if isinstance(state, dict) else None
        epoch = state.get("epoch", 0) if isinstance(state, dict) else None
        if isinstance(step, np.integer):
            step = int(step)
        if not isinstance(step, int) or step < 0 or not isinstance(epoch, int) or epoch < 0:
            raise LoaderError(f"not a loader state: {state!r}")
        self._drain()
        self._start, self._epoch = step, epoch
        self._consumed = self._requested = 0

    def state_dict(self) -> dict[str, int]:
        """`save()` under the name torchdata's `StatefulDataLoader` and
        `torch.distributed.checkpoint` call (the `Stateful` protocol).

        Every rank's state is the same (the job's step), so a checkpoint's deduplication keeps
        one copy and any number of ranks can load it.
        """
        return self.save()

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """`load()` under the `Stateful` protocol's name."""
        self.load(dict(state_dict))

    @property
    def worker_pids(self) -> list[int]:
        """The ids of the running worker processes (empty unless running in process mode)."""
        executor = self._resources.executor
        return executor.pids if isinstance(executor, ProcessExecutor) else []

    @property
    def shared_memory_names(self) -> list[str]:
        """The names of the shared-memory segments the loader holds now."""
        executor = self._resources.executor
        return executor.pool.names if isinstance(executor, ProcessExecutor) else []

    def close(self) -> None:
        """Stops the workers and unlinks the shared memory; arrays already returned stay valid."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _executor(self) -> Any:
        if self._resources.executor is None:
            self._plan_reads()
            executor: InlineExecutor | ThreadExecutor | ProcessExecutor
            if self.workers == 0:
                executor = InlineExecutor(as_function(self.source))
            elif self.mode == "thread":
                executor = ThreadExecutor(as_function(self.source), self.workers)
            else:
                executor = ProcessExecutor(self.source, self.workers, self._context, self.recycle_after)
            self._resources.executor = executor
        elif self._planned is not None and self._planned != self._start:
            # The source plans its reads by step (a remote source fetches this rank's shards
            # ahead): re-plan from the new start; worker processes hold a copy, so restart them.
            self._shutdown()
            return self._executor()
        return self._resources.executor

    def _plan_reads(self) -> None:
        plan = getattr(self.source, "plan_reads", None)
        if plan is None or self._partition.size is None:
            return
        plan(self._partition.ranges(self._start), self._partition.size)
        self._planned = self._start

    def _empty_batch(self) -> dict[str, Any]:
        """A batch of no datapoints (a rank's part of a tail shorter than the ranks), shaped
        like the batch before it, or else like `spec` (which reads step 0)."""
        template = self._template
        if template is None:
            template = {
                key: (dtype, shape) if dtype.kind in batching.STACKABLE_KINDS else None
                for key, (dtype, shape) in self.spec.items()
            }
        return {key: [] if kind is None else np.empty((0, *kind[1]), kind[0]) for key, kind in template.items()}

    def _drain(self) -> None:
        """Takes and drops the batches computed ahead, keeping the workers."""
        executor = self._resources.executor
        if executor is not None and self._requested > self._consumed:
            try:
                for index in range(self._consumed, self._requested):
                    if index not in self._empty:
                        executor.discard(index)
            except Exception:
                self._shutdown()  # a worker died under a batch nobody will see: start afresh
        self._empty.clear()
        self._requested = self._consumed

    def _shutdown(self) -> None:
        self._resources.close()
        self._empty.clear()
        self._requested = self._consumed
