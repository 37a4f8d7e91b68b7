"""Sharded datasets: folders, k-th shard writers and readers, resuming an interrupted write."""

import os
import pickle
import shutil
import subprocess
import sys
import textwrap

import granular
import pytest

from thresher.bag import (
    CorruptBagError,
    DatasetReader,
    DatasetWriter,
    IncompleteDatasetError,
    MaskError,
    ResumeError,
    ShardedDatasetReader,
    ShardedDatasetWriter,
    decoders,
    encoders,
)

SPEC = {"i": "int", "seq": "utf8[]"}


def point(i):
    return {"i": i, "seq": [str(i)] * (i % 3)}


def write(directory, count, **options):
    with ShardedDatasetWriter(directory, SPEC, encoders, **options) as writer:
        for i in range(count):
            assert writer.append(point(i)) == i
        return writer.shards


def test_shards_and_reading_across_them(tmp_path):
    assert write(tmp_path / "d", 10, shardlen=4) == 3
    assert sorted(os.listdir(tmp_path / "d")) == ["000000", "000001", "000002"]
    with ShardedDatasetReader(tmp_path / "d", decoders) as reader:
        assert len(reader) == 10 and reader.shards == 3 and reader.spec == SPEC
        assert [reader[i] for i in range(10)] == [point(i) for i in range(10)]
        assert reader[-1] == point(9)
        assert reader[2:9] == {"i": list(range(2, 9)), "seq": [point(i)["seq"] for i in range(2, 9)]}
        assert reader[3:3] == {"i": [], "seq": []}
        assert reader[5, {"seq": range(1, 2)}] == {"seq": ["5"]}
        assert reader[4:6, {"i": True}] == {"i": [4, 5]}
        assert reader.available(5) == {"i": True, "seq": range(2)}
        assert reader.size == sum(DatasetReader(tmp_path / "d" / f"00000{k}", None).size for k in range(3))
        with pytest.raises(IndexError):
            reader[10]
        copy = pickle.loads(pickle.dumps(reader))
        assert copy[9] == point(9) and reader.copy()[0] == point(0)


def test_unbounded_single_shard(tmp_path):
    assert write(tmp_path / "d", 5) == 1
    with ShardedDatasetReader(tmp_path / "d", decoders) as reader:
        assert reader.shards == 1 and len(reader) == 5


def test_writers_and_readers_take_every_kth_shard(tmp_path):
    # Two writers interleave shards 0, 2, 4 and 1, 3.
    write(tmp_path / "d", 6, shardlen=2, shardstart=0, shardstep=2)
    with ShardedDatasetWriter(tmp_path / "d", SPEC, encoders, shardlen=2, shardstart=1, shardstep=2) as writer:
        for i in range(100, 104):
            writer.append(point(i))
    assert sorted(os.listdir(tmp_path / "d")) == [f"00000{k}" for k in range(5)]
    with ShardedDatasetReader(tmp_path / "d", decoders) as reader:
        assert reader[0:10]["i"] == [0, 1, 100, 101, 2, 3, 102, 103, 4, 5]
    with ShardedDatasetReader(tmp_path / "d", decoders, shardstart=1, shardstep=2) as reader:
        assert reader.shards == 2 and reader[0:4]["i"] == [100, 101, 102, 103]
    with pytest.raises(MaskError):
        ShardedDatasetReader(tmp_path / "d", decoders, shardstart=9)
    with pytest.raises(ValueError):
        ShardedDatasetWriter(tmp_path / "e", SPEC, encoders, shardstart=1, shardstep=2)


def test_writer_with_nothing_leaves_an_empty_readable_dataset(tmp_path):
    ShardedDatasetWriter(tmp_path / "d", SPEC, encoders, shardlen=3).close()
    with ShardedDatasetReader(tmp_path / "d", decoders) as reader:
        assert len(reader) == 0 and reader.spec == SPEC and reader[0:5] == {"i": [], "seq": []}


def test_incomplete_or_missing_shards_name_the_place(tmp_path):
    write(tmp_path / "d", 9, shardlen=3)
    os.remove(tmp_path / "d" / "000001" / "spec.json")
    with pytest.raises(IncompleteDatasetError, match="000001/spec.json"):
        ShardedDatasetReader(tmp_path / "d", decoders)
    shutil.rmtree(tmp_path / "d" / "000001")
    with pytest.raises(IncompleteDatasetError, match="000001 is missing"):
        ShardedDatasetReader(tmp_path / "d", decoders)
    with pytest.raises(IncompleteDatasetError):
        ShardedDatasetReader(tmp_path / "nothing", decoders)


