"""Sources for the loader tests, at module level so worker processes can unpickle them."""

from __future__ import annotations

import os
import threading

import numpy as np


class Points:
    """n datapoints: a fixed-shape array, an int, a float and a string, all from the index."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return {
            "image": np.full((4, 3), index % 256, np.uint8),
            "label": index,
            "score": index / 2,
            "name": f"p{index}",
        }


class Ragged:
    """Arrays whose length varies with the index, and bytes."""

    def __len__(self) -> int:
        return 50

    def __getitem__(self, index: int) -> dict:
        return {"tokens": np.arange(index % 5, dtype=np.int32), "raw": bytes([index])}


class Growing:
    """Arrays that grow with the step, so later batches outgrow the shared-memory slots."""

    def __call__(self, step: int) -> dict:
        size = 1 + step // 8
        return {"x": np.full(size * 1000, step, np.int64)}


class FailAt:
    """Raises ValueError at one step, else behaves as Points."""

    def __init__(self, n: int, bad: int) -> None:
        self.points, self.bad = Points(n), bad

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict:
        if index == self.bad:
            raise ValueError(f"bad datapoint {index}")
        return self.points[index]


class DieAt(FailAt):
    """Ends its process abruptly at one step, as a crash in native code would."""

    def __getitem__(self, index: int) -> dict:
        if index == self.bad:
            os._exit(7)
        return self.points[index]


class BlockAt(FailAt):
    """Blocks forever at one step, after writing a byte to `ready_fd` (a pipe the test reads)."""

    def __init__(self, n: int, bad: int, path: str) -> None:
        super().__init__(n, bad)
        self.path = path

    def __getitem__(self, index: int) -> dict:
        if index == self.bad:
            with open(self.path, "w") as f:
                f.write("blocked")
            threading.Event().wait()
        return self.points[index]


class Recorder:
    """Points that records every index it is asked for (for in-process modes)."""

    def __init__(self, n: int) -> None:
        self.points, self.asked = Points(n), []

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict:
        self.asked.append(index)
        return self.points[index]


def augment(point: dict, seed) -> dict:
    """A Transform function: adds noise drawn from the per-step seed."""
    rng = np.random.default_rng(seed)
    return {**point, "noise": rng.normal(size=2)}


class Unsendable:
    """Datapoints holding a lock, which no pipe can carry."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return {"lock": threading.Lock(), "label": index}
