"""Sample datapoints covering every bag format, and a deep equality check for decoded values.

Used by the tests and by ``fixtures/make_granular_new.py`` (which runs under another venv), so it
depends on numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Values granular's own int encoder can write (it overflows on 128-255, 32768-65535, ... and on
# negatives), and values only Thresher can.
GRANULAR_SAFE_INTS = [0, 1, 127, 256, 1000, 2**20, 2**40 + 5, 2**62]
ANY_INTS = [0, -1, 127, 128, 200, 255, -128, -129, 65535, -(2**63), 2**63 - 1, 2**100, -(2**100)]

ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.array(7, dtype=np.int64),
    np.zeros((0, 3), dtype=np.uint8),
    np.arange(300, dtype=">i4"),
    np.array([True, False]),
    np.array([1 + 2j], dtype=np.complex128),
    np.array(["ab", "c"]),
    np.array([b"xy"], dtype="S2"),
    np.ones((2, 200, 3), dtype=np.uint8),
    np.arange(6, dtype=np.float16).reshape(1, 2, 3),
]

SCALAR_SPEC = {
    "bin": "bytes",
    "text": "utf8",
    "num": "int",
    "signed": "i64",
    "unsigned": "u64",
    "obj": "msgpack",
    "arr": "array",
    "nested": "tree",
    "photo": "jpg",
    "mask": "png",
}
SEQUENCE_SPEC = {"texts": "utf8[]", "arrs": "array[]", "nums": "int[]", "blobs": "bytes[]"}


def image(rng: np.random.Generator, channels: int | None = 3) -> np.ndarray:
    """A small gradient with a random offset (compresses well, so fixtures stay small)."""
    shape = (16, 24, channels) if channels else (16, 24)
    ramp = np.indices(shape).sum(axis=0) * 5
    return ((ramp + int(rng.integers(0, 256))) % 256).astype(np.uint8)


def scalar_point(i: int, rng: np.random.Generator, ints: list[int]) -> dict[str, Any]:
    """One datapoint of SCALAR_SPEC."""
    return {
        "bin": rng.bytes(int(rng.integers(1, 40))),
        "text": f"datapoint {i} ✓" * (i % 3 + 1),
        "num": ints[i % len(ints)],
        "signed": -(2**63) + i if i % 2 else 2**63 - 1 - i,
        "unsigned": 2**64 - 1 - i,
        "obj": {"i": i, "list": [1, 2.5, "x", None, True], "bin": b"\x00\x01"},
        "arr": ARRAYS[i % len(ARRAYS)],
        "nested": {"a": [np.arange(i + 1), {"b": np.eye(2)}], "c": i, "d": "s"},
        "photo": image(rng),
        "mask": image(rng, channels=None),
    }


def sequence_point(i: int, rng: np.random.Generator, ints: list[int]) -> dict[str, Any]:
    """One datapoint of SEQUENCE_SPEC; some sequences are empty."""
    n = i % 4
    return {
        "texts": [f"t{i}.{k}" for k in range(n)],
        "arrs": [rng.standard_normal((k + 1, 2)) for k in range((i + 1) % 3)],
        "nums": [ints[(i + k) % len(ints)] for k in range(n + 1)],
        "blobs": [rng.bytes(5) for _ in range(i % 2 * 3)],
    }


def datapoints(count: int, seed: int = 0, ints: list[int] = ANY_INTS, sequences: bool = True) -> list[dict[str, Any]]:
    """``count`` datapoints of SCALAR_SPEC (plus SEQUENCE_SPEC when ``sequences``)."""
    rng = np.random.default_rng(seed)
    points = []
    for i in range(count):
        point = scalar_point(i, rng, ints)
        if sequences:
            point.update(sequence_point(i, rng, ints))
        points.append(point)
    return points


def assert_same(got: Any, want: Any, where: str = "value") -> None:
    """Deep equality where arrays must match in dtype, shape and content."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), f"{where}: {type(got)} is not an array"
        assert got.dtype == want.dtype and got.shape == want.shape, (
            f"{where}: {got.dtype}{got.shape} != {want.dtype}{want.shape}"
        )
        assert np.array_equal(got, want), f"{where}: array contents differ"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for k, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{k}]")
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"
