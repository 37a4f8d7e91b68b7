"""Datasets: writing, the reading API (masks, ranges, slices, caching, pickling) and its errors."""

import concurrent.futures
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from bag_samples import SCALAR_SPEC, SEQUENCE_SPEC, assert_same, datapoints

from thresher.bag import (
    DatasetExistsError,
    DatasetReader,
    DatasetWriter,
    EncodeError,
    IncompleteDatasetError,
    MaskError,
    SpecError,
    decoders,
    encoders,
)

SPEC = {**SCALAR_SPEC, **SEQUENCE_SPEC}
LOSSY = {"photo"}


@pytest.fixture(scope="module")
def points():
    return datapoints(12, seed=3)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, points):
    directory = tmp_path_factory.mktemp("ds") / "dataset"
    with DatasetWriter(directory, SPEC, encoders) as writer:
        for i, point in enumerate(points):
            assert writer.append(point) == i
    return directory


def lossless(point):
    return {k: v for k, v in point.items() if k not in LOSSY}


def test_files_and_spec(dataset):
    names = sorted(os.listdir(dataset))
    assert names == sorted(
        ["spec.json", "refs.bag", "refs.bag.crc"] + [f"{k}.bag{s}" for k in SPEC for s in ("", ".crc")]
    )
    assert list(json.loads((dataset / "spec.json").read_text())) == sorted(SPEC)


def test_reads_back_what_was_written(dataset, points):
    with DatasetReader(dataset, decoders) as reader:
        assert len(reader) == len(points) and reader.spec == dict(sorted(SPEC.items()))
        assert list(reader.spec) == sorted(SPEC)
        for i, point in enumerate(points):
            got = reader[i]
            assert list(got) == sorted(SPEC)
            assert_same({k: v for k, v in got.items() if k not in LOSSY}, lossless(point), f"datapoint {i}")
        assert_same(lossless(reader[-1]), lossless(points[-1]))
        with pytest.raises(IndexError):
            reader[len(points)]


def test_size_counts_every_bag(dataset):
    with DatasetReader(dataset, None) as reader:
        assert reader.size == sum(os.path.getsize(dataset / f"{k}.bag") for k in [*SPEC, "refs"])


def test_masks_and_ranges(dataset, points):
    with DatasetReader(dataset, decoders) as reader:
        i = 7  # texts has 3 items
        assert reader.available(i) == {
            k: range(len(points[i][k])) if k in SEQUENCE_SPEC else True for k in sorted(SPEC)
        }
        got = reader[i, {"num": True, "texts": range(1, 3), "nums": True, "arrs": False}]
        assert list(got) == ["num", "nums", "texts"]
        assert got["texts"] == points[i]["texts"][1:3] and got["nums"] == points[i]["nums"]
        assert reader[i, {"texts": range(2, 10)}] == {"texts": points[i]["texts"][2:]}
        assert reader[i, {"texts": range(5, 9)}] == {"texts": []}
        assert reader[i, {"texts": slice(1, None)}] == {"texts": points[i]["texts"][1:]}
        assert reader[i, ["num", "text"]] == {"num": points[i]["num"], "text": points[i]["text"]}
        assert reader[i, {}] == {}


@pytest.mark.parametrize(
    "mask",
    [
        {"unknown": True},
        {"num": range(0, 1)},
        {"texts": range(0, 4, 2)},
        {"texts": range(3, 1)},
        {"texts": "yes"},
        "num",
    ],
)
def test_bad_masks(dataset, mask):
    with DatasetReader(dataset, decoders) as reader:
        with pytest.raises(MaskError):
            reader[0, mask]


def test_slices(dataset, points):
    with DatasetReader(dataset, decoders) as reader:
        got = reader[2:6]
        assert list(got) == sorted(SPEC)
        for k in SPEC:
            assert len(got[k]) == 4
            if k not in LOSSY:
                assert_same(got[k], [p[k] for p in points[2:6]], k)
        assert reader[3:5, {"texts": range(0, 1), "num": True}] == {
            "num": [points[3]["num"], points[4]["num"]],
            "texts": [points[3]["texts"][:1], points[4]["texts"][:1]],
        }
        assert reader[5:5] == {k: [] for k in sorted(SPEC)}
        assert_same(reader[10:100]["num"], [p["num"] for p in points[10:]])
        assert_same(reader[range(0, 2)]["num"], [p["num"] for p in points[:2]])
        with pytest.raises(MaskError):
            reader[0:4:2]


@pytest.mark.parametrize(
    "options",
    [{"cache_index": False}, {"cache_keys": ("refs", "num", "texts")}, {"parallel": True}, {"verify": False}],
)
def test_options_read_the_same(dataset, options):
    with DatasetReader(dataset, decoders) as plain, DatasetReader(dataset, decoders, **options) as other:
        for i in range(len(plain)):
            assert_same(other[i], plain[i])
        assert_same(other[1:9], plain[1:9])
        assert_same(other[4, {"texts": range(1, 2), "num": True}], plain[4, {"texts": range(1, 2), "num": True}])


def test_bad_cache_keys_and_decoders(dataset):
    with pytest.raises(SpecError):
        DatasetReader(dataset, decoders, cache_keys=("nope",))
    with pytest.raises(SpecError):
        DatasetReader(dataset, {"bytes": bytes})


def test_raw_bytes_without_decoders(dataset, points):
    with DatasetReader(dataset, None) as reader:
        assert reader[0]["bin"] == points[0]["bin"] and reader[0]["num"] == encoders["int"](points[0]["num"])


