"""Compatibility with the ``granular`` package, both ways, on datasets covering every type.

- written by ``granular==0.21.2`` (live; seed layout, bags with table versions 1 and 2) -> Thresher;
- written by Thresher -> ``granular==0.21.2`` (live);
- written by ``granular==0.24.2`` (``.bag`` + ``.idx``; committed fixtures, see fixtures/) -> Thresher.
"""

import pickle
import shutil
import struct
from pathlib import Path

import granular
import numpy as np
import pytest
from bag_samples import ANY_INTS, GRANULAR_SAFE_INTS, SCALAR_SPEC, SEQUENCE_SPEC, assert_same, datapoints

from thresher.bag import CorruptBagError, DatasetReader, DatasetWriter, ShardedDatasetReader, decoders, encoders

SPEC = {**SCALAR_SPEC, **SEQUENCE_SPEC}
FIXTURES = Path(__file__).parent / "fixtures" / "granular-0.24.2"
SCALAR_KEYS = sorted(SCALAR_SPEC)
# granular has no f64 format; the bytes are the same, so give it the decoder a user would.
GRANULAR_DECODERS = {**granular.decoders, "f64": decoders["f64"]}


def compare_readers(ours, theirs):
    """Every datapoint, masks with ranges, scalar slices and metadata read the same in both."""
    assert len(ours) == len(theirs) and ours.spec == theirs.spec and ours.size == theirs.size
    for i in range(len(ours)):
        assert_same(ours[i], theirs[i], f"datapoint {i}")
        assert list(ours[i]) == list(theirs[i])
        assert ours.available(i) == theirs.available(i)
        # A range on an empty sequence fails inside granular, so ranges go on non-empty ones only.
        mask = {k: range(1, 3) for k, n in ours.available(i).items() if n is not True and len(n)}
        mask[next(k for k, n in ours.available(i).items() if n is True)] = True
        assert_same(ours[i, mask], theirs[i, mask], f"datapoint {i} masked")
    scalars = {k: True for k in ours.spec if not ours.spec[k].endswith("[]")}
    assert_same(ours[1 : len(ours) - 1, scalars], theirs[1 : len(theirs) - 1, scalars], "slice")


def rewrite_as_version_1(path):
    """Rewrite a granular bag with a version 1 table (start offsets, then the end)."""
    old = granular.BagReader(path)
    records = [old[i] for i in range(len(old))]
    old.close()
    path.unlink()
    writer = granular.BagWriter(path, version=1)
    for record in records:
        writer.append(record)
    writer.close()


@pytest.fixture(scope="module")
def granular_dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("granular") / "dataset"
    with granular.DatasetWriter(directory, SPEC, granular.encoders) as writer:
        for point in datapoints(9, seed=11, ints=GRANULAR_SAFE_INTS):
            writer.append(point)
    for key in ["refs", *SPEC][::2]:
        rewrite_as_version_1(directory / f"{key}.bag")
    return directory


def test_granular_dataset_has_both_table_versions(granular_dataset):
    def first_table_word(key):
        data = (granular_dataset / f"{key}.bag").read_bytes()
        (start,) = struct.unpack("<Q", data[-8:])
        return struct.unpack("<Q", data[start : start + 8])[0]

    assert first_table_word("refs") == 0  # version 1
    assert first_table_word("bin") > 0  # version 2


@pytest.mark.parametrize("options", [{}, {"cache_index": False}, {"cache_keys": ("refs", "num", "texts")}])
def test_granular_written_reads_identically(granular_dataset, options):
    ours = DatasetReader(granular_dataset, decoders, **options)
    theirs = granular.DatasetReader(granular_dataset, granular.decoders)
    try:
        compare_readers(ours, theirs)
    finally:
        ours.close()
        theirs.close()


def test_thresher_written_reads_identically_in_granular(tmp_path):
    spec = {**SPEC, "real": "f64", "empty": "utf8"}
    points = datapoints(9, seed=12, ints=ANY_INTS)
    for i, point in enumerate(points):
        point.update(real=i / 3 - 1.0, empty="" if i % 2 else "x")
    with DatasetWriter(tmp_path / "d", spec, encoders) as writer:
        for point in points:
            writer.append(point)
    ours = DatasetReader(tmp_path / "d", decoders)
    theirs = granular.DatasetReader(tmp_path / "d", GRANULAR_DECODERS)
    try:
        compare_readers(ours, theirs)
        assert [theirs[i]["num"] for i in range(9)] == [ANY_INTS[i] for i in range(9)]  # 128-255, negatives
        assert theirs[1]["empty"] == ""
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_video_datasets_both_ways(tmp_path, fmt):
    pytest.importorskip("av")
    spec = {"clip": fmt, "clips": f"{fmt}[]"}
    rng = np.random.default_rng(0)
    clip = lambda: rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)  # noqa: E731
    points = [{"clip": clip(), "clips": [clip() for _ in range(i)]} for i in range(3)]
    with DatasetWriter(tmp_path / "ours", spec, encoders) as writer:
        for point in points:
            writer.append(point)
    with granular.DatasetWriter(tmp_path / "theirs", spec, granular.encoders) as writer:
        for point in points:
            writer.append(point)
    for directory in ("ours", "theirs"):
        ours = DatasetReader(tmp_path / directory, decoders)
        theirs = granular.DatasetReader(tmp_path / directory, granular.decoders)
        compare_readers(ours, theirs)
        ours.close()
        theirs.close()


def test_newer_granular_layout_reads_identically():
    expected = pickle.loads((FIXTURES / "dataset.pkl").read_bytes())
    for options in ({}, {"cache_index": False}, {"cache_keys": ("num",)}):
        with DatasetReader(FIXTURES / "dataset", decoders, **options) as reader:
            assert reader.split and reader.spec == dict(sorted(SCALAR_SPEC.items())) and len(reader) == len(expected)
            for i, want in enumerate(expected):
                assert_same(reader[i], want, f"datapoint {i}")
                assert reader.available(i) == {k: True for k in SCALAR_KEYS}
            assert_same(
                reader[1:3, {"num": True, "text": True}], {k: [p[k] for p in expected[1:3]] for k in ("num", "text")}
            )
            assert_same(reader[2, ["arr"]], {"arr": expected[2]["arr"]})
    sharded = pickle.loads((FIXTURES / "sharded.pkl").read_bytes())
    with ShardedDatasetReader(FIXTURES / "sharded", decoders) as reader:
        assert reader.shards == 2 and [reader[i] for i in range(len(reader))] == sharded


def test_newer_layout_tail_is_ignored_and_damage_is_caught(tmp_path):
    directory = tmp_path / "d"
    shutil.copytree(FIXTURES / "dataset", directory)
    expected = pickle.loads((FIXTURES / "dataset.pkl").read_bytes())
    with open(directory / "text.bag", "ab") as f:
        f.write(b"bytes of a write that was never acknowledged")
    with DatasetReader(directory, decoders) as reader:
        assert [reader[i]["text"] for i in range(len(reader))] == [p["text"] for p in expected]
    idx = directory / "num.idx"
    idx.write_bytes(idx.read_bytes()[:-8])  # one column shorter than the others
    with pytest.raises(CorruptBagError, match="different numbers of records"):
        DatasetReader(directory, decoders)
