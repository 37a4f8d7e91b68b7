"""The references of ``refs.bag`` for a run of datapoints, checked in bulk.

A datapoint's references are a msgpack array with one entry per key; for a scalar key, the index of
its record. Writers add one record per datapoint to every scalar key's bag, so across a run of
datapoints every scalar reference counts up by one, and the encoded records of a run differ only in
the bytes of those counters. Checking that with numpy costs a few operations per run instead of a
decode per datapoint; anything else (sequences, other encodings, damage) is left to the
record-by-record path, which decodes and explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np


def _width(value: int) -> tuple[int, int]:
    """(bytes before the number, bytes of the number) in msgpack's shortest form of a non-negative int."""
    if value < 128:
        return 0, 1  # a positive fixint is its own byte
    return 1, 1 if value < 1 << 8 else 2 if value < 1 << 16 else 4 if value < 1 << 32 else 8


def _big_endian(columns: np.ndarray) -> np.ndarray:
    """Each row's bytes read as one big-endian unsigned number."""
    padded = np.zeros((len(columns), 8), np.uint8)
    padded[:, 8 - columns.shape[1] :] = columns
    return padded.view(">u8").ravel()


def is_counting_run(buffer: Any, bounds: np.ndarray, bases: Sequence[int]) -> bool:
    """Whether the records at ``bounds`` in ``buffer`` are the references of datapoints whose key ``j``
    points at record ``bases[j] + d`` for the ``d``-th of them, encoded as every writer encodes them."""
    data = np.frombuffer(buffer, np.uint8)
    lengths = np.diff(bounds)
    if len(data) != bounds[-1] or not len(lengths) or min(bases) < 0:
        return False
    # The records' layout only changes where a counter needs a wider encoding, so the run splits into a
    # few stretches of equal-length records, each checked as one matrix.
    cuts = [0, *(np.flatnonzero(lengths[1:] != lengths[:-1]) + 1).tolist(), len(lengths)]
    for a, b in zip(cuts, cuts[1:]):
        first = [base + a for base in bases]
        pattern = np.frombuffer(msgpack.packb(first), np.uint8)
        if len(pattern) != lengths[a]:
            return False
        rows = data[bounds[a] : bounds[b]].reshape(b - a, len(pattern))
        steps = np.arange(b - a, dtype=np.uint64)
        fixed = np.ones(len(pattern), bool)
        position = 1 if len(first) < 16 else 3  # the array header
        for value in first:
            marker, width = _width(value)
            number = slice(position + marker, position + marker + width)
            fixed[number] = False
            if not np.array_equal(_big_endian(rows[:, number]), np.uint64(value) + steps):
                return False
            position = number.stop
        if not (rows[:, fixed] == pattern[fixed]).all():
            return False
    return True
