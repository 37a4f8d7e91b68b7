"""Git sources: files listed from the tree at a revision and read from the objects, locally and by URL."""

from __future__ import annotations

import os

import pytest

from tests.storage_endpoints import commit_files, git
from thresher.core.storage import (
    GitStorage,
    InvalidStorageUriError,
    ReadOnlyStorageError,
    StorageNotFoundError,
    UnknownRevisionError,
    for_datasource,
    git_uri,
    open_storage,
    parse_git_uri,
)


@pytest.fixture
def history(git_repo):
    """A repository with two commits on main and a tag at the first."""
    first = commit_files(
        git_repo, {"data/a.txt": b"alpha", "data/sub/b.txt": b"bee", "data/link-target.txt": b"t", "README": b"readme"}
    )
    os.symlink("link-target.txt", os.path.join(git_repo, "data", "link.txt"))
    git(git_repo, "tag", "v1")
    second = commit_files(git_repo, {"data/a.txt": b"alpha, changed", "data/new.txt": b"new", "data/sub/b.txt": None})
    return git_repo, first, second


def test_lists_the_tree_at_each_revision(history):
    repo, first, second = history
    at_first = GitStorage(repo, "v1", "data")
    assert sorted(e.path for e in at_first.list()) == ["a.txt", "link-target.txt", "sub/b.txt"]  # no symlink
    at_main = GitStorage(repo, "main", "data")
    entries = {e.path: e for e in at_main.list()}
    assert sorted(entries) == ["a.txt", "link-target.txt", "new.txt"]
    assert entries["a.txt"].size == len(b"alpha, changed")
    assert entries["a.txt"].etag == git(repo, "rev-parse", "main:data/a.txt").strip()  # the blob id
    assert entries["link-target.txt"].etag == {e.path: e for e in at_first.list()}["link-target.txt"].etag
    assert at_main.commit == second and at_first.commit == first
    assert [e.path for e in at_first.list("sub/")] == ["sub/b.txt"]
    assert [e.path for e in at_main.list("a")] == ["a.txt"]


def test_pages_and_the_whole_repository(history):
    repo, _, second = history
    storage = GitStorage(repo, second)
    pages = list(storage.pages(page_size=2))
    assert [len(p) for p in pages] == [2, 2] and {e.path for p in pages for e in p} == {
        "README",
        "data/a.txt",
        "data/link-target.txt",
        "data/new.txt",
    }


def test_reads_bytes_and_ranges_at_the_revision(history):
    repo, first, _ = history
    old, new = GitStorage(repo, first, "data"), GitStorage(repo, "main", "data")
    assert old.read("a.txt") == b"alpha" and new.read("a.txt") == b"alpha, changed"
    assert new.read("a.txt", 7) == b"changed" and new.read("a.txt", 0, 5) == b"alpha"
    assert b"".join(new.stream("a.txt", 2, 9, chunk_size=3)) == b"pha, ch"
    with new.open("a.txt") as handle:
        handle.seek(7)
        assert handle.read() == b"changed"
    assert new.stat("new.txt").size == 3 and not new.exists("sub/b.txt") and old.exists("sub/b.txt")


def test_unknown_revision_and_missing_paths_are_named(history):
    repo, _, _ = history
    with pytest.raises(UnknownRevisionError, match="has no revision 'no-such-branch'"):
        GitStorage(repo, "no-such-branch")
    with pytest.raises(UnknownRevisionError, match="'--upload-pack=x' is not a revision"):
        GitStorage(repo, "--upload-pack=x")
    with pytest.raises(StorageNotFoundError, match="no folder 'nope' .* at revision 'main'"):
        GitStorage(repo, "main", "nope")
    storage = GitStorage(repo, "main", "data")
    with pytest.raises(StorageNotFoundError, match="no file 'gone.txt'"):
        storage.read("gone.txt")
    with pytest.raises(StorageNotFoundError, match="is a tree, not a file"):
        GitStorage(repo, "v1", "data").stat("sub")
    with pytest.raises(InvalidStorageUriError, match="leaves the storage root"):
        storage.read("../README")
    with pytest.raises(StorageNotFoundError, match="does not exist"):
        GitStorage(str(repo) + "-missing", "main")


def test_is_read_only(history):
    storage = GitStorage(history[0], "main")
    with pytest.raises(ReadOnlyStorageError, match="read-only"):
        storage.write("x", b"y")


