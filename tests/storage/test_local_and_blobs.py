"""Local folders (paths never leave the root) and the content-addressed blob store on every backend."""

from __future__ import annotations

import hashlib
import os

import pytest

from thresher.core.storage import (
    BlobNotFoundError,
    InvalidStorageUriError,
    LocalStorage,
    StorageNotFoundError,
    open_storage,
    split_object_uri,
)
from thresher.core.storage.blobs import BLOB_STORE_ENV, BlobStore, blob_store_location, open_blob_store


def test_local_paths_never_leave_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (root / "in" / "ok.txt").write_bytes(b"ok")
    os.symlink(tmp_path / "secret.txt", root / "out-link.txt")
    os.symlink(root / "in" / "ok.txt", root / "in-link.txt")
    storage = LocalStorage(root)
    assert sorted(e.path for e in storage.list()) == ["in-link.txt", "in/ok.txt"]  # the link out is not listed
    assert storage.read("in-link.txt") == b"ok"
    for path in ("../secret.txt", "/etc/passwd", "in/../../secret.txt", "out-link.txt"):
        with pytest.raises(InvalidStorageUriError):
            storage.read(path)
    with pytest.raises(StorageNotFoundError, match="is a folder"):
        storage.read("in")
    with pytest.raises(StorageNotFoundError, match="does not exist"):
        list(LocalStorage(tmp_path / "missing").list())


def test_local_writes_leave_no_temporary_files(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.write("a/b.bin", b"whole")
    local = tmp_path / "src.bin"
    local.write_bytes(b"x")
    storage.write_file("a/c.bin", local)
    with pytest.raises(StorageNotFoundError, match="no-such-source.bin does not exist"):
        storage.write_file("a/d.bin", tmp_path / "no-such-source.bin")  # fails after the temporary file exists
    assert sorted(os.listdir(tmp_path / "a")) == ["b.bin", "c.bin"]
    assert storage.url("a/b.bin") == (tmp_path / "a" / "b.bin").as_uri()


def test_split_object_uri(tmp_path, s3_bucket):
    storage, path = split_object_uri(f"s3://{s3_bucket}/ds/spec.json")
    assert storage.uri == f"s3://{s3_bucket}/" and path == "ds/spec.json"
    storage.write(path, b"{}")
    assert open_storage(f"s3://{s3_bucket}/ds").read("spec.json") == b"{}"
    local, name = split_object_uri(str(tmp_path / "x" / "f.bin"))
    assert isinstance(local, LocalStorage) and local.root == str(tmp_path / "x") and name == "f.bin"


def test_blob_store_on_every_backend(storage):
    blobs = BlobStore(storage)
    digests = blobs.put_many([b"one", None, b"two", b"one"])
    one, two = hashlib.sha256(b"one").hexdigest(), hashlib.sha256(b"two").hexdigest()
    assert digests == [one, None, two, one]
    assert blobs.get(one) == b"one" and blobs.size(two) == 3 and blobs.exists(two)
    assert storage.exists(f"{one[:2]}/{one}")  # the layout the metadata service always used
    assert b"".join(blobs.stream(two, chunk_size=1)) == b"two"
    assert blobs.put(b"one") == one
    missing = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(BlobNotFoundError, match=f"no blob {missing} in blob store"):
        blobs.get(missing)
    with pytest.raises(BlobNotFoundError, match=missing):
        list(blobs.stream(missing))
    with pytest.raises(InvalidStorageUriError, match="not a blob hash"):
        blobs.get("../../etc/passwd")


def test_blob_store_location(monkeypatch, tmp_path, s3_bucket):
    monkeypatch.delenv(BLOB_STORE_ENV, raising=False)
    assert blob_store_location(str(tmp_path)) == str(tmp_path / "blobs")
    assert open_blob_store(home=str(tmp_path)).path("a" * 64) == str(tmp_path / "blobs" / "aa" / ("a" * 64))
    monkeypatch.setenv(BLOB_STORE_ENV, f"s3://{s3_bucket}/blobs")
    store = open_blob_store(home=str(tmp_path))
    digest = store.put(b"in the bucket")
    assert open_storage(f"s3://{s3_bucket}/blobs/{digest[:2]}").read(digest) == b"in the bucket"
