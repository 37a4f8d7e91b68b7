"""Damaged files: truncated or bit-flipped, any file of a dataset, found by hypothesis.

A dataset Thresher wrote (with its checksums) must then raise a BagError or read exactly as
before: never a wrong value, never another exception, never a hang. A dataset ``granular`` wrote
has no checksums, so a flipped payload byte can read back changed; there the property is only
that every failure is a BagError.
"""

import os
import shutil
from pathlib import Path

import granular
import pytest
from bag_samples import GRANULAR_SAFE_INTS, SCALAR_SPEC, SEQUENCE_SPEC, assert_same, datapoints
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.bag import BagError, DatasetReader, DatasetWriter, decoders, encoders

# Hundreds of damaged copies per test: the search is the point. The single flips and cuts of test_bag_bag,
# test_bag_blocks and test_bag_compat keep damage in the quick selection.
pytestmark = pytest.mark.slow

SPEC = {**SCALAR_SPEC, **SEQUENCE_SPEC}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_everything(directory, **options):
    with DatasetReader(directory, decoders, **options) as reader:
        count = len(reader)
        return {
            "size": reader.size,
            "points": [reader[i] for i in range(count)],
            "available": [reader.available(i) for i in range(count)],
            "slice": reader[0:count],
            "masked": [reader[i, {"texts": range(1, 2), "num": True}] for i in range(count)],
            "blocks": _blocks(reader.read_blocks(0, count, list(reader.spec))),
        }


def _blocks(blocks: dict) -> dict:
    """``read_blocks`` output as plain values: per key, its records' bytes and per-datapoint counts."""
    plain = {}
    for key, block in blocks.items():
        if block is not None:
            buffer, bounds, counts = block
            block = [bytes(buffer[a:b]) for a, b in zip(bounds.tolist(), bounds[1:].tolist())], counts
        plain[key] = block
    return plain


class Damage:
    """A copy of a dataset whose files are damaged one at a time and then restored."""

    def __init__(self, source: Path, target: Path):
        shutil.copytree(source, target)
        self.directory = target
        self.files = sorted(p for p in target.iterdir())
        self.originals = {p: p.read_bytes() for p in self.files}

    def flip(self, which: int, where: int, bit: int) -> Path:
        path = self.files[which % len(self.files)]
        data = bytearray(self.originals[path])
        if data:
            data[where % len(data)] ^= 1 << bit
        path.write_bytes(bytes(data))
        return path

    def truncate(self, which: int, length: int) -> Path:
        path = self.files[which % len(self.files)]
        data = self.originals[path]
        path.write_bytes(data[: length % max(1, len(data))])
        return path

    def restore(self, path: Path) -> None:
        path.write_bytes(self.originals[path])


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    root = tmp_path_factory.mktemp("ours")
    with DatasetWriter(root / "pristine", SPEC, encoders) as writer:
        for point in datapoints(6, seed=5):
            writer.append(point)
    damage = Damage(root / "pristine", root / "work")
    return damage, read_everything(root / "pristine")


@pytest.fixture(scope="module")
def theirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("theirs")
    with granular.DatasetWriter(root / "pristine", SPEC, granular.encoders) as writer:
        for point in datapoints(6, seed=5, ints=GRANULAR_SAFE_INTS):
            writer.append(point)
    return Damage(root / "pristine", root / "work")


def check_exact_or_error(damage, expected, path, **options):
    try:
        got = read_everything(damage.directory, **options)
    except BagError:
        return
    finally:
        damage.restore(path)
    assert_same(got, expected, f"damaged {path.name}")


@SETTINGS
@given(which=st.integers(0, 10**6), where=st.integers(0, 10**9), bit=st.integers(0, 7))
def test_bit_flip_in_our_dataset_never_reads_wrong(ours, which, where, bit):
    damage, expected = ours
    check_exact_or_error(damage, expected, damage.flip(which, where, bit))


@SETTINGS
@given(which=st.integers(0, 10**6), length=st.integers(0, 10**9))
def test_truncation_of_our_dataset_never_reads_wrong(ours, which, length):
    damage, expected = ours
    check_exact_or_error(damage, expected, damage.truncate(which, length))


@settings(SETTINGS, max_examples=100)
@given(which=st.integers(0, 10**6), where=st.integers(0, 10**9), bit=st.integers(0, 7))
def test_bit_flip_without_cached_index_never_reads_wrong(ours, which, where, bit):
    damage, expected = ours
    check_exact_or_error(damage, expected, damage.flip(which, where, bit), cache_index=False)


def fails_only_with_bag_errors(damage, path):
    try:
        read_everything(damage.directory)
    except BagError:
        pass
    finally:
        damage.restore(path)


@settings(SETTINGS, max_examples=200)
@given(which=st.integers(0, 10**6), where=st.integers(0, 10**9), bit=st.integers(0, 7))
def test_bit_flip_in_granular_dataset_fails_cleanly(theirs, which, where, bit):
    fails_only_with_bag_errors(theirs, theirs.flip(which, where, bit))


@settings(SETTINGS, max_examples=200)
@given(which=st.integers(0, 10**6), length=st.integers(0, 10**9))
def test_truncation_of_granular_dataset_fails_cleanly(theirs, which, length):
    fails_only_with_bag_errors(theirs, theirs.truncate(which, length))


def test_every_file_of_our_dataset_is_covered(ours):
    damage, _ = ours
    names = {p.name for p in damage.files}
    assert "spec.json" in names and "refs.bag" in names and "refs.bag.crc" in names
    assert all(f"{key}.bag.crc" in names for key in SPEC)
    assert not any(os.path.getsize(p) == 0 for p in damage.files)
