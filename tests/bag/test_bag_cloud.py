"""Bag datasets on ``s3://`` and ``gs://``, against the local S3 (moto) and GCS (emulator) endpoints.

Every bucket storage is wrapped to log each call that costs a request, so the tests show what reads
cost: one request per record, one per range of records, each index table read once, at open.
"""

from __future__ import annotations

import multiprocessing
import operator
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from thresher.bag import (
    BagReader,
    BagWriter,
    CorruptBagError,
    DatasetExistsError,
    DatasetReader,
    DatasetWriter,
    IncompleteDatasetError,
    ResumeError,
    ShardedDatasetReader,
    ShardedDatasetWriter,
    decoders,
    encoders,
)
from thresher.core.bag import files
from thresher.core.bag.cloud import CloudStorage
from thresher.core.bag.staging import Staging
from thresher.core.storage import Entry, Storage, open_storage

SPEC = {"a": "int", "b": "utf8", "seq": "utf8[]"}
BAGS = ("refs.bag", "a.bag", "b.bag", "seq.bag")
SPLIT_FIXTURE = Path(__file__).parent / "fixtures" / "granular-0.24.2" / "dataset"


def point(i: int) -> dict:
    return {"a": i - 3, "b": f"b{i}" * (i % 4 + 1), "seq": [f"s{i}.{k}" for k in range(1 + i % 3)]}


class CountingStore(Storage):
    """A bucket's storage that logs every call costing a request: (kind, path, start, end)."""

    def __init__(self, inner: Storage, log: list):
        self.inner, self.log, self.uri = inner, log, inner.uri

    def pages(self, prefix: str = "", page_size: int = 1000) -> Iterator[list[Entry]]:
        self.log.append(("list", prefix, None, None))
        return self.inner.pages(prefix, page_size)

    def stat(self, path: str) -> Entry:
        self.log.append(("stat", path, None, None))
        return self.inner.stat(path)

    def read(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        self.log.append(("read", path, start, end))
        return self.inner.read(path, start, end)

    def write_file(self, path: str, local_path) -> None:
        self.log.append(("write", path, None, None))
        self.inner.write_file(path, local_path)

    def write(self, path: str, data: bytes) -> None:
        self.log.append(("write", path, None, None))
        self.inner.write(path, data)

    def delete(self, path: str) -> None:
        self.log.append(("delete", path, None, None))
        self.inner.delete(path)


@pytest.fixture
def log(monkeypatch) -> list:
    """The requests every s3:// and gs:// path costs in this test."""
    calls: list = []
    for scheme in files.CLOUD_SCHEMES:
        counting = CloudStorage(scheme, opener=lambda uri: CountingStore(open_storage(uri), calls))
        monkeypatch.setitem(files._storages, scheme, counting)
    return calls


@pytest.fixture
def staging_dir(tmp_path, monkeypatch) -> Path:
    """Where writers stage cloud datasets in this test (checked to be left empty)."""
    folder = tmp_path / "staging"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# GCS repeats S3's cases through the other client: the full suite runs it, the quick selection keeps S3.
@pytest.fixture(params=["s3", pytest.param("gs", marks=pytest.mark.slow)])
def root(request, log, staging_dir) -> str:
    """A folder URI in a new bucket on each endpoint."""
    bucket = request.getfixturevalue("s3_bucket" if request.param == "s3" else "gcs_bucket")
    return f"{request.param}://{bucket}/data"


@pytest.fixture
def s3_root(s3_bucket, log, staging_dir) -> str:
    return f"s3://{s3_bucket}/data"


def write(uri: str, count: int) -> None:
    with DatasetWriter(uri, SPEC, encoders) as writer:
        for i in range(count):
            writer.append(point(i))


def objects(uri: str) -> list[str]:
    """Object paths under a folder URI, relative to it (not counted)."""
    scheme, _, rest = uri.partition("://")
    bucket, _, prefix = rest.partition("/")
    return sorted(entry.path for entry in open_storage(f"{scheme}://{bucket}/{prefix}").list())


def table_reads(log: list, reader: DatasetReader) -> dict[str, int]:
    """Per bag: reads that reached into its index table (everything past its records)."""
    ends = {bag.path.split("/", 3)[3]: bag.table.data_end for bag in reader_bags(reader)}
    return {
        path: sum(1 for kind, p, _, end in log if kind == "read" and p == path and end > data_end)
        for path, data_end in ends.items()
    }


def reader_bags(reader: DatasetReader) -> list[BagReader]:
    return [reader._refs, *(field.bag for field in reader._fields)]


def test_dataset_round_trip_uploads_spec_last(root, log, staging_dir):
    write(root, 12)
    key = root.split("/", 3)[3]
    writes = [path for kind, path, *_ in log if kind == "write"]
    assert writes[-1] == f"{key}/spec.json"
    assert sorted(writes) == [f"{key}/{name}" for name in sorted([*BAGS, *(b + ".crc" for b in BAGS), "spec.json"])]
    assert objects(root) == sorted(name.removeprefix(f"{key}/") for name in writes)  # nothing else, no .tmp
    assert list(staging_dir.iterdir()) == []
    with DatasetReader(root, decoders, parallel=True) as reader:
        assert len(reader) == 12 and reader.spec == SPEC
        assert [reader[i] for i in range(12)] == [point(i) for i in range(12)]
        assert reader[3:7, {"seq": range(1, 3)}] == {"seq": [point(i)["seq"][1:3] for i in range(3, 7)]}


def test_one_request_per_record_and_per_range_index_read_once(root, log):
    write(root, 12)
    log.clear()
    with DatasetReader(root, decoders) as reader:
        # At open, per bag: its size, then its tail (where the table starts, and the whole table of a
        # bag this small: the index is read once), then its checksums.
        per_bag = [step for bag in BAGS for step in (("stat", bag), ("read", bag), ("read", bag + ".crc"))]
        assert [(kind, path.rsplit("/", 1)[1]) for kind, path, *_ in log] == [("read", "spec.json"), *per_bag]
        assert set(table_reads(log, reader).values()) == {1}
        log.clear()
        assert reader[7] == point(7)
        assert [(kind, path.rsplit("/", 1)[1]) for kind, path, *_ in log] == [("read", b) for b in BAGS]
        log.clear()
        assert reader[8, {"seq": range(1, 3)}] == {"seq": point(8)["seq"][1:3]}
        assert [path.rsplit("/", 1)[1] for _, path, *_ in log] == ["refs.bag", "seq.bag"]
        log.clear()
        assert reader[2:10] == {k: [point(i)[k] for i in range(2, 10)] for k in SPEC}
        assert len(log) == len(BAGS)  # one range of refs, one range per key
        log.clear()
        for i in range(len(reader)):
            reader[i]
        assert len(log) == 12 * len(BAGS) and set(table_reads(log, reader).values()) == {0}


def test_split_layout_reads_one_request_per_key(s3_root, log):
    store = open_storage(s3_root)
    for file in SPLIT_FIXTURE.iterdir():
        store.write_file(file.name, file)
    with DatasetReader(SPLIT_FIXTURE, None) as local, DatasetReader(s3_root, None) as remote:
        assert remote.split and len(remote) == len(local)
        log.clear()
        assert remote[2] == local[2]
        assert len(log) == len(local.spec)  # no refs: record i of every key


def test_pickled_reader_opens_storage_again_in_a_new_process(s3_root, log):
    write(s3_root, 6)
    with DatasetReader(s3_root, decoders) as reader:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.apply(operator.getitem, (reader, 4)) == point(4)
        # In this process too, with no storage registered yet: the copy keeps its cached index.
        state = pickle.dumps(reader)
    log.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "_storages", {})
        copy = pickle.loads(state)
        assert copy[5] == point(5)
        assert isinstance(files._storages["s3"], CloudStorage)
        copy.close()


