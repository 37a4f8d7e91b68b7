import os
import threading

import pytest

from thresher.services.scanner.local_listing import PAGE_SIZE, LocalSource
from thresher.services.scanner.scan_sources import ScanCancelled, SourceError, local_path, open_source


def _write(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _files(source, cancel=None):
    """{path: (size, mtime_ns)} of everything the source lists."""
    files = {}
    for page in source.pages(cancel):
        assert page.etags is None
        files.update(zip(page.paths, zip(page.sizes, page.mtimes_ns)))
    return files


def _listed(root):
    return _files(LocalSource(str(root)))


def test_lists_every_file_with_its_size_and_mtime(tmp_path):
    _write(tmp_path / "a.txt", b"abc")
    _write(tmp_path / "sub" / "deeper" / "b.bin", b"12345")
    (tmp_path / "empty").mkdir()
    os.utime(tmp_path / "a.txt", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    entries = _listed(tmp_path)
    assert set(entries) == {"a.txt", "sub/deeper/b.bin"}
    assert entries["a.txt"] == (3, 1_700_000_000_123_456_789)
    assert entries["sub/deeper/b.bin"][0] == 5


def test_symlinks_inside_the_root_are_followed(tmp_path):
    _write(tmp_path / "real" / "f.txt", b"hello")
    os.symlink(tmp_path / "real" / "f.txt", tmp_path / "link.txt")
    os.symlink(tmp_path / "real", tmp_path / "linked_dir")
    entries = _listed(tmp_path)
    assert set(entries) == {"real/f.txt", "link.txt", "linked_dir/f.txt"}
    assert entries["link.txt"][0] == 5


def test_symlinks_out_of_the_root_broken_links_and_loops_are_passed_over_and_counted(tmp_path):
    outside = _write(tmp_path / "outside" / "secret.txt")
    root = tmp_path / "root"
    _write(root / "sub" / "kept.txt")
    os.symlink(outside, root / "escape.txt")
    os.symlink(tmp_path / "outside", root / "escape_dir")
    os.symlink(root / "missing", root / "broken")
    os.symlink(root, root / "sub" / "loop")
    source = LocalSource(str(root))
    assert set(_files(source)) == {"sub/kept.txt"}
    assert source.skipped == {"symlinks leading out of the root": 2, "broken symlinks": 1, "symlink loops": 1}


def test_links_between_sibling_folders_do_not_loop(tmp_path):
    _write(tmp_path / "a" / "fa")
    _write(tmp_path / "b" / "fb")
    os.symlink(tmp_path / "b", tmp_path / "a" / "to_b")
    os.symlink(tmp_path / "a", tmp_path / "b" / "to_a")
    assert set(_listed(tmp_path)) == {"a/fa", "b/fb", "a/to_b/fb", "b/to_a/fa"}


def test_special_files_are_passed_over(tmp_path):
    _write(tmp_path / "f")
    os.mkfifo(tmp_path / "pipe")
    source = LocalSource(str(tmp_path))
    assert list(_files(source)) == ["f"]
    assert source.skipped == {"special file": 1}


def test_missing_root_and_a_file_root_fail_with_the_reason(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        _listed(tmp_path / "nope")
    _write(tmp_path / "file")
    with pytest.raises(SourceError, match="is not a folder"):
        _listed(tmp_path / "file")


@pytest.mark.slow(reason="the folder's size is the point")
def test_large_folders_come_in_pages_and_cancel_stops_the_walk(tmp_path):
    for i in range(3):
        for j in range(PAGE_SIZE // 2 + 1):
            _write(tmp_path / f"d{i}" / f"{j}")
    pages = list(LocalSource(str(tmp_path)).pages())
    assert [len(page) for page in pages] == [PAGE_SIZE + 2, PAGE_SIZE // 2 + 1]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ScanCancelled):
        _files(LocalSource(str(tmp_path)), cancel)


def test_open_reads_relative_paths(tmp_path):
    _write(tmp_path / "sub" / "f", b"data")
    with LocalSource(str(tmp_path)).open("sub/f") as file:
        assert file.read() == b"data"


@pytest.mark.parametrize(
    "uri, path",
    [
        ("file:///data/images", "/data/images"),
        ("file://localhost/data/my%20images", "/data/my images"),
        ("/data/images", "/data/images"),
    ],
)
def test_local_paths_from_uris(uri, path):
    assert local_path(uri) == path


@pytest.mark.parametrize(
    "uri, message",
    [
        ("file://otherhost/data", "must name a local path"),
        ("data/images", "not an absolute path"),
        ("ftp://host/data", "ftp:// sources are not supported"),
    ],
)
def test_unusable_uris_are_rejected_with_the_reason(uri, message):
    with pytest.raises(SourceError, match=message):
        open_source(uri)
