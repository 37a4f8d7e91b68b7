"""Checksums beside a bag: ``<bag>.crc``, written by Thresher and ignored by ``granular``.

The bag format has no checksums of its own, so a flipped bit in a record would read back as a wrong
value. Thresher writes, next to every bag it closes, one 64-bit digest per record and one per block
of records, plus a trailer, and checks what it reads against them. Layout (little-endian)::

    digest[0] ... digest[N-1]   u64 each, one per record
    block_end[0] ... [M-1]      u64 each, the record index each block ends before (the last is N)
    block_digest[0] ... [M-1]   u64 each, the digest of the block's records back to back
    M                           u64, the number of blocks
    N                           u64, the bag's record count
    table_digest                u64, digest of the bag's index table bytes as stored in the bag
    algorithm                   4 bytes: b"BXH3" (XXH3-64, from the optional ``xxhash``) or b"BCRC"
                                (zlib CRC-32); b"TXH3" / b"TCRC" for the first version, which has
                                no block section (no block_end, block_digest or M)

A block ends with the first record whose end offset reaches the next multiple of BLOCK_BYTES, so a
long run of records is checked with one digest per ~64 KiB instead of one per record (records are
often small: a label, a few bytes) while a single record is still checked on its own. XXH3 runs at
memory speed, so checking costs little; without ``xxhash`` a writer falls back to CRC-32 (about
2 GB/s). A bag without this file (one ``granular`` wrote) is read with structural checks only.
"""

from __future__ import annotations

import collections
import struct
import sys
import zlib
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from thresher.core.bag.bag_errors import ChecksumError, CorruptBagError

if TYPE_CHECKING:
    from typing_extensions import Buffer

SUFFIX = ".crc"
XXH3 = b"BXH3"
CRC32 = b"BCRC"
# The first version's names for the same algorithms: record digests only.
_RECORDS_ONLY = {b"TXH3": XXH3, b"TCRC": CRC32}
BLOCK_BYTES = 64 * 1024
_TRAILER = struct.Struct("<QQ4s")
_BLOCK_COUNT = struct.Struct("<Q")
_BIG_ENDIAN = sys.byteorder == "big"


def _xxh3() -> Callable[[Buffer], int] | None:
    try:
        import xxhash
    except ImportError:
        return None
    return xxhash.xxh3_64_intdigest


def digest_function(algorithm: bytes) -> Callable[[Buffer], int]:
    """The function computing ``algorithm``'s digest of a record."""
    algorithm = _RECORDS_ONLY.get(algorithm, algorithm)
    if algorithm == CRC32:
        return zlib.crc32
    function = _xxh3() if algorithm == XXH3 else None
    if function is None:
        raise ImportError(
            f"checksums of type {algorithm!r} need the xxhash package: "
            "pip install 'xxhash>=3.4', or read with verify=False"
        )
    return function


def default_algorithm() -> bytes:
    """XXH3 when ``xxhash`` is installed, else CRC-32."""
    return XXH3 if _xxh3() is not None else CRC32


class Checksums:
    """The record digests of one bag, its block digests (None for the first version) and the digest of
    its index table."""

    __slots__ = ("digests", "block_ends", "block_digests", "table_digest", "algorithm", "digest", "name")

    def __init__(
        self,
        digests: array[int],
        blocks: tuple[np.ndarray, list[int]] | None,
        table_digest: int,
        algorithm: bytes,
        name: str,
    ):
        self.digests = digests
        self.block_ends: np.ndarray | None
        self.block_digests: list[int] | None
        self.block_ends, self.block_digests = blocks if blocks is not None else (None, None)
        self.table_digest = table_digest
        self.algorithm = algorithm
        self.digest = digest_function(algorithm)
        self.name = name

    def check_table(self, table: bytes, bag_name: str) -> None:
        """Raise :class:`ChecksumError` unless ``table`` is the index table that was written."""
        if self.digest(table) != self.table_digest:
            raise ChecksumError(f"{bag_name}: index table does not match its checksum in {self.name}")

    def mismatch(self, index: int, bag_name: str) -> ChecksumError:
        """The error for record ``index`` not matching its digest."""
        return ChecksumError(f"{bag_name}: record {index} does not match its checksum in {self.name}")

    def check_records(self, buffer: Any, bounds: Any, start: int, bag_name: str) -> None:
        """Check records ``start..`` lying in ``buffer`` at ``bounds`` (relative to it), one digest each."""
        view, digest, digests = memoryview(buffer), self.digest, self.digests
        for i, (a, b) in enumerate(zip(bounds.tolist(), bounds[1:].tolist()), start):
            if digest(view[a:b]) != digests[i]:
                raise self.mismatch(i, bag_name)

    def blocks_around(self, start: int, stop: int) -> tuple[int, int] | None:
        """The records ``first..last-1`` of the whole blocks holding records ``start..stop-1``, or None
        when the bag has no block digests."""
        ends = self.block_ends
        if ends is None:
            return None
        first_block = int(np.searchsorted(ends, start, side="right"))
        last_block = int(np.searchsorted(ends, stop - 1, side="right"))
        return (int(ends[first_block - 1]) if first_block else 0), int(ends[last_block])

    def check_blocks(self, buffer: Any, bounds: Any, first: int, bag_name: str) -> None:
        """Check whole blocks of records ``first..`` lying in ``buffer`` at ``bounds`` (relative to it),
        one digest per block."""
        ends, block_digests = self.block_ends, self.block_digests
        assert ends is not None and block_digests is not None, "only called when blocks_around found blocks"
        block = int(np.searchsorted(ends, first, side="right"))
        view, digest, last = memoryview(buffer), self.digest, first + len(bounds) - 1
        begin = first
        while begin < last:
            end = int(ends[block])
            if digest(view[int(bounds[begin - first]) : int(bounds[end - first])]) != block_digests[block]:
                raise ChecksumError(
                    f"{bag_name}: records {begin}..{end - 1} do not match their block checksum in {self.name}"
                )
            begin, block = end, block + 1

    def __getstate__(self) -> tuple[Any, ...]:
        blocks = None if self.block_ends is None else (self.block_ends, self.block_digests)
        return self.digests, blocks, self.table_digest, self.algorithm, self.name

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.digests, blocks, self.table_digest, self.algorithm, self.name = state
        self.block_ends, self.block_digests = blocks if blocks is not None else (None, None)
        self.digest = digest_function(self.algorithm)


