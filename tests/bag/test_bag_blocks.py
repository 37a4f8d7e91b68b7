"""Reading runs of records in bulk: block checksums, and the references of a run checked in one compare."""

import os
import random
import struct

import msgpack
import numpy as np
import pytest

from thresher.bag import BagReader, BagWriter, ChecksumError, CorruptBagError, DatasetReader, DatasetWriter, encoders
from thresher.core.bag import checksums
from thresher.core.bag.refs import is_counting_run

SIZES = [0, 1, 5, 100, 4096, 70_000, 200_000]


def records(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [os.urandom(rng.choice(SIZES) if rng.random() < 0.3 else rng.randint(0, 3000)) for _ in range(count)]


def write(path, values) -> str:
    with BagWriter(path) as writer:
        writer.extend(values)
    return str(path)


def unpack(block) -> list[bytes]:
    buffer, bounds = block
    return [bytes(buffer[a:b]) for a, b in zip(bounds.tolist(), bounds[1:].tolist())]


def flip(path, offset: int) -> None:
    with open(path, "r+b") as file:  # in place: a mapping of the file sees the change
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x04]))


def test_blocks_cover_the_bag_and_runs_read_back_exactly(tmp_path):
    values = records(3000)
    with BagReader(write(tmp_path / "a.bag", values)) as reader:
        sums = reader.checksums
        ends = np.cumsum([len(v) for v in values])
        # A block ends with the first record whose end reaches a new multiple of BLOCK_BYTES.
        closing = [
            i + 1
            for i in range(len(values))
            if ends[i] // checksums.BLOCK_BYTES > (ends[i - 1] if i else 0) // checksums.BLOCK_BYTES
        ]
        assert sums.block_ends.tolist() == closing + ([len(values)] if closing[-1] != len(values) else [])
        rng = random.Random(2)
        for _ in range(300):
            start = rng.randrange(len(values))
            stop = rng.randrange(start, len(values) + 1)
            assert unpack(reader.read_block(start, stop)) == values[start:stop], (start, stop)


def test_a_flipped_byte_fails_the_run_holding_it_by_its_block_or_its_record(tmp_path):
    values = [bytes([i % 251]) * 1000 for i in range(500)]
    path = write(tmp_path / "a.bag", values)
    flip(path, 250 * 1000 + 17)  # inside record 250
    with BagReader(path) as reader:
        with pytest.raises(ChecksumError, match=r"a.bag: records \d+\.\.\d+ do not match their block checksum"):
            reader.read_block(200, 300)
        with pytest.raises(ChecksumError, match="a.bag: record 250 does not match"):
            reader.read_block(249, 252)  # too short a run to widen: record by record
        assert unpack(reader.read_block(0, 60)) == values[:60]
    with BagReader(path, verify=False) as reader:
        assert unpack(reader.read_block(249, 252))[1] != values[250]


def test_bags_of_the_first_sidecar_version_are_still_checked(tmp_path):
    values = records(400, seed=3)
    path = write(tmp_path / "a.bag", values)
    content = open(f"{path}.crc", "rb").read()
    count, table_digest, _ = struct.unpack_from("<QQ4s", content, len(content) - 20)
    with open(f"{path}.crc", "wb") as file:  # digests, then the trailer naming the first version
        file.write(content[: 8 * count] + struct.pack("<QQ4s", count, table_digest, b"TXH3"))
    with BagReader(path) as reader:
        assert reader.checksums.block_ends is None
        assert unpack(reader.read_block(0, 400)) == values
    flip(path, len(values[0]) + len(values[1]))  # the first byte of record 2 (or of a later one, if it is empty)
    with BagReader(path) as reader:
        with pytest.raises(ChecksumError, match="does not match its checksum"):
            reader.read_block(0, 400)


