"""Sources: a datapoint as a pure function of the global step.

A source is called with a step (an int from 0) and returns a dict of values. Because the result
depends on the step alone, a loader can compute any batch in any worker, in any order, and resume
from a saved step without replaying what came before.

The names, arguments and random streams follow `granular.sources`, so code can switch between
the two; unlike Granular, `Epochs` honours its seed. Anything with `__getitem__` (a bag
`DatasetReader`, a list of dicts) can be the innermost source; any callable of the step can too.

A source made only of finite parts keeps their length (`size`); one that cycles or samples
(`Epochs`, `Sample`, `Truncate`) is endless and its `size` is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Source",
    "Epochs",
    "Transform",
    "Sample",
    "Truncate",
    "Interleave",
    "Mix",
    "as_function",
    "size_of",
]

Datapoint = dict[str, Any]


def as_function(source: Any) -> Callable[[int], Datapoint]:
    """The source as a function of the step: itself if callable, else its `__getitem__`."""
    function: Callable[[int], Datapoint]
    if callable(source):
        function = source
        return function
    if hasattr(source, "__getitem__"):
        function = source.__getitem__
        return function
    raise TypeError(f"a source must be callable with a step or indexable, not {type(source).__name__}")


def size_of(source: Any) -> int | None:
    """How many steps the source has, or None when it is endless."""
    if isinstance(source, Source):
        return source.size
    try:
        return len(source)
    except TypeError:
        # A plain function of the step (or a Granular source) has no end.
        return None


def _length(source: Any, length: int | None) -> int:
    """The explicit length, else the source's own; positive either way."""
    if length is None:
        length = size_of(source)
        if length is None:
            raise TypeError("this source has no length: pass length=")
    length = int(length)
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    return length


def _joint_size(sources: Sequence[Any]) -> int | None:
    sizes = [size_of(source) for source in sources]
    known = [size for size in sizes if size is not None]
    return None if len(known) < len(sizes) else min(known)


class Source:
    """Base of the step sources: call with a step to get a datapoint."""

    size: int | None = None

    def __call__(self, step: int) -> Datapoint:
        raise NotImplementedError

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError(f"{type(self).__name__} is endless and has no length")
        return self.size


class Epochs(Source):
    """Repeats `source` endlessly; with `shuffle`, each epoch in a new order drawn from `seed`.

    Step s reads index `order_e[s % length]` of epoch e = s // length. Only the first `length`
    items are used (default: all). With seed 0 the orders equal Granular's.
    """

    def __init__(self, source: Any, length: int | None = None, shuffle: bool = True, seed: int = 0) -> None:
        self.length = _length(source, length)
        self.source = as_function(source)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self._orders: dict[int, np.ndarray] = {}

    def __call__(self, step: int) -> Datapoint:
        epoch, index = divmod(step, self.length)
        if self.shuffle:
            index = int(self._order(epoch)[index])
        return self.source(index)

    def _order(self, epoch: int) -> np.ndarray:
        order = self._orders.get(epoch)
        if order is None:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.length)
            # A batch can straddle an epoch boundary, so keep the previous epoch's order too.
            self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
            self._orders[epoch] = order
        return order

    def __getstate__(self) -> dict[str, Any]:
        # Orders are cheap to redraw and can be large: never ship them to workers.
        return {**self.__dict__, "_orders": {}}


class Transform(Source):
    """Applies `fn(datapoint, seed=[seed, step])`; the seed suits `np.random.default_rng`."""

    def __init__(self, source: Any, fn: Callable[..., Datapoint], seed: int = 0) -> None:
        self.size = size_of(source)
        self.source = as_function(source)
        self.fn = fn
        self.seed = int(seed)

    def __call__(self, step: int) -> Datapoint:
        return self.fn(self.source(step), seed=[self.seed, step])

    def plan_reads(self, ranges: Iterable[range], size: int | None) -> None:
        """Passes the loader's read plan on: step s reads the inner source at s."""
        _plan_reads([self.source], ranges, size)


class Sample(Source):
    """Endless uniform sampling with replacement from the first `length` items of `source`."""

    def __init__(self, source: Any, length: int | None = None, seed: int = 0) -> None:
        self.length = _length(source, length)
        self.source = as_function(source)
        self.seed = int(seed)

    def __call__(self, step: int) -> Datapoint:
        index = np.random.default_rng([self.seed, step]).choice(self.length)
        return self.source(int(index))


class Truncate(Source):
    """Endlessly cycles through the first `limit` items of `source`."""

    def __init__(self, source: Any, limit: int, length: int | None = None) -> None:
        if length is None and size_of(source) is None:
            self.limit = int(limit)
        else:
            self.limit = min(_length(source, length), int(limit))
        if self.limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        self.source = as_function(source)

    def __call__(self, step: int) -> Datapoint:
        return self.source(step % self.limit)


class Interleave(Source):
    """Takes one item from each source in turn: step s reads sources[s % n] at s // n."""

    def __init__(self, sources: Sequence[Any]) -> None:
        if not sources:
            raise ValueError("Interleave needs at least one source")
        joint = _joint_size(sources)
        self.size = None if joint is None else joint * len(sources)
        self.sources = [as_function(source) for source in sources]

    def __call__(self, step: int) -> Datapoint:
        inner, outer = divmod(step, len(self.sources))
        return self.sources[outer](inner)


class Mix(Source):
    """Picks a source at random by `weights` for each step and reads it at that same step."""

    def __init__(self, sources: Sequence[Any], weights: Sequence[float], seed: int = 0) -> None:
        array = np.asarray(weights, np.float32)
        if len(sources) == 0 or array.shape != (len(sources),):
            raise ValueError(f"need one weight per source, got {len(array)} for {len(sources)}")
        if (array < 0).any() or not array.sum() > 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {array}")
        # float32 normalisation as Granular does, so that both draw the same choices.
        self.weights = array / array.sum()
        self.size = _joint_size(sources)
        self.sources = [as_function(source) for source in sources]
        self.seed = int(seed)

    def __call__(self, step: int) -> Datapoint:
        rng = np.random.default_rng([self.seed, step])
        choice = rng.choice(len(self.sources), p=self.weights)
        return self.sources[choice](step)

    def plan_reads(self, ranges: Iterable[range], size: int | None) -> None:
        """Passes the loader's read plan on: step s reads one of the sources at s."""
        _plan_reads(self.sources, ranges, size)


def _plan_reads(sources: Sequence[Any], ranges: Iterable[range], size: int | None) -> None:
    """Tells the sources that plan their reads (a remote source) which steps come, in order.

    `ranges` can be long: it is listed once and only if some source plans.
    """
    found = [getattr(_owner(source), "plan_reads", None) for source in sources]
    planners = [plan for plan in found if plan is not None]
    if planners:
        ranges = list(ranges)
        for plan in planners:
            plan(ranges, size)


def _owner(function: Any) -> Any:
    """The object behind a source function (a bound `__getitem__`'s object, else itself)."""
    return getattr(function, "__self__", function)


def __getattr__(name: str) -> Any:
    # Remote reads through flight (grpc, pyarrow.flight): imported on first use, so local loading stays light.
    if name == "Remote":
        from thresher.remote_source import Remote

        return Remote
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
