"""Checksums beside a bag: ``<bag>.crc``, written by Thresher and ignored by ``granular``.

The bag format has no checksums of its own, so a flipped bit in a record would read back as a wrong
value. Thresher writes, next to every bag it closes, one 64-bit digest per record plus a trailer,
and checks each record it reads against it. Layout (little-endian)::

    digest[0] ... digest[N-1]   u64 each
    N                           u64, the bag's record count
    table_digest                u64, digest of the bag's index table bytes as stored in the bag
    algorithm                   4 bytes: b"TXH3" (XXH3-64, from the optional ``xxhash``) or b"TCRC" (zlib CRC-32)

XXH3 runs at memory speed, so checking costs little; without ``xxhash`` a writer falls back to
CRC-32 (about 2 GB/s). A bag without this file (one ``granular`` wrote) is read with structural
checks only.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from typing import Callable

from thresher.bag.errors import ChecksumError, CorruptBagError

SUFFIX = ".crc"
XXH3 = b"TXH3"
CRC32 = b"TCRC"
_TRAILER = struct.Struct("<QQ4s")
_BIG_ENDIAN = sys.byteorder == "big"


def _xxh3() -> Callable[[bytes], int] | None:
    try:
        import xxhash
    except ImportError:
        return None
    return xxhash.xxh3_64_intdigest


def digest_function(algorithm: bytes) -> Callable[[bytes], int]:
    """The function computing ``algorithm``'s digest of a record."""
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
    """The record digests of one bag and the digest of its index table."""

    __slots__ = ("digests", "table_digest", "digest", "name")

    def __init__(self, digests: array, table_digest: int, algorithm: bytes, name: str):
        self.digests = digests
        self.table_digest = table_digest
        self.digest = digest_function(algorithm)
        self.name = name

    def check_table(self, table: bytes, bag_name: str) -> None:
        """Raise :class:`ChecksumError` unless ``table`` is the index table that was written."""
        if self.digest(table) != self.table_digest:
            raise ChecksumError(f"{bag_name}: index table does not match its checksum in {self.name}")

    def mismatch(self, index: int, bag_name: str) -> ChecksumError:
        """The error for record ``index`` not matching its digest."""
        return ChecksumError(f"{bag_name}: record {index} does not match its checksum in {self.name}")

    def __getstate__(self) -> tuple:
        algorithm = CRC32 if self.digest is zlib.crc32 else XXH3
        return self.digests, self.table_digest, algorithm, self.name

    def __setstate__(self, state: tuple) -> None:
        self.digests, self.table_digest, algorithm, self.name = state
        self.digest = digest_function(algorithm)


def encode(digests: array, table_digest: int, algorithm: bytes) -> bytes:
    """The sidecar file's content."""
    body = digests
    if _BIG_ENDIAN:
        body = array("Q", digests)
        body.byteswap()
    return body.tobytes() + _TRAILER.pack(len(digests), table_digest, algorithm)


def decode(content: bytes, count: int, name: str) -> Checksums:
    """Parse a sidecar for a bag of ``count`` records; raise :class:`CorruptBagError` if it does not fit."""
    if len(content) != 8 * count + _TRAILER.size:
        raise CorruptBagError(
            f"{name}: {len(content)} bytes, but a bag of {count} records needs {8 * count + _TRAILER.size}"
        )
    stored, table_digest, algorithm = _TRAILER.unpack_from(content, 8 * count)
    if algorithm not in (XXH3, CRC32) or stored != count:
        raise CorruptBagError(f"{name}: trailer does not describe a bag of {count} records")
    digests = array("Q")
    digests.frombytes(content[: 8 * count])
    if _BIG_ENDIAN:
        digests.byteswap()
    return Checksums(digests, table_digest, algorithm, name)
