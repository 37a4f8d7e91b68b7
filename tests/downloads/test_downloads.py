"""Downloading files through the flight service and straight from buckets: atomic, safe, parallel."""

from __future__ import annotations

import os
import re

import pytest

import thresher
from tests.downloads.conftest import indexed
from tests.storage_endpoints import commit_files, free_port
from thresher import downloads
from thresher.connection import Connection
from thresher.core.storage import StorageNotFoundError, UnsafePathError, open_storage
from thresher.local_files import TEMPORARY_PREFIX, download_root

FILES = {"a.png": b"A" * 1000, "sub/b.png": b"B" * 10, "sub/deeper/c d.png": b"C" * (5 * 1024 * 1024 + 7)}


def tree(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (temporary files included, to catch leftovers)."""
    found = {}
    for base, _, names in os.walk(folder):
        for name in names:
            full = os.path.join(base, name)
            found[os.path.relpath(full, folder)] = open(full, "rb").read()
    return found


def test_download_files_through_flight_to_the_default_folder(local_source, namespace):
    ds = local_source(FILES)
    report = ds.all().download_files(progress=False)
    folder = report.folder
    assert sorted(report.downloaded) == sorted(FILES) and not report.skipped and not report.failed
    assert os.fspath(report) == os.fspath(folder)
    assert folder == download_root() / "datasets" / namespace / str(ds.id)
    assert tree(folder) == FILES


def test_existing_files_are_kept_unless_redownload(local_source, tmp_path):
    ds = local_source(FILES)
    result = ds.all()
    target = tmp_path / "out"
    result.download_files(target, progress=False)
    (target / "a.png").write_bytes(b"edited locally")
    kept = result.download_files(target, progress=False)
    assert (target / "a.png").read_bytes() == b"edited locally"
    assert kept.downloaded == [] and set(kept.skipped) == set(FILES)
    result.download_files(target, redownload=True, progress=False)
    assert tree(target) == FILES


def test_s3_source_keeps_its_prefix_through_flight_and_from_the_bucket(s3_source, tmp_path, s3_endpoint):
    ds = s3_source(FILES, prefix="raw/images")
    result = ds.all()
    through_flight = result.download_files(tmp_path / "flight", progress=False).folder
    assert through_flight == tmp_path / "flight" / "raw" / "images" and tree(through_flight) == FILES
    # Straight from the bucket: works even with the flight service unreachable.
    offline = Connection(ds.connection.metadata_address, f"127.0.0.1:{free_port()}", retry_timeout=0.1)
    thresher.enable_s3_bucket_downloader(s3_endpoint.s3_client())
    from thresher.datasource import Datasource

    direct = Datasource(offline, ds._shared.proto)
    folder = downloads.download_files(
        direct, result.paths, tmp_path / "direct", keep_source_prefix=False, progress=False
    ).folder
    assert folder == tmp_path / "direct" and tree(folder) == FILES


def test_datapoint_download_file(local_source, tmp_path):
    ds = local_source(FILES)
    point = ds.get_datapoint("sub/b.png")
    default = point.download_file()
    assert default.read_bytes() == FILES["sub/b.png"] and default.parts[-2:] == ("sub", "b.png")
    (tmp_path / "folder").mkdir()
    assert point.download_file(tmp_path / "folder") == tmp_path / "folder" / "b.png"
    assert point.download_file(tmp_path / "named.bin").read_bytes() == FILES["sub/b.png"]


def test_git_source_downloads_at_its_revision(conn, namespace, git_repo, tmp_path):
    first = commit_files(git_repo, {"data/x.txt": b"first", "data/y/z.txt": b"zed"})
    commit_files(git_repo, {"data/x.txt": b"second"})
    thresher.create_namespace(namespace, git_repo, connection=conn)
    at_first = indexed(conn, namespace, "data", ["x.txt", "y/z.txt"], revision=first)
    folder = at_first.all().download_files(tmp_path / "git", progress=False).folder
    assert folder == tmp_path / "git" / "data" and tree(folder) == {"x.txt": b"first", "y/z.txt": b"zed"}
    at_main = indexed(conn, namespace, "data", ["x.txt"], revision="main")
    assert at_main.get_datapoint("x.txt").download_file(tmp_path / "x.txt").read_bytes() == b"second"


def test_a_failing_download_leaves_no_file(local_source, tmp_path, monkeypatch):
    ds = local_source(FILES)
    result = ds.all()
    os.unlink(ds.source[len("file://") :] + "/sub/b.png")  # gone from storage since the scan
    with pytest.raises(StorageNotFoundError, match="sub/b.png"):
        result.download_files(tmp_path / "out", progress=False)
    assert tree(tmp_path / "out") == {k: v for k, v in FILES.items() if k != "sub/b.png"}

    def cut_off(path):
        yield b"the first half"
        raise ConnectionResetError(f"stream of {path} cut")

    monkeypatch.setattr(downloads, "reader_for", lambda datasource: cut_off)
    with pytest.raises(ConnectionResetError, match="cut") as caught:
        result.download_files(tmp_path / "cut", progress=False)
    assert "3 of 3 downloads" in "".join(caught.value.__notes__)
    assert tree(tmp_path / "cut") == {}  # folders may exist; no file, no temporary file
    with pytest.raises(ConnectionResetError):
        result[0].download_file(tmp_path / "one.png")
    assert not any(name.startswith(TEMPORARY_PREFIX) or name == "one.png" for name in os.listdir(tmp_path))


@pytest.mark.parametrize(
    "path", ["../escape.txt", "/etc/evil.txt", "ok/../../escape.txt", "C:/evil.txt", "c:evil.txt", "D:\\escape.txt"]
)
def test_paths_that_leave_the_target_are_skipped_and_the_rest_download(conn, namespace, tmp_path, path):
    folder = tmp_path / "src"
    folder.mkdir()
    ds = indexed(conn, namespace, folder.as_uri(), ["fine.txt", "also/fine.txt", path])
    (folder / "fine.txt").write_bytes(b"fine")
    (folder / "also").mkdir()
    (folder / "also" / "fine.txt").write_bytes(b"also fine")
    with pytest.warns(thresher.UnsafePathWarning, match=re.escape(repr(path))):
        report = ds.all().download_files(tmp_path / "out", progress=False)
    assert sorted(report.downloaded) == ["also/fine.txt", "fine.txt"] and not report.failed
    assert report.unsafe == [path] and list(report.skipped) == [path]
    assert tree(tmp_path / "out") == {"fine.txt": b"fine", os.path.join("also", "fine.txt"): b"also fine"}
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_a_single_unsafe_file_download_is_refused(conn, namespace, tmp_path):
    ds = indexed(conn, namespace, (tmp_path / "src").as_uri(), ["../escape.txt"])
    with pytest.raises(UnsafePathError, match="escape"):
        ds.get_datapoint("../escape.txt").download_file()


def test_symlinks_out_of_the_target_are_skipped(local_source, tmp_path):
    ds = local_source({"sub/b.png": b"b", "c.png": b"c"})
    target, outside = tmp_path / "out", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    os.symlink(outside, target / "sub")
    with pytest.warns(thresher.UnsafePathWarning, match="sub/b.png"):
        report = ds.all().download_files(target, progress=False)
    assert report.unsafe == ["sub/b.png"] and "symlink" in report.skipped["sub/b.png"]
    assert report.downloaded == ["c.png"] and (target / "c.png").read_bytes() == b"c"
    assert list(outside.iterdir()) == []


def test_failures_can_be_reported_instead_of_raised(local_source, tmp_path):
    ds = local_source(FILES)
    result = ds.all()
    os.unlink(ds.source[len("file://") :] + "/sub/b.png")
    report = result.download_files(tmp_path / "out", progress=False, raise_on_failure=False)
    assert list(report.failed) == ["sub/b.png"] and isinstance(report.failed["sub/b.png"], StorageNotFoundError)
    assert sorted(report.downloaded) == ["a.png", "sub/deeper/c d.png"]
    with pytest.raises(StorageNotFoundError) as caught:
        result.download_files(tmp_path / "again", progress=False)
    assert list(caught.value.download_report.failed) == ["sub/b.png"]


def test_missing_file_through_flight_is_named(conn, namespace, s3_bucket, tmp_path):
    ds = indexed(conn, namespace, f"s3://{s3_bucket}/nothing", ["never-written.bin"])
    with pytest.raises(StorageNotFoundError, match=f"s3://{s3_bucket}/nothing/never-written.bin does not exist"):
        ds.get_datapoint("never-written.bin").download_file(tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_bucket_through_flight_is_named(conn, namespace, s3_endpoint, tmp_path):
    ds = indexed(conn, namespace, "s3://no-bucket-for-this/p", ["a.bin"])
    with pytest.raises(StorageNotFoundError, match="S3 bucket 'no-bucket-for-this' does not exist"):
        ds.all().download_files(tmp_path, progress=False)


def test_ranged_file_ticket(local_source):
    from thresher.flight_bytes import file_chunks

    ds = local_source(FILES)
    data = FILES["sub/deeper/c d.png"]
    assert b"".join(file_chunks(ds.connection, ds.id, "sub/deeper/c d.png", 5, 100)) == data[5:105]
    assert b"".join(file_chunks(ds.connection, ds.id, "sub/deeper/c d.png", len(data) - 3)) == data[-3:]
    open_storage(ds.source).write("late.bin", b"written after the scan")  # a file need not be indexed to be read
    assert b"".join(file_chunks(ds.connection, ds.id, "late.bin")) == b"written after the scan"