def test_moving_branch_is_seen_by_the_next_storage(history):
    repo, _, second = history
    before = GitStorage(repo, "main", "data")
    third = commit_files(repo, {"data/later.txt": b"later"})
    assert before.commit == second and "later.txt" not in {e.path for e in before.list()}
    after = GitStorage(repo, "main", "data")
    assert after.commit == third and after.read("later.txt") == b"later"


def test_repository_by_url_is_mirrored_and_refreshed(history, tmp_path, monkeypatch):
    repo, _, second = history
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "home"))
    bare = tmp_path / "served.git"
    git(tmp_path, "clone", "-q", "--bare", repo, str(bare))
    url = f"file://{bare}"
    storage = GitStorage(url, "main", "data")
    assert storage.repository.remote and storage.repository.path.startswith(str(tmp_path / "home" / "git"))
    assert storage.commit == second and storage.read("a.txt") == b"alpha, changed"
    third = commit_files(repo, {"data/pushed.txt": b"pushed"})
    git(repo, "push", "-q", str(bare), "main")
    assert GitStorage(url, "main", "data").commit == second  # the mirror is not fetched unless asked
    refreshed = GitStorage(url, "main", "data", refresh=True)
    assert refreshed.commit == third and refreshed.read("pushed.txt") == b"pushed"
    fourth = commit_files(repo, {"data/more.txt": b"more"})
    git(repo, "push", "-q", str(bare), "main")
    assert GitStorage(url, fourth).commit == fourth  # a revision the mirror lacks is fetched by itself


def test_unreachable_repository_url(tmp_path, monkeypatch):
    from thresher.core.storage import StorageUnavailableError

    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    with pytest.raises((StorageUnavailableError, StorageNotFoundError), match="git://127.0.0.1:1/nothing.git"):
        GitStorage("git://127.0.0.1:1/nothing.git", "main")


def test_ext_transport_is_refused(tmp_path, monkeypatch):
    from thresher.core.storage import StorageError

    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    marker = tmp_path / "ran"
    with pytest.raises(StorageError):
        GitStorage(f"ext::sh -c touch% {marker}", "main")
    assert not marker.exists()


def test_uri_round_trip_and_factory(history):
    repo, first, _ = history
    uri = git_uri(repo, "v1", "data/sub")
    assert parse_git_uri(uri) == (repo, "v1", "data/sub")
    assert parse_git_uri("git+https://user@host.example/r.git@feature/x#subdirectory=a%20b") == (
        "https://user@host.example/r.git",
        "feature/x",
        "a b",
    )
    assert parse_git_uri("git+ssh://git@host/r.git") == ("ssh://git@host/r.git", "", "")
    storage = open_storage(uri)
    assert storage.commit == first and [e.path for e in storage.list()] == ["b.txt"]
    assert open_storage(f"git+file://{repo}@main#subdirectory=data").read("new.txt") == b"new"
    by_datasource = for_datasource("data", "v1", repo)
    assert by_datasource.read("a.txt") == b"alpha"
    with pytest.raises(InvalidStorageUriError, match="no repository bound"):
        for_datasource("data", "main", "")


@pytest.mark.slow(reason="waits out the clone's timeout")
def test_a_git_server_that_goes_silent_fails_the_clone_naming_it_and_the_timeout(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    from tests.reliability.proxy import FaultProxy
    from thresher.core.storage import GitRepository, StorageUnavailableError

    source = tmp_path / "src"
    os.makedirs(source)
    git(source, "init", "-q")
    commit_files(source, {"a.txt": b"alpha"})
    git(tmp_path, "clone", "-q", "--bare", str(source), "served/repo.git")
    git(tmp_path / "served" / "repo.git", "update-server-info")  # git's "dumb" HTTP protocol: plain files
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = FaultProxy("127.0.0.1", server.server_address[1])
    monkeypatch.setenv("THRESHER_STORAGE_READ_TIMEOUT", "1")
    try:
        assert GitRepository(f"{proxy.url}/repo.git", cache_dir=str(tmp_path / "one")).resolve("HEAD")
        proxy.hold()
        with pytest.raises(StorageUnavailableError, match=r"went silent: nothing arrived within the 1 s read timeout"):
            GitRepository(f"{proxy.url}/repo.git", cache_dir=str(tmp_path / "two"))
        cache = tmp_path / "two"
        assert [entry for entry in os.listdir(cache) if (cache / entry).is_dir()] == []  # no half-cloned mirror
    finally:
        proxy.release()
        proxy.close()
        server.shutdown()