def test_cached_index_is_shared_with_copies(s3_root, log):
    write(s3_root, 6)
    with DatasetReader(s3_root, decoders) as reader:
        log.clear()
        copy = reader.copy()
        assert copy[1] == point(1)
        # Reopening checks each bag's size (one stat); the index is not read again.
        assert sorted(kind for kind, *_ in log) == ["read"] * len(BAGS) + ["stat"] * len(BAGS)
        assert set(table_reads(log, copy).values()) == {0}
        copy.close()


def test_sharded_writer_uploads_each_shard_as_it_closes(root, log, staging_dir):
    with ShardedDatasetWriter(root, SPEC, encoders, shardlen=4) as writer:
        for i in range(3):
            writer.append(point(i))
        assert not [entry for entry in log if entry[0] == "write"]
        writer.append(point(3))
        with DatasetReader(f"{root}/000000", decoders) as shard:
            assert [shard[i] for i in range(4)] == [point(i) for i in range(4)]
        for i in range(4, 10):
            writer.append(point(i))
    assert list(staging_dir.iterdir()) == []
    shards = {}
    for kind, path, *_ in log:
        if kind == "write":
            shards.setdefault(path.split("/")[-2], []).append(path.rsplit("/", 1)[1])
    assert sorted(shards) == ["000000", "000001", "000002"]
    assert all(names[-1] == "spec.json" and len(names) == 2 * len(BAGS) + 1 for names in shards.values())
    with ShardedDatasetReader(root, decoders) as reader:
        assert reader.shards == 3 and [reader[i] for i in range(10)] == [point(i) for i in range(10)]


