"""Where a bag's records lie: its index table, located, checked and optionally held in memory.

Both layouts come down to the same thing, the list of record end offsets. We keep it as
``bounds``: ``[0, end_0, ..., end_{N-1}]``, so record ``i`` is ``bounds[i]:bounds[i+1]`` and a run of
records ``a..b`` is one read ``bounds[a]:bounds[b]``.

- Seed layout (one file): the records, then the table; the file's last word is where the table
  starts. A table whose first word is 0 is version 1 (a leading start offset 0, then the ends);
  otherwise version 2 (just the ends). Version 1 is then exactly ``bounds``.
- Split layout (``.bag`` + ``.idx``): the ``.idx`` file is the ends; bag bytes past the last end
  are a tail that was never acknowledged and is ignored.
"""

from __future__ import annotations

import struct
import sys
from array import array

import numpy as np

from thresher.core.bag.bag_errors import CorruptBagError
from thresher.core.bag.files import RangedFile

WORD = 8
# A seed-layout bag is opened with one read of its last TAIL bytes: the word saying where the table
# starts and, for bags of up to ~8000 records, the whole table (one request, on a cloud store).
TAIL = 64 * 1024
_word = struct.Struct("<Q")
_BIG_ENDIAN = sys.byteorder == "big"
ZERO_WORD = bytes(WORD)


class Table:
    """The located index of one bag: ``count`` records in bytes ``[0, data_end)``.

    The end words lie at ``offset`` in the bag itself (seed layout) or in its ``.idx`` (split
    layout); ``table_start`` is where the table as stored begins, which its checksum covers.
    """

    __slots__ = ("count", "data_end", "offset", "table_start")

    def __init__(self, count: int, data_end: int, offset: int, table_start: int):
        self.count = count
        self.data_end = data_end
        self.offset = offset
        self.table_start = table_start


def locate_seed(file: RangedFile, read_table: bool) -> tuple[Table, bytes | None]:
    """Find the table of a one-file bag, and read it whole if asked.

    One read of the file's tail does both unless the table is longer than :data:`TAIL`.
    """
    size = file.size
    if size == 0:
        return Table(0, 0, 0, 0), b""
    if size < WORD:
        raise CorruptBagError(f"{file.name}: {size} bytes is too short to hold an index table")
    tail_start = max(0, size - TAIL)
    tail = file.read(tail_start, size)
    (start,) = _word.unpack_from(tail, len(tail) - WORD)
    if start > size - WORD or (size - start) % WORD:
        raise CorruptBagError(
            f"{file.name}: no valid index table at its end (the bag was not closed, or it is truncated)"
        )
    if start >= tail_start:
        whole = tail[start - tail_start :]
        raw = whole if read_table else None
        first = whole[:WORD]
    else:
        raw = file.read(start, size) if read_table else None
        first = raw[:WORD] if raw is not None else file.read(start, start + WORD)
    offset = start + WORD if first == ZERO_WORD else start
    return Table((size - offset) // WORD, start, offset, start), raw


def locate_split(bag: RangedFile, idx: RangedFile, read_table: bool) -> tuple[Table, bytes | None]:
    """Find the table of a ``.bag`` + ``.idx`` pair, and read it whole if asked."""
    if idx.size % WORD:
        raise CorruptBagError(f"{idx.name}: {idx.size} bytes is not a whole number of index entries")
    count = idx.size // WORD
    raw = idx.read(0, idx.size) if read_table else None
    last = raw[-WORD:] if raw is not None else idx.read(idx.size - WORD, idx.size)
    data_end = _word.unpack(last)[0] if count else 0
    if data_end > bag.size:
        raise CorruptBagError(f"{bag.name}: {bag.size} bytes, but its index {idx.name} says {data_end}")
    return Table(count, data_end, 0, 0), raw


def load_bounds(table: Table, ends: bytes, name: str) -> array[int]:
    """Turn the stored end words into checked ``bounds`` held in memory."""
    words = np.frombuffer(ends, "<u8")
    if len(words) != table.count:
        raise CorruptBagError(f"{name}: index table holds {len(words)} entries, expected {table.count}")
    if table.count and (words[-1] != table.data_end or (words[1:] < words[:-1]).any()):
        raise CorruptBagError(f"{name}: index table offsets are out of order or past the data")
    bounds = array("Q", ZERO_WORD)
    bounds.frombytes(ends)
    if _BIG_ENDIAN:
        bounds.byteswap()
    return bounds


def read_bounds(file: RangedFile, table: Table, start: int, stop: int, name: str) -> list[int]:
    """``bounds[start:stop+1]`` read from the file (no cached index): one ranged read."""
    lo = table.offset + WORD * (start - 1 if start else 0)
    raw = file.read(lo, table.offset + WORD * stop)
    words = list(struct.unpack(f"<{len(raw) // WORD}Q", raw))
    if not start:
        words.insert(0, 0)
    if any(b < a for a, b in zip(words, words[1:])) or words[-1] > table.data_end:
        raise CorruptBagError(f"{name}: index entries {start}..{stop} are out of order or past the data")
    return words