def _read_in_worker(reader, i):
    return reader[i]["text"]


def test_reader_pickles_into_worker_processes(dataset, points):
    with DatasetReader(dataset, decoders, cache_keys=("refs",)) as reader:
        copy = pickle.loads(pickle.dumps(reader))
        assert_same(lossless(copy[3]), lossless(points[3]))
        copy.close()
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            assert list(pool.map(_read_in_worker, [reader] * 3, [0, 5, 11])) == [points[i]["text"] for i in (0, 5, 11)]


def test_writer_properties_and_empty_values(tmp_path):
    spec = {"text": "utf8", "blob": "bytes", "seq": "bytes[]"}
    with DatasetWriter(tmp_path / "d", spec, encoders) as writer:
        assert writer.spec == dict(sorted(spec.items())) and len(writer) == 0
        writer.append({"text": "", "blob": b"", "seq": []})
        writer.append({"text": "x", "blob": b"yy", "seq": iter([b"", b"z"])}, flush=True)
        assert len(writer) == 2
        size = writer.size
    with DatasetReader(tmp_path / "d", decoders) as reader:
        assert reader.size == size
        assert reader[0:2] == {"blob": [b"", b"yy"], "seq": [[], [b"", b"z"]], "text": ["", "x"]}


@pytest.mark.parametrize(
    "spec",
    [{}, {"Upper": "int"}, {"refs": "int"}, {"a/b": "int"}, {"1a": "int"}, {"a": "int[][]"}, {"a": ""}, {"a": "nope"}],
)
def test_writer_rejects_bad_specs(tmp_path, spec):
    with pytest.raises(SpecError):
        DatasetWriter(tmp_path / "d", spec, encoders)
    assert not (tmp_path / "d").exists()


def test_failed_append_changes_nothing(tmp_path):
    spec = {"a": "int", "b": "utf8[]", "c": "int"}
    with DatasetWriter(tmp_path / "d", spec, encoders) as writer:
        writer.append({"a": 1, "b": ["x"], "c": 2})
        with pytest.raises(EncodeError, match="'c'"):
            writer.append({"a": 3, "b": ["y", "z"], "c": "not an int"})
        with pytest.raises(EncodeError, match="'b'"):
            writer.append({"a": 3, "b": ["y", 5], "c": 4})
        with pytest.raises(SpecError):
            writer.append({"a": 3, "b": []})
        with pytest.raises(SpecError):
            writer.append([1, 2, 3])
        writer.append({"a": 5, "b": [], "c": 6})
    with DatasetReader(tmp_path / "d", decoders) as reader:
        assert len(reader) == 2 and reader[0:2] == {"a": [1, 5], "b": [["x"], []], "c": [2, 6]}


def test_values_must_be_bytes_without_encoders(tmp_path):
    with DatasetWriter(tmp_path / "d", {"a": "bytes"}, None) as writer:
        with pytest.raises(EncodeError):
            writer.append({"a": "text"})
        writer.append({"a": bytearray(b"ok")})
    with DatasetReader(tmp_path / "d", None) as reader:
        assert reader[0] == {"a": b"ok"}


def test_writer_needs_a_new_or_empty_folder(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(DatasetExistsError):
        DatasetWriter(tmp_path / "full", {"a": "int"}, encoders)
    (tmp_path / "empty").mkdir()
    DatasetWriter(tmp_path / "empty", {"a": "int"}, encoders).close()
    with DatasetReader(tmp_path / "empty", decoders) as reader:
        assert len(reader) == 0 and reader[0:3] == {"a": []}


def test_exception_in_with_block_discards_the_dataset(tmp_path):
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "d", {"a": "int"}, encoders) as writer:
            writer.append({"a": 1})
            raise RuntimeError("stop")
    assert not (tmp_path / "d").exists()


def test_unclosed_writer_is_not_a_dataset(tmp_path):
    writer = DatasetWriter(tmp_path / "d", {"a": "int"}, encoders)
    for i in range(10000):
        writer.append({"a": i})
    writer.flush()
    with pytest.raises(IncompleteDatasetError, match=r"d/spec.json is missing"):
        DatasetReader(tmp_path / "d", decoders)
    writer.close()
    with DatasetReader(tmp_path / "d", decoders) as reader:
        assert len(reader) == 10000


def test_killed_writer_leaves_no_dataset(tmp_path):
    script = textwrap.dedent(
        f"""
        import os
        from thresher.bag import DatasetWriter, encoders
        writer = DatasetWriter({str(tmp_path / "d")!r}, {{"a": "int", "b": "bytes"}}, encoders)
        for i in range(50000):
            writer.append({{"a": i, "b": bytes(100)}})
        writer.flush()
        os._exit(1)  # dies without closing anything
        """
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    assert any(name.endswith(".tmp") for name in os.listdir(tmp_path / "d"))
    with pytest.raises(IncompleteDatasetError, match="spec.json"):
        DatasetReader(tmp_path / "d", decoders)


def test_missing_bag_names_the_file(dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    os.remove(copy / "num.bag")
    with pytest.raises(IncompleteDatasetError, match="num.bag"):
        DatasetReader(copy, decoders)


def test_reader_sees_arrays_without_copies(dataset):
    with DatasetReader(dataset, decoders) as reader:
        array = reader[8]["arr"]
        assert isinstance(array, np.ndarray) and not array.flags.owndata
