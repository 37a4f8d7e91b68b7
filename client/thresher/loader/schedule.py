"""Which steps make up which batch, for one rank of a job.

Global batch g holds the steps `start + g*batch` up to `batch` more. Rank r of w takes the global
batches r, r+w, r+2w, ...: its i-th batch is global batch i*w + r. So every rank has as many
batches as the others, and the ranks' batches, taken in turn, are the single-process order.

A finite source is one pass (an epoch) from `start` to its last step. The full rounds (w whole
batches each) go as above. What is left after them, fewer than `batch * w` steps, is the tail:
with `drop_remainder` it is left out; without, it is one last round of the same global batches
cut at the last step, so rank r gets the tail's r-th slice of `batch` steps, which may be short
or empty (an empty batch keeps the keys, with no rows). So every step from `start` on is
delivered exactly once, or dropped only as `drop_remainder` asks, and every rank gets as many
batches. Keeping the global batches whole (rather than spreading the tail evenly) keeps each
rank's reads aligned with shards of `batch` rows.

Everything depends on `start`, the job's global step, and not on how many ranks came before it:
a job saved at step s with w ranks resumes at step s with any other number of ranks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Partition:
    """The batches of one rank, as step ranges, from a starting step."""

    batch: int
    size: int | None = None
    rank: int = 0
    world_size: int = 1
    drop_remainder: bool = False

    def __post_init__(self) -> None:
        if self.batch <= 0:
            raise ValueError(f"batch must be positive, got {self.batch}")
        if self.world_size <= 0 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world_size, got {self.rank} of {self.world_size}")

    @property
    def round(self) -> int:
        """Steps the whole job takes per batch of each rank."""
        return self.batch * self.world_size

    def count(self, start: int) -> int | None:
        """How many batches this rank gets from `start` to the end of the pass; None if endless."""
        if self.size is None:
            return None
        full, tail = divmod(max(0, self.size - start), self.round)
        return full + (1 if tail and not self.drop_remainder else 0)

    def steps(self, start: int, index: int) -> range:
        """The steps of this rank's batch `index` counted from `start`."""
        first = start + (index * self.world_size + self.rank) * self.batch
        last = first + self.batch
        if self.size is not None:
            first, last = min(first, self.size), min(last, self.size)
        return range(first, last)

    def ranges(self, start: int) -> Iterator[range]:
        """This rank's batches from `start` to the end of the pass (endless for an endless source)."""
        index = 0
        count = self.count(start)
        while count is None or index < count:
            yield self.steps(start, index)
            index += 1

    def position(self, start: int, consumed: int) -> int:
        """The job's next step once every rank has taken `consumed` batches from `start`."""
        step = start + consumed * self.round
        return step if self.size is None else min(step, max(start, self.size))


def resolve_ranks(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size) as given, else from torch.distributed if initialised, else (0, 1)."""
    if rank is None and world_size is None:
        # Only look if the program imported torch already: importing it here costs seconds.
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1
    if rank is None or world_size is None:
        raise ValueError("pass both rank and world_size, or neither")
    return int(rank), int(world_size)