def test_interrupted_write_resumes_after_last_complete_shard(tmp_path):
    script = textwrap.dedent(
        f"""
        import os
        from thresher.bag import ShardedDatasetWriter, encoders
        writer = ShardedDatasetWriter({str(tmp_path / "d")!r}, {SPEC!r}, encoders, shardlen=4)
        for i in range(10):
            writer.append({{"i": i, "seq": [str(i)] * (i % 3)}})
        writer.flush()
        os._exit(1)  # killed in the middle of the third shard
        """
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    with pytest.raises(IncompleteDatasetError, match="000002"):
        ShardedDatasetReader(tmp_path / "d", decoders)
    with ShardedDatasetWriter(tmp_path / "d", SPEC, encoders, shardlen=4) as writer:
        assert len(writer) == 8 and writer.shards == 2
        for i in range(len(writer), 13):
            writer.append(point(i))
    with ShardedDatasetReader(tmp_path / "d", decoders) as reader:
        assert reader.shards == 4 and [reader[i] for i in range(13)] == [point(i) for i in range(13)]


def test_exception_keeps_complete_shards(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardedDatasetWriter(tmp_path / "d", SPEC, encoders, shardlen=2) as writer:
            for i in range(5):
                writer.append(point(i))
            raise RuntimeError("stop")
    assert sorted(os.listdir(tmp_path / "d")) == ["000000", "000001"]
    with ShardedDatasetWriter(tmp_path / "d", SPEC, encoders, shardlen=2) as writer:
        assert len(writer) == 4


def test_resume_refuses_other_spec_gaps_and_foreign_files(tmp_path):
    write(tmp_path / "d", 4, shardlen=2)
    with pytest.raises(ResumeError, match="spec"):
        ShardedDatasetWriter(tmp_path / "d", {"i": "int"}, encoders, shardlen=2)
    shutil.copytree(tmp_path / "d" / "000001", tmp_path / "d" / "000003")
    with pytest.raises(ResumeError, match="000003"):
        ShardedDatasetWriter(tmp_path / "d", SPEC, encoders, shardlen=2)
    shutil.rmtree(tmp_path / "d" / "000003")
    (tmp_path / "d" / "000002").mkdir()
    (tmp_path / "d" / "000002" / "notes.txt").write_text("mine")
    with pytest.raises(ResumeError, match="notes.txt"):
        ShardedDatasetWriter(tmp_path / "d", SPEC, encoders, shardlen=2)


def test_granular_reads_our_shards_and_we_read_theirs(tmp_path):
    write(tmp_path / "ours", 7, shardlen=3)
    theirs = granular.ShardedDatasetReader(tmp_path / "ours", granular.decoders)
    assert len(theirs) == 7 and [theirs[i] for i in range(7)] == [point(i) for i in range(7)]
    theirs.close()
    writer = granular.ShardedDatasetWriter(tmp_path / "theirs", SPEC, granular.encoders, shardlen=3)
    for i in range(7):
        writer.append(point(i))
    writer.close()
    with ShardedDatasetReader(tmp_path / "theirs", decoders) as reader:
        assert reader.shards == 3 and [reader[i] for i in range(7)] == [point(i) for i in range(7)]


def test_parallel_reader_opens_and_reads_the_same(tmp_path):
    write(tmp_path / "d", 10, shardlen=3)
    with ShardedDatasetReader(tmp_path / "d", decoders, parallel=True, cache_keys=("refs",)) as reader:
        assert reader.shards == 4 and [reader[i] for i in range(10)] == [point(i) for i in range(10)]
    (tmp_path / "d" / "000002" / "spec.json").unlink()
    with pytest.raises(IncompleteDatasetError, match="000002"):
        ShardedDatasetReader(tmp_path / "d", decoders, parallel=True)


def test_shards_with_different_specs_are_not_one_dataset(tmp_path):
    write(tmp_path / "d", 4, shardlen=2)
    shutil.rmtree(tmp_path / "d" / "000001")
    with DatasetWriter(tmp_path / "d" / "000001", {"other": "int"}, encoders) as writer:
        writer.append({"other": 1})
    with pytest.raises(CorruptBagError, match="000001"):
        ShardedDatasetReader(tmp_path / "d", decoders)