def test_a_sidecar_whose_blocks_do_not_cover_the_bag_is_corrupt(tmp_path):
    path = write(tmp_path / "a.bag", records(100, seed=4))
    content = bytearray(open(f"{path}.crc", "rb").read())
    count = 100
    content[8 * count : 8 * count + 8] = struct.pack("<Q", 0)  # the first block would hold no record
    open(f"{path}.crc", "wb").write(bytes(content))
    with pytest.raises(CorruptBagError, match="blocks do not cover"):
        BagReader(path)


# -- references of runs ----------------------------------------------------------------------------


def encoded_refs(bases: list[int], count: int) -> tuple[bytes, np.ndarray]:
    packed = [msgpack.packb([base + d for base in bases]) for d in range(count)]
    return b"".join(packed), np.concatenate([[0], np.cumsum([len(p) for p in packed])]).astype(np.int64)


@pytest.mark.parametrize("bases", [[0, 0, 0], [120, 250, 65_530], [2**32 - 3, 7], [2**64 - 20], list(range(16))])
def test_a_counting_run_is_recognised_and_nothing_else_is(bases):
    buffer, bounds = encoded_refs(bases, 15)
    assert is_counting_run(buffer, bounds, bases)
    assert not is_counting_run(buffer, bounds, [bases[0] + 1, *bases[1:]])
    rng = random.Random(5)
    for _ in range(200):
        damaged = bytearray(buffer)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        assert not is_counting_run(bytes(damaged), bounds, bases)
    swapped = [msgpack.packb([base + d for base in bases]) for d in (1, 0, *range(2, 15))]
    assert not is_counting_run(b"".join(swapped), bounds, bases)


@pytest.mark.parametrize("cache_index", [True, False])
def test_read_blocks_equals_reading_point_by_point(tmp_path, monkeypatch, cache_index):
    from thresher.core.bag import reader as reader_module

    answers = []

    def counting(*args):
        answers.append(is_counting_run(*args))
        return answers[-1]

    monkeypatch.setattr(reader_module.refs_runs, "is_counting_run", counting)
    spec = {"label": "int", "name": "utf8", "blob": "bytes"}
    points = [{"label": i, "name": f"n{i}", "blob": os.urandom(i % 300)} for i in range(700)]  # refs pass 127, 255
    with DatasetWriter(tmp_path / "d", spec, encoders) as writer:
        for point in points:
            writer.append(point)
    with DatasetReader(tmp_path / "d", None, cache_index=cache_index) as reader:
        for start, stop in [(0, 700), (100, 300), (255, 257), (699, 700), (5, 5)]:
            blocks = reader.read_blocks(start, stop, ["blob", "name"])
            assert unpack(blocks["blob"][:2]) == reader[start:stop]["blob"]
            assert unpack(blocks["name"][:2]) == reader[start:stop]["name"]
            assert blocks["blob"][2] is None
    # With index tables cached, the whole dataset's references are checked once, on the first read;
    # without, each non-empty run's.
    assert answers == ([True] if cache_index else [True] * 4)


def test_references_out_of_order_are_not_taken_for_a_run(tmp_path):
    spec = {"label": "int", "blob": "bytes"}
    with DatasetWriter(tmp_path / "d", spec, encoders) as writer:
        for i in range(50):
            writer.append({"label": i, "blob": bytes([i]) * 10})
    refs = tmp_path / "d" / "refs.bag"
    for leftover in (refs, f"{refs}.crc"):
        os.remove(leftover)
    order = [*range(10), 11, 10, *range(12, 50)]  # datapoints 10 and 11 swapped
    write(refs, [msgpack.packb([i, i]) for i in order])
    with DatasetReader(tmp_path / "d", None) as reader:
        assert reader.read_blocks(0, 50, ["blob"]) == {
            "blob": None
        }  # not back to back: the caller reads point by point
        assert reader.read_blocks(12, 50, ["blob"])["blob"] is not None
        assert reader[10]["blob"] == bytes([11]) * 10
