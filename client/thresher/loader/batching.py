"""Turning the datapoints of one batch into stacked arrays and lists.

A key's values are stacked into one array when, in that batch, every value is a numeric array or
scalar and all share one shape and dtype; otherwise the batch holds them as a list, in step order
(strings, bytes, nested values, arrays whose shapes vary). The rule looks at the batch alone, so
a batch is the same whichever worker, or how many workers, computed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# bool, signed, unsigned, float, complex, timedelta, datetime: fixed-size values that stack.
STACKABLE_KINDS = frozenset("biufcmM")
_ALIGN = 64


def _as_array(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (bool, int, float, complex, np.generic)):
        array = np.asarray(value)
    else:
        return None
    return array if array.dtype.kind in STACKABLE_KINDS else None


def fetch(source: Callable[[int], Any], steps: range) -> list[dict[str, Any]]:
    """The datapoints of `steps`, checked to be dicts with the same keys."""
    points: list[dict[str, Any]] = []
    for step in steps:
        point = source(step)
        if not isinstance(point, dict):
            raise TypeError(f"the source gave {type(point).__name__} at step {step}, not a dict")
        if points and point.keys() != points[0].keys():
            raise ValueError(
                f"the datapoint at step {step} has keys {sorted(point)}, "
                f"but the one at step {steps.start} has {sorted(points[0])}"
            )
        points.append(point)
    return points


@dataclass
class Columns:
    """One batch by key: `arrays` holds the values that stack, `lists` the others."""

    keys: list[str]
    arrays: dict[str, list[np.ndarray]] = field(default_factory=dict)
    lists: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, points: list[dict[str, Any]]) -> Columns:
        columns = cls(keys=list(points[0]))
        for key in columns.keys:
            values = [point[key] for point in points]
            arrays = [_as_array(value) for value in values]
            first = arrays[0]
            stackable = [a for a in arrays if a is not None]
            if (
                first is not None
                and len(stackable) == len(arrays)
                and all(a.shape == first.shape and a.dtype == first.dtype for a in stackable)
            ):
                columns.arrays[key] = stackable
            else:
                columns.lists[key] = values
        return columns

    def stacked(self) -> dict[str, Any]:
        """The batch as a dict in key order, arrays stacked into fresh memory."""
        return {key: np.stack(self.arrays[key]) if key in self.arrays else self.lists[key] for key in self.keys}

    def layout(self) -> tuple[list[tuple[str, str, tuple[int, ...], int]], int]:
        """Where each stacked key goes in a buffer, (key, dtype, shape, offset), and the size."""
        entries, offset = [], 0
        for key, arrays in self.arrays.items():
            first = arrays[0]
            shape = (len(arrays), *first.shape)
            entries.append((key, first.dtype.str, shape, offset))
            nbytes = first.nbytes * len(arrays)
            offset += -(-nbytes // _ALIGN) * _ALIGN
        return entries, offset

    def write(self, layout: list[tuple[str, str, tuple[int, ...], int]], buffer: Any) -> None:
        """Stacks the arrays straight into `buffer` at the places `layout` gives."""
        for key, dtype, shape, offset in layout:
            target = np.ndarray(shape, dtype, buffer=buffer, offset=offset)
            np.stack(self.arrays[key], out=target)


def views(owner: np.ndarray, layout: list[tuple[str, str, tuple[int, ...], int]]) -> dict[str, np.ndarray]:
    """Arrays over `owner` (a byte array) at the places `layout` gives; each keeps owner alive."""
    arrays: dict[str, np.ndarray] = {}
    for key, dtype_name, shape, offset in layout:
        dtype = np.dtype(dtype_name)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        arrays[key] = owner[offset : offset + nbytes].view(dtype).reshape(shape)
    return arrays


def describe(value: Any) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) of one value: object and () for what numpy cannot hold as one array."""
    array = _as_array(value)
    if array is None:
        try:
            array = np.asarray(value)
        except ValueError:  # ragged nesting
            return np.dtype(object), ()
    return array.dtype, array.shape
