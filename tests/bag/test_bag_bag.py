"""Single bags: the seed layout (table versions 1 and 2), the split layout, checks and pickling."""

import os
import pickle
import struct

import granular
import pytest

from thresher.bag import BagError, BagReader, BagWriter, ChecksumError, CorruptBagError, DatasetExistsError
from thresher.core.bag.checksums import CRC32, XXH3

RECORDS = [b"alpha", b"b", b"", b"\x00" * 300, b"omega"]


def write(path, records, **options):
    with BagWriter(path, **options) as writer:
        for i, record in enumerate(records):
            assert writer.append(record) == i
    return path


def read_all(reader):
    return [reader[i] for i in range(len(reader))]


def test_roundtrip_and_sizes(tmp_path):
    path = write(tmp_path / "a.bag", RECORDS)
    with BagReader(path) as reader:
        assert len(reader) == len(RECORDS)
        assert read_all(reader) == RECORDS
        assert reader[-1] == b"omega"
        assert reader[1:4] == RECORDS[1:4]
        assert reader[3:100] == RECORDS[3:]
        assert reader[4:2] == []
        assert reader.size == os.path.getsize(path) == sum(map(len, RECORDS)) + 8 * len(RECORDS)
        with pytest.raises(IndexError):
            reader[len(RECORDS)]
        with pytest.raises(ValueError):
            reader[0:4:2]


def test_writer_size_and_len_match_the_file(tmp_path):
    writer = BagWriter(tmp_path / "a.bag")
    for record in RECORDS:
        writer.append(record)
    assert len(writer) == len(RECORDS)
    size = writer.size
    writer.close()
    assert size == os.path.getsize(tmp_path / "a.bag")


def test_table_versions_and_empty_first_record(tmp_path):
    v2 = write(tmp_path / "v2.bag", [b"ab", b"c"])
    assert open(v2, "rb").read()[3:11] == struct.pack("<Q", 2)  # version 2: ends only
    v1 = write(tmp_path / "v1.bag", [b"ab", b"c"], version=1)
    assert open(v1, "rb").read()[3:11] == bytes(8)  # version 1: a leading zero start
    first_empty = write(tmp_path / "e.bag", [b"", b"x"])  # would read as version 1: gets a v1 table
    for path, records in [(v2, [b"ab", b"c"]), (v1, [b"ab", b"c"]), (first_empty, [b"", b"x"])]:
        with BagReader(path) as reader:
            assert read_all(reader) == records
        theirs = granular.BagReader(path)
        assert [theirs[i] for i in range(len(theirs))] == records
        theirs.close()


def test_empty_bag(tmp_path):
    path = write(tmp_path / "empty.bag", [])
    assert os.path.getsize(path) == 0
    with BagReader(path) as reader:
        assert len(reader) == 0 and reader[0:5] == []


def test_reads_granular_bags_of_both_versions(tmp_path):
    for version in (1, 2):
        path = tmp_path / f"g{version}.bag"
        writer = granular.BagWriter(path, version=version)
        for record in [b"x", b"yy", b"zzz"]:
            writer.append(record)
        writer.close()
        with BagReader(path) as reader:
            assert read_all(reader) == [b"x", b"yy", b"zzz"] and reader.checksums is None
        empty = tmp_path / f"empty{version}.bag"
        granular.BagWriter(empty, version=version).close()
        with BagReader(empty) as reader:
            assert len(reader) == 0


@pytest.mark.parametrize(
    "options", [{}, {"cache_index": False}, {"cache_data": True}, {"cache_index": False, "verify": False}]
)
def test_read_options_agree(tmp_path, options):
    path = write(tmp_path / "a.bag", RECORDS)
    with BagReader(path, **options) as reader:
        assert read_all(reader) == RECORDS and reader[0:5] == RECORDS


def test_reads_bytes_in_memory(tmp_path):
    path = write(tmp_path / "a.bag", RECORDS)
    with BagReader(path.read_bytes()) as reader:
        assert read_all(reader) == RECORDS


def test_pickled_reader_reopens(tmp_path):
    path = write(tmp_path / "a.bag", RECORDS)
    for options in ({}, {"cache_index": False}, {"cache_data": True}):
        reader = BagReader(path, **options)
        copy = pickle.loads(pickle.dumps(reader))
        assert read_all(copy) == RECORDS and reader.copy()[0:5] == RECORDS
        reader.close()
        copy.close()
        with pytest.raises(BagError):
            copy[0]


