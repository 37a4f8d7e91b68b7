"""Reading through a registered storage: the hook for s3:// and gs://, and the reads it sees.

A storage that serves ``count://`` from a local folder like a cloud store would (no memory
mapping, one ranged request per ``read``) shows how many requests each kind of access costs.
"""

import os
import struct

import pytest

from thresher.bag import (
    BagReader,
    BagWriter,
    DatasetReader,
    DatasetWriter,
    ShardedDatasetReader,
    ShardedDatasetWriter,
    UnsupportedLocationError,
    decoders,
    encoders,
    register_storage,
)
from thresher.core.bag import files, tables

SPEC = {"a": "int", "b": "utf8", "seq": "utf8[]"}


def point(i):
    return {"a": i, "b": f"b{i}", "seq": [f"s{i}.{k}" for k in range(i % 5)]}


class RemoteFile:
    """A file served only by ranged requests, each one logged."""

    def __init__(self, local, name, log):
        self._local, self.name, self.size, self.view, self._log = local, name, local.size, None, log

    def read(self, start, end):
        self._log.append((self.name, start, end))
        return self._local.read(start, end)

    def close(self):
        self._local.close()


class CountingStorage:
    def __init__(self, root):
        self.root, self.log = str(root), []

    def _local(self, path):
        return os.path.join(self.root, path.removeprefix("count://"))

    def open(self, path):
        return RemoteFile(files.LocalFile(self._local(path)), path, self.log)

    def read_whole(self, path):
        self.log.append((path, 0, None))
        with open(self._local(path), "rb") as f:
            return f.read()

    def exists(self, path):
        return os.path.exists(self._local(path))

    def listdir(self, path):
        return os.listdir(self._local(path))


@pytest.fixture()
def storage(tmp_path, monkeypatch):
    storage = CountingStorage(tmp_path)
    monkeypatch.setitem(files._storages, "count", storage)
    with DatasetWriter(tmp_path / "ds", SPEC, encoders) as writer:
        for i in range(20):
            writer.append(point(i))
    return storage


def test_register_storage_serves_a_scheme(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_storages", {})
    storage = CountingStorage(tmp_path)
    register_storage("count", storage)
    assert files.storage_for("count://x") is storage


def test_one_request_per_record_and_per_range(storage):
    with DatasetReader("count://ds", decoders) as reader:
        storage.log.clear()
        assert reader[7] == point(7)
        assert len(storage.log) == 1 + len(SPEC)  # refs, then one per key: the index is cached
        storage.log.clear()
        assert reader[9, {"seq": range(1, 4)}] == {"seq": point(9)["seq"][1:4]}
        assert [name for name, *_ in storage.log] == ["count://ds/refs.bag", "count://ds/seq.bag"]
        storage.log.clear()
        assert reader[2:12, {"a": True, "b": True}] == {"a": list(range(2, 12)), "b": [f"b{i}" for i in range(2, 12)]}
        assert len(storage.log) == 3  # one range of refs, one range per key
        storage.log.clear()
        assert reader.available(4) == {"a": True, "b": True, "seq": range(4)}
        assert len(storage.log) == 1


def table_start(path):
    with open(path, "rb") as f:
        f.seek(-8, os.SEEK_END)
        return struct.unpack("<Q", f.read())[0]


def test_index_read_once_at_open(storage):
    with DatasetReader("count://ds", decoders) as reader:
        opened = len(storage.log)
        for i in range(len(reader)):
            reader[i]
        into_tables = [(name, end) for name, _, end in storage.log[opened:] if end > table_start(storage._local(name))]
        empty = sum(1 for i in range(len(reader)) if not point(i)["seq"])  # an empty range costs no request
        assert len(storage.log) - opened == len(reader) * (1 + len(SPEC)) - empty and not into_tables
        copy = reader.copy()  # a worker's copy keeps the cached index
        storage.log.clear()
        assert copy[3] == point(3) and len(storage.log) == 1 + len(SPEC)
        copy.close()


def test_a_bag_is_opened_with_one_read_of_its_tail(storage, tmp_path):
    with BagWriter(tmp_path / "small.bag") as small, BagWriter(tmp_path / "big.bag") as big:
        small.extend([b"x"] * 10)
        big.extend([b"x"] * (tables.TAIL // 8 + 1))  # a table longer than the tail
    expected = {("small", True): 1, ("small", False): 1, ("big", True): 2, ("big", False): 2}
    for (name, cache_index), reads in expected.items():
        storage.log.clear()
        with BagReader(f"count://{name}.bag", cache_index=cache_index, split=False, verify=False) as bag:
            assert len(storage.log) == reads and bag[3] == b"x" and len(bag) == (10 if name == "small" else 8193)


def test_without_cached_index_two_requests_per_record(storage):
    with DatasetReader("count://ds", decoders, cache_index=False) as reader:
        storage.log.clear()
        assert reader[5, {"a": True}] == {"a": 5}
        assert len(storage.log) == 4  # refs index + refs record, a's index + a's record


def test_cached_keys_need_no_requests(storage):
    with DatasetReader("count://ds", decoders, cache_keys=("refs", "a", "b", "seq")) as reader:
        storage.log.clear()
        assert [reader[i] for i in range(20)] == [point(i) for i in range(20)]
        assert storage.log == []


def test_sharded_through_storage(storage, tmp_path):
    with ShardedDatasetWriter(tmp_path / "sharded", SPEC, encoders, shardlen=6) as writer:
        for i in range(15):
            writer.append(point(i))
    with ShardedDatasetReader("count://sharded", decoders) as reader:
        assert reader.shards == 3 and [reader[i] for i in range(15)] == [point(i) for i in range(15)]


def test_unknown_schemes_and_read_only_storages_are_refused(storage, tmp_path):
    with pytest.raises(UnsupportedLocationError, match="nope://"):
        DatasetReader("nope://bucket/ds", decoders)
    with pytest.raises(UnsupportedLocationError, match="does not take writes"):
        DatasetWriter("count://new", SPEC, encoders)  # the counting storage only reads
    with pytest.raises(UnsupportedLocationError):
        ShardedDatasetWriter("nope://bucket/ds", SPEC, encoders)
    with DatasetWriter(f"file://{tmp_path}/local", SPEC, encoders) as writer:
        writer.append(point(1))
    with DatasetReader(f"file://{tmp_path}/local", decoders) as reader:
        assert reader[0] == point(1)