def test_interrupted_upload_resumes_after_the_complete_shards(root, log, monkeypatch):
    upload = Staging._upload

    def network_gone_before_the_third_spec(self, name):
        if name == "spec.json" and self.target.endswith("/000002"):
            raise ConnectionError("network gone")
        upload(self, name)

    monkeypatch.setattr(Staging, "_upload", network_gone_before_the_third_spec)
    with pytest.raises(ConnectionError), ShardedDatasetWriter(root, SPEC, encoders, shardlen=3) as writer:
        for i in range(10):
            writer.append(point(i))
    assert "000002/a.bag" in objects(root) and "000002/spec.json" not in objects(root)
    with pytest.raises(IncompleteDatasetError, match="000002/spec.json is missing"):
        ShardedDatasetReader(root, decoders)

    monkeypatch.setattr(Staging, "_upload", upload)
    log.clear()
    with ShardedDatasetWriter(root, SPEC, encoders, shardlen=3) as writer:
        assert len(writer) == 6 and writer.shards == 2
        assert sorted(path.rsplit("/", 1)[1] for kind, path, *_ in log if kind == "delete") == sorted(
            [*BAGS, *(b + ".crc" for b in BAGS)]
        )
        for i in range(6, 10):
            writer.append(point(i))
    with ShardedDatasetReader(root, decoders) as reader:
        assert reader.shards == 4 and [reader[i] for i in range(10)] == [point(i) for i in range(10)]


def test_resume_refuses_an_unfinished_shard_with_foreign_files(s3_root):
    store = open_storage(s3_root)
    store.write("000000/a.bag", b"")
    store.write("000000/notes.txt", b"mine")
    with pytest.raises(ResumeError, match="notes.txt"):
        ShardedDatasetWriter(s3_root, SPEC, encoders, shardlen=3)
    assert objects(s3_root) == ["000000/a.bag", "000000/notes.txt"]


def test_writers_refuse_existing_data_and_aborts_upload_nothing(s3_root, staging_dir):
    write(s3_root, 2)
    with pytest.raises(DatasetExistsError, match="not empty"):
        DatasetWriter(s3_root, SPEC, encoders)
    with pytest.raises(DatasetExistsError, match="holds an unsharded dataset"):
        ShardedDatasetWriter(s3_root, SPEC, encoders)
    with pytest.raises(DatasetExistsError, match="already exists"):
        BagWriter(f"{s3_root}/a.bag")
    with pytest.raises(ValueError), DatasetWriter(f"{s3_root}-aborted", SPEC, encoders) as writer:
        writer.append(point(0))
        raise ValueError("the caller gave up")
    assert objects(f"{s3_root}-aborted") == [] and list(staging_dir.iterdir()) == []


def test_missing_datasets_and_buckets(s3_root, staging_dir):
    with pytest.raises(IncompleteDatasetError, match="spec.json is missing"):
        DatasetReader(f"{s3_root}/nothing", decoders)
    with pytest.raises(IncompleteDatasetError, match="no shard folders"):
        ShardedDatasetReader(f"{s3_root}/nothing", decoders)
    with pytest.raises(FileNotFoundError, match="bucket 'no-such-bucket-here' does not exist"):
        DatasetWriter("s3://no-such-bucket-here/ds", SPEC, encoders)
    with pytest.raises(FileNotFoundError):
        BagReader("s3://no-such-bucket-here/a.bag")
    assert list(staging_dir.iterdir()) == []


def test_bag_writer_and_reader(root, log, staging_dir):
    records = [b"", b"x" * 5, b"yz"]  # an empty first record: the version-1 table
    with BagWriter(f"{root}/one.bag") as bag:
        for record in records:
            bag.append(record)
    assert [path.rsplit("/", 1)[1] for kind, path, *_ in log if kind == "write"] == ["one.bag.crc", "one.bag"]
    assert list(staging_dir.iterdir()) == []
    with BagReader(f"{root}/one.bag") as reader, BagReader(f"{root}/one.bag", cache_data=True) as cached:
        assert reader.checksums is not None and reader[:] == cached[:] == records
        log.clear()
        assert reader[1] == records[1] and cached[2] == records[2] and len(log) == 1


def test_an_object_replaced_after_open_is_reported(s3_root):
    write(s3_root, 6)
    with DatasetReader(s3_root, decoders) as reader:
        open_storage(s3_root).write("b.bag", b"abc")
        with pytest.raises(CorruptBagError, match="b.bag: object ends before byte .* replaced or truncated"):
            reader[5]


def test_s3_requests_on_the_wire_match_the_storage_calls(s3_root, log):
    write(s3_root, 8)
    with DatasetReader(s3_root, decoders) as reader:
        client = files._storages["s3"].locate(s3_root)[0].inner.client
        sent: list = []

        def record(request, **_):
            sent.append((request.method, request.headers.get("Range")))

        client.meta.events.register("before-send.s3", record)
        try:
            log.clear()
            reader[3]
            reader[2:6, {"b": True, "seq": True}]
        finally:
            client.meta.events.unregister("before-send.s3", record)
    assert len(sent) == len(log) == len(BAGS) + 3
    assert all(method == "GET" and ranged for method, ranged in sent)