def test_unclosed_writer_leaves_no_bag(tmp_path):
    writer = BagWriter(tmp_path / "a.bag")
    writer.append(b"x")
    writer.flush()
    assert not (tmp_path / "a.bag").exists()
    with pytest.raises(FileNotFoundError):
        BagReader(tmp_path / "a.bag")
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_writer_refuses_existing_bag_and_non_bytes(tmp_path):
    path = write(tmp_path / "a.bag", [b"x"])
    with pytest.raises(DatasetExistsError):
        BagWriter(path)
    with BagWriter(tmp_path / "b.bag") as writer:
        with pytest.raises(TypeError):
            writer.append("text")
        writer.append(memoryview(b"ok"))
    with BagReader(tmp_path / "b.bag") as reader:
        assert read_all(reader) == [b"ok"]


def test_checksum_algorithms(tmp_path):
    for algorithm in (XXH3, CRC32):
        path = write(tmp_path / f"{algorithm.decode()}.bag", RECORDS, checksum=algorithm)
        assert open(f"{path}.crc", "rb").read()[-4:] == algorithm
        with BagReader(path) as reader:
            assert read_all(reader) == RECORDS


def flip(path, offset):
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0x10
    open(path, "wb").write(bytes(data))


def test_flipped_record_byte_is_caught(tmp_path):
    path = write(tmp_path / "a.bag", RECORDS)
    flip(path, 1)
    with BagReader(path) as reader:
        with pytest.raises(ChecksumError, match="a.bag: record 0"):
            reader[0]
        assert reader[1] == b"b"
    with BagReader(path, verify=False) as reader:
        assert reader[0] == b"a|pha"


def test_flipped_table_is_caught(tmp_path):
    path = write(tmp_path / "a.bag", RECORDS)
    flip(path, os.path.getsize(path) - 20)
    with pytest.raises(CorruptBagError, match="a.bag"):
        BagReader(path)


def test_unclosed_granular_bag_is_corrupt(tmp_path):
    path = tmp_path / "g.bag"
    writer = granular.BagWriter(path)
    for record in [b"first record", b"second"]:
        writer.append(record)
    writer.file.flush()  # the records reach the file, the table never does
    with pytest.raises(CorruptBagError, match="g.bag: no valid index table"):
        BagReader(path)


def test_split_layout(tmp_path):
    bag, idx = tmp_path / "k.bag", tmp_path / "k.idx"
    bag.write_bytes(b"aaabbc" + b"tail not acknowledged")
    idx.write_bytes(struct.pack("<3Q", 3, 5, 6))
    for options in ({}, {"cache_index": False}):
        with BagReader(bag, **options) as reader:
            assert reader.split and read_all(reader) == [b"aaa", b"bb", b"c"] and reader[0:3] == [b"aaa", b"bb", b"c"]
            assert reader.size == 6 + 3 * 8
    idx.write_bytes(struct.pack("<3Q", 3, 5, 6) + b"\x01")
    with pytest.raises(CorruptBagError, match="k.idx"):
        BagReader(bag)
    idx.write_bytes(struct.pack("<3Q", 3, 5, 600))
    with pytest.raises(CorruptBagError, match="k.bag"):
        BagReader(bag)
    idx.write_bytes(struct.pack("<3Q", 3, 2, 6))
    with pytest.raises(CorruptBagError, match="out of order"):
        BagReader(bag)


def test_reads_without_memory_maps(tmp_path, monkeypatch):
    import mmap

    path = write(tmp_path / "a.bag", RECORDS)

    def refuse(*args, **kwargs):
        raise OSError(12, "no more maps")

    monkeypatch.setattr(mmap, "mmap", refuse)  # a process past vm.max_map_count
    with BagReader(path) as reader:
        assert read_all(reader) == RECORDS and reader[0:5] == RECORDS


def test_without_xxhash_writers_fall_back_and_readers_say_what_to_install(tmp_path, monkeypatch):
    from thresher.core.bag import checksums

    xxh3_bag = write(tmp_path / "x.bag", RECORDS)
    monkeypatch.setattr(checksums, "_xxh3", lambda: None)  # as if xxhash were not installed
    crc_bag = write(tmp_path / "c.bag", RECORDS)
    assert open(f"{crc_bag}.crc", "rb").read()[-4:] == CRC32
    with BagReader(crc_bag) as reader:
        assert read_all(reader) == RECORDS
    with pytest.raises(ImportError, match="pip install 'xxhash"):
        BagReader(xxh3_bag)
    with BagReader(xxh3_bag, verify=False) as reader:
        assert read_all(reader) == RECORDS
