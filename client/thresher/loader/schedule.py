"""Which steps make up which batch, for one rank of a job.

Global batch g holds the steps `start + g*batch` up to `batch` more. Rank r of w takes the global
batches r, r+w, r+2w, ...: its i-th batch is global batch i*w + r. So every rank has as many
batches as the others, and the ranks' batches, taken in turn, are the single-process order.

A finite source is one pass: its global batches end with its last step (the last one short unless
`drop_remainder`), and with several ranks the trailing global batches that cannot go to every
rank (fewer than w of them) are left out, so that no rank waits on another at the end.
"""

from __future__ import annotations

import sys
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

    def count(self, start: int) -> int | None:
        """How many batches this rank gets from `start` to the end of the pass; None if endless."""
        if self.size is None:
            return None
        remaining = max(0, self.size - start)
        if self.drop_remainder:
            batches = remaining // self.batch
        else:
            batches = -(-remaining // self.batch)
        return batches // self.world_size

    def steps(self, start: int, index: int) -> range:
        """The steps of this rank's batch `index` counted from `start`."""
        first = start + (index * self.world_size + self.rank) * self.batch
        last = first + self.batch
        if self.size is not None:
            last = min(last, self.size)
        return range(first, last)

    def position(self, start: int, consumed: int) -> int:
        """The job's next step once every rank has taken `consumed` batches from `start`."""
        return start + consumed * self.world_size * self.batch


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
