"""What every writable backend promises: listing, ranged reads, streaming, whole-object writes, errors."""

from __future__ import annotations

import io

import pytest

from thresher.core.errors import NotFoundError
from thresher.core.storage import InvalidStorageUriError, StorageNotFoundError
from thresher.core.storage.base import RangedReader


def fill(storage, count: int, prefix: str = "d/") -> dict[str, bytes]:
    files = {f"{prefix}{i:03}.bin": bytes([i % 251]) * (i + 1) for i in range(count)}
    for path, data in files.items():
        storage.write(path, data)
    return files


def test_listing_is_paginated_and_complete(storage):
    files = fill(storage, 23)
    storage.write("other/x.bin", b"x")
    pages = list(storage.pages("d/", page_size=5))
    listed = {entry.path: entry for page in pages for entry in page}
    assert set(listed) == set(files)
    assert all(listed[path].size == len(data) for path, data in files.items())
    assert all(entry.mtime_ns > 0 for entry in listed.values())
    if not storage.uri.startswith("gs://"):  # gcp-storage-emulator ignores page sizes
        assert all(len(page) <= 5 for page in pages)
    if storage.uri.startswith("s3://"):
        assert len(pages) == 5  # one request per page
    assert {entry.path for entry in storage.list()} == set(files) | {"other/x.bin"}


def test_listing_by_string_prefix_and_empty_prefix(storage):
    fill(storage, 3, "images/")
    storage.write("imagery.txt", b"i")
    assert sorted(e.path for e in storage.list("image")) == [
        "imagery.txt",
        "images/000.bin",
        "images/001.bin",
        "images/002.bin",
    ]
    assert list(storage.list("nothing/here")) == []


def test_ranged_reads(storage):
    data = bytes(range(256)) * 40
    storage.write("blob.bin", data)
    assert storage.read("blob.bin") == data
    assert storage.read("blob.bin", 10, 20) == data[10:20]
    assert storage.read("blob.bin", 10_000) == data[10_000:]
    assert storage.read("blob.bin", 5, 5) == b""
    assert storage.read("blob.bin", len(data) + 5) == b""  # past the end reads short, as slicing does
    assert storage.read("blob.bin", len(data) - 3, len(data) + 100) == data[-3:]
    with pytest.raises(InvalidStorageUriError, match="byte range"):
        storage.read("blob.bin", 7, 3)


def test_streaming_and_file_objects(storage):
    data = bytes(range(256)) * 100
    storage.write("big.bin", data)
    chunks = list(storage.stream("big.bin", 100, 9_000, chunk_size=1000))
    assert b"".join(chunks) == data[100:9_000]
    with storage.open("big.bin", buffer_size=4096) as handle:
        handle.seek(300)
        assert handle.read(10) == data[300:310]
        handle.seek(-5, io.SEEK_END)
        assert handle.read() == data[-5:]
    head = io.BufferedReader(RangedReader(storage, "big.bin", limit=1000), buffer_size=256)  # size unknown
    assert head.read(10) == data[:10] and head.read() == data[10:1000]
    with pytest.raises(io.UnsupportedOperation, match="size is not known"):
        head.seek(-1, io.SEEK_END)


def test_open_range_fails_before_streaming(storage):
    storage.write("r.bin", b"0123456789")
    entry, chunks = storage.open_range("r.bin", 2, 5)
    assert (entry.path, entry.size) == ("r.bin", 10) and b"".join(chunks) == b"234"
    entry, chunks = storage.open_range("r.bin", 20)
    assert entry.size == 10 and b"".join(chunks) == b""
    with pytest.raises(StorageNotFoundError, match="missing.bin"):
        storage.open_range("missing.bin")


def test_stat_exists_overwrite_delete(storage, tmp_path):
    storage.write("a/b.txt", b"one")
    first = storage.stat("a/b.txt")
    assert (first.path, first.size) == ("a/b.txt", 3) and storage.exists("a/b.txt")
    storage.write("a/b.txt", b"two!")
    second = storage.stat("a/b.txt")
    assert second.size == 4 and storage.read("a/b.txt") == b"two!"
    if first.etag is not None:
        assert second.etag != first.etag
    local = tmp_path / "upload.bin"
    local.write_bytes(b"u" * 1000)
    storage.write_file("up/load.bin", local)
    assert storage.read("up/load.bin") == b"u" * 1000
    storage.delete("a/b.txt")
    storage.delete("a/b.txt")  # deleting what is gone is no error
    assert not storage.exists("a/b.txt")


def test_missing_objects_are_named(storage):
    for call in (
        lambda: storage.read("no/such.bin"),
        lambda: storage.stat("no/such.bin"),
        lambda: list(storage.stream("no/such.bin")),
    ):
        with pytest.raises(StorageNotFoundError, match="no/such.bin") as caught:
            call()
        assert isinstance(caught.value, NotFoundError) and isinstance(caught.value, FileNotFoundError)
    assert not storage.exists("no/such.bin")