class _RunningCrc32:
    """CRC-32 fed piece by piece, with the interface of ``xxhash.xxh3_64``."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def intdigest(self) -> int:
        return self.value


def _running(algorithm: bytes) -> Callable[[], Any]:
    if algorithm == CRC32:
        return _RunningCrc32
    import xxhash

    return xxhash.xxh3_64


class BlockDigests:
    """The block digests of a bag being written, fed each flushed run of records and its end offsets."""

    def __init__(self, algorithm: bytes) -> None:
        self._new = _running(algorithm)
        self._running = self._new()
        self.ends = array("Q")
        self.digests = array("Q")
        self._count = 0  # records fed so far
        self._offset = 0  # bytes fed so far

    def feed(self, records: list[bytes], ends: np.ndarray) -> None:
        """Add ``records``, whose end offsets in the bag are ``ends``."""
        if not records:
            return
        blocks = ends // BLOCK_BYTES
        before = np.empty_like(blocks)
        before[0], before[1:] = self._offset // BLOCK_BYTES, blocks[:-1]
        position = 0
        for closing in np.flatnonzero(blocks > before).tolist():  # records that reach a new multiple
            self._update(records[position : closing + 1])
            self._close(self._count + closing + 1)
            position = closing + 1
        self._update(records[position:])
        self._count += len(records)
        self._offset = int(ends[-1])

    def finish(self) -> None:
        """Close the last block, if records follow the last closed one."""
        if self._count > (self.ends[-1] if self.ends else 0):
            self._close(self._count)

    def _update(self, records: list[bytes]) -> None:
        collections.deque(map(self._running.update, records), maxlen=0)  # a C loop, no Python per record

    def _close(self, end: int) -> None:
        self.ends.append(end)
        self.digests.append(self._running.intdigest())
        self._running = self._new()


def _little_endian(values: array[int]) -> bytes:
    if _BIG_ENDIAN:
        values = array("Q", values)
        values.byteswap()
    return values.tobytes()


def encode(digests: array[int], blocks: BlockDigests, table_digest: int, algorithm: bytes) -> bytes:
    """The sidecar file's content."""
    return b"".join(
        (
            _little_endian(digests),
            _little_endian(blocks.ends),
            _little_endian(blocks.digests),
            _BLOCK_COUNT.pack(len(blocks.ends)),
            _TRAILER.pack(len(digests), table_digest, algorithm),
        )
    )


def decode(content: bytes, count: int, name: str) -> Checksums:
    """Parse a sidecar for a bag of ``count`` records; raise :class:`CorruptBagError` if it does not fit."""
    if len(content) < _TRAILER.size:
        raise CorruptBagError(f"{name}: {len(content)} bytes is too short for a checksum sidecar")
    stored, table_digest, algorithm = _TRAILER.unpack_from(content, len(content) - _TRAILER.size)
    if algorithm not in (XXH3, CRC32, *_RECORDS_ONLY) or stored != count:
        raise CorruptBagError(f"{name}: trailer does not describe a bag of {count} records")
    blocks = None
    expected = 8 * count + _TRAILER.size
    if algorithm in (XXH3, CRC32):
        body_end = len(content) - _TRAILER.size - _BLOCK_COUNT.size
        (block_count,) = _BLOCK_COUNT.unpack_from(content, max(0, body_end))
        expected += _BLOCK_COUNT.size + 16 * block_count
    if len(content) != expected:
        raise CorruptBagError(f"{name}: {len(content)} bytes, which does not fit a bag of {count} records")
    digests = array("Q")
    digests.frombytes(content[: 8 * count])
    if _BIG_ENDIAN:
        digests.byteswap()
    if algorithm in (XXH3, CRC32):
        words = np.frombuffer(content, "<u8", 2 * block_count, 8 * count)
        ends = words[:block_count].astype(np.int64)
        in_order = (
            ends[-1] == count and ends[0] > 0 and bool(np.all(ends[1:] > ends[:-1])) if block_count else not count
        )
        if not in_order:
            raise CorruptBagError(f"{name}: its blocks do not cover a bag of {count} records in order")
        blocks = ends, words[block_count:].tolist()
    return Checksums(digests, blocks, table_digest, algorithm, name)
