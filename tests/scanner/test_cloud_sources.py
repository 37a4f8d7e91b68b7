"""Scans of S3 and GCS prefixes and git paths: automatic fields, incremental rescans, failures, progress.

S3 is the moto server (or MinIO), GCS the emulator (or fake-gcs-server), git repositories are made in
tmp; see ``tests/storage_endpoints.py``. Scans run against an in-memory index (``fakes.MemoryIndex``).
"""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from tests.storage_endpoints import commit_files, free_port, unique_bucket
from thresher.core.scan_status import FAILED, PENDING, READY, ScanStatus
from thresher.core.storage import (
    LocalStorage,
    StorageAccessDeniedError,
    StorageNotFoundError,
    StorageUnavailableError,
    open_storage,
)
from thresher.services.scanner import storage_source
from thresher.services.scanner.metadata_interfaces import DatasourceRef
from thresher.services.scanner.scan_run import Scan
from thresher.services.scanner.scan_sources import SourceError, open_source
from thresher.services.scanner.storage_source import HEADER_CHUNK, HEADER_LIMIT, StorageSource

from .fakes import MemoryIndex


@pytest.fixture
def pool():
    with ThreadPoolExecutor(4) as executor:
        yield executor


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, "PNG")
    return out.getvalue()


def jpeg_with_padding(width: int, height: int, padding: int) -> bytes:
    """A JPEG whose frame header follows ``padding`` bytes of APP segments (as big EXIF blocks do)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, "JPEG")
    data = out.getvalue()
    segments = b""
    while padding > 0:
        size = min(padding, 65533)
        segments += b"\xff\xe1" + struct.pack(">H", size + 2) + b"\0" * size
        padding -= size
    return data[:2] + segments + data[2:]


def run_scan(uri: str, index: MemoryIndex, pool, revision: str = "", repository: str = "", **options) -> ScanStatus:
    ref = DatasourceRef(7, uri, revision, ScanStatus(PENDING), repository)
    return Scan(ref, index, pool, remote_image_pool=pool, report_interval=0, **options).run()


def counts(progress: ScanStatus) -> tuple[int, int, int, int]:
    return (progress.files_seen, progress.datapoints_added, progress.datapoints_updated, progress.datapoints_removed)


def upserted(index: MemoryIndex) -> list[str]:
    return sorted(path for batch in index.upserts for path in batch)


# -- object stores ----------------------------------------------------------------------------------


@pytest.fixture(params=["s3", "gcs"])
def bucket_uri(request) -> str:
    """``s3://bucket/data`` or ``gs://bucket/data`` on a new bucket of the test endpoint."""
    scheme = {"s3": "s3", "gcs": "gs"}[request.param]
    bucket = request.getfixturevalue(f"{request.param}_bucket")
    return f"{scheme}://{bucket}/data"


def test_a_bucket_prefix_is_listed_page_by_page_with_its_automatic_fields(bucket_uri, pool, monkeypatch):
    monkeypatch.setattr(storage_source, "PAGE_SIZE", 7)
    storage = open_storage(bucket_uri)
    files = {f"part{i % 3}/f{i:02d}.txt": b"x" * i for i in range(40)}
    files.update({"img/a.png": png(9, 4), "img/b.jpg": jpeg_with_padding(5, 3, 100_000), "raw/blob": b"\0" * 10})
    for path, data in files.items():
        storage.write(path, data)
    root = open_storage(bucket_uri.rsplit("/", 1)[0])
    root.write("outside.txt", b"not under the prefix")
    root.write("dataset/x.txt", b"a longer name, still not under data/")

    source = open_source(bucket_uri)
    pages = [len(page) for page in source.pages()]
    # moto pages as asked; the GCS emulator answers a listing in one page.
    assert sum(pages) == len(files) and (pages[0] == 7 or bucket_uri.startswith("gs://"))

    index = MemoryIndex()
    progress = run_scan(bucket_uri, index, pool)
    assert progress.state == READY, progress.failure_reason
    assert counts(progress) == (len(files), len(files), 0, 0) and progress.files_per_second > 0
    assert sorted(index.rows) == sorted(files)
    row = index.rows["part1/f07.txt"]
    listed = storage.stat("part1/f07.txt")
    assert (row["size"], row["content_type"], row["etag"]) == (7, "text/plain", listed.etag)
    assert row["modified"].timestamp() == pytest.approx(listed.mtime, abs=1e-3)
    assert (index.rows["img/a.png"]["width"], index.rows["img/a.png"]["height"]) == (9, 4)
    # The frame header sits 100 kB in: found by a second ranged read.
    assert (index.rows["img/b.jpg"]["width"], index.rows["img/b.jpg"]["height"]) == (5, 3)
    assert index.rows["img/b.jpg"]["content_type"] == "image/jpeg"
    assert index.rows["raw/blob"]["content_type"] is None or bucket_uri.startswith("gs://")
    assert index.stamp == "etag"


def test_a_rescan_compares_etags(bucket_uri, pool):
    storage = open_storage(bucket_uri)
    for i in range(30):
        storage.write(f"f{i:02d}.txt", b"version 1 of %d" % i)
    index = MemoryIndex()
    assert run_scan(bucket_uri, index, pool).state == READY
    index.upserts.clear()

    storage.write("f00.txt", b"version 2")  # new bytes: a new etag
    storage.write("f01.txt", b"version 1 of 1")  # the same bytes again: the same etag
    storage.delete("f02.txt")
    storage.write("new.txt", b"new")
    progress = run_scan(bucket_uri, index, pool)
    assert progress.state == READY, progress.failure_reason
    assert counts(progress) == (30, 1, 1, 1)
    assert upserted(index) == ["f00.txt", "new.txt"] and index.deletes == [["f02.txt"]]
    assert index.rows["f00.txt"]["size"] == 9 and index.rows["f00.txt"]["etag"] == storage.stat("f00.txt").etag

    index.upserts.clear()
    index.deletes.clear()
    assert counts(run_scan(bucket_uri, index, pool)) == (30, 0, 0, 0)
    assert index.upserts == [] and index.deletes == []


def test_an_empty_prefix_fails_and_keeps_the_datapoints(bucket_uri, pool):
    index = MemoryIndex()
    index.rows["old.txt"] = {"path": "old.txt", "size": 1, "etag": "e"}
    progress = run_scan(bucket_uri, index, pool)
    assert progress.state == FAILED
    assert f"no objects under {bucket_uri}/" in progress.failure_reason
    assert "old.txt" in index.rows and index.deletes == []


def test_a_missing_bucket_fails_naming_it(s3_endpoint, gcs_endpoint, pool):
    for uri, bucket in (
        (f"s3://{unique_bucket('absent')}/data", "S3 bucket"),
        (f"gs://{unique_bucket('absent')}/data", "GCS bucket"),
    ):
        index = MemoryIndex()
        progress = run_scan(uri, index, pool)
        name = uri.split("/")[2]
        assert progress.state == FAILED and f"{bucket} {name!r} does not exist" in progress.failure_reason
        assert index.reports[-1].state == FAILED and index.upserts == []


def test_an_unreachable_endpoint_fails_naming_it(s3_endpoint, pool, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("THRESHER_S3_ENDPOINT_URL", dead)
    progress = run_scan("s3://bucket/data", MemoryIndex(), pool)
    assert progress.state == FAILED
    assert f"cannot reach the S3 endpoint {dead}" in progress.failure_reason
    assert "s3://bucket/data/" in progress.failure_reason


def test_denied_access_fails_with_the_storage_reason(tmp_path, pool, monkeypatch):
    class Denied(LocalStorage):
        def pages(self, prefix="", page_size=1000):
            raise StorageAccessDeniedError("access denied to objects under s3://locked/data/ (AccessDenied)")
            yield

    monkeypatch.setattr(storage_source, "for_datasource", lambda *args, **kwargs: Denied(tmp_path))
    progress = run_scan("s3://locked/data", MemoryIndex(), pool)
    assert progress.state == FAILED
    assert progress.failure_reason == "access denied to objects under s3://locked/data/ (AccessDenied)"


@pytest.mark.parametrize(
    "failure",
    [
        StorageUnavailableError(
            "the S3 endpoint http://127.0.0.1:9 timed out for s3://b/data/img1.png: no answer "
            "within the 1 s read timeout"
        ),
        StorageNotFoundError("s3://b/data/img1.png does not exist"),
    ],
)
def test_an_endpoint_failing_after_the_listing_fails_the_scan_but_an_unreadable_image_does_not(
    tmp_path, pool, monkeypatch, failure
):
    # An endpoint that fails under the image header reads must fail the scan: indexing the images without
    # their sizes would keep them so for good, as a rescan leaves an unchanged etag alone. A file that
    # cannot be read (changed, vanished) is passed over and keeps its other fields.
    for i in range(3):
        (tmp_path / f"img{i}.png").write_bytes(png(4, 3))

    class FailingHeaders(LocalStorage):
        def read(self, path, start=0, end=None):
            if path == "img1.png":
                raise failure
            return super().read(path, start, end)

    monkeypatch.setattr(storage_source, "for_datasource", lambda *args, **kwargs: FailingHeaders(tmp_path))
    index = MemoryIndex()
    index.rows["old.txt"] = {"path": "old.txt", "size": 1, "etag": "e"}
    progress = run_scan("s3://b/data", index, pool)
    if isinstance(failure, StorageUnavailableError):
        assert progress.state == FAILED and progress.failure_reason == str(failure)
        assert "old.txt" in index.rows and index.deletes == []
        assert all(row.get("width") == 4 for path, row in index.rows.items() if path != "old.txt")
    else:
        assert progress.state == READY, progress.failure_reason
        assert [index.rows[f"img{i}.png"].get("width") for i in range(3)] == [4, None, 4]


def test_image_sizes_can_be_left_out_for_remote_sources(s3_bucket, pool):
    uri = f"s3://{s3_bucket}/pics"
    open_storage(uri).write("a.png", png(3, 2))
    index = MemoryIndex()
    assert run_scan(uri, index, pool, remote_image_sizes=False).state == READY
    row = index.rows["a.png"]
    assert row["content_type"] == "image/png" and "width" not in row


# -- image headers ----------------------------------------------------------------------------------


class CountingStorage(LocalStorage):
    def __init__(self, root) -> None:
        super().__init__(root)
        self.ranges: list[tuple[int, int | None]] = []

    def read(self, path, start=0, end=None):
        self.ranges.append((start, end))
        return super().read(path, start, end)


def test_image_headers_are_read_in_bounded_ranges(tmp_path):
    (tmp_path / "big.png").write_bytes(png(20, 10) + b"\0" * 5_000_000)
    (tmp_path / "deep.jpg").write_bytes(jpeg_with_padding(4, 4, HEADER_LIMIT + 10))
    storage = CountingStorage(tmp_path)
    source = StorageSource(storage)
    from thresher.services.scanner.images import image_size

    with source.open("big.png") as file:
        assert image_size(file) == (20, 10)
    assert storage.ranges == [(0, HEADER_CHUNK)]
    storage.ranges.clear()
    with source.open("deep.jpg") as file:
        assert image_size(file) is None  # its frame header lies past the limit
    assert storage.ranges and all(end <= HEADER_LIMIT for _, end in storage.ranges)


# -- git --------------------------------------------------------------------------------------------


def test_a_path_in_a_git_revision_is_scanned_and_a_moving_branch_rescanned(git_repo, pool):
    first = commit_files(
        git_repo,
        {**{f"data/f{i}.txt": b"%d" % i for i in range(20)}, "data/img.png": png(6, 5), "other/x.txt": b"not scanned"},
    )
    index = MemoryIndex()
    progress = run_scan("data", index, pool, revision="main", repository=git_repo)
    assert progress.state == READY, progress.failure_reason
    assert counts(progress) == (21, 21, 0, 0) and index.stamp == "etag"
    assert (index.rows["img.png"]["width"], index.rows["img.png"]["height"]) == (6, 5)
    blob_id = index.rows["f1.txt"]["etag"]
    assert len(blob_id) == 40 and index.rows["f1.txt"]["size"] == 1

    # A new commit on main: one file changed, one deleted, one added. The others keep their blob ids,
    # so they are untouched although the commit (and with it `modified`) moved.
    commit_files(
        git_repo,
        {"data/f0.txt": b"changed", "data/f1.txt": None, "data/new.txt": b"new", "other/x.txt": b"still not scanned"},
    )
    index.upserts.clear()
    progress = run_scan("data", index, pool, revision="main", repository=git_repo)
    assert counts(progress) == (21, 1, 1, 1)
    assert upserted(index) == ["f0.txt", "new.txt"] and index.deletes == [["f1.txt"]]

    # A datasource pinned to the first commit still sees it.
    pinned = MemoryIndex()
    assert counts(run_scan("data", pinned, pool, revision=first, repository=git_repo)) == (21, 21, 0, 0)
    assert "f1.txt" in pinned.rows and "new.txt" not in pinned.rows


def test_a_git_uri_source_is_scanned(git_repo, pool):
    commit_files(git_repo, {"sub/a.txt": b"a", "b.txt": b"b"})
    index = MemoryIndex()
    progress = run_scan(f"git+file://{git_repo}@main#subdirectory=sub", index, pool)
    assert progress.state == READY, progress.failure_reason
    assert sorted(index.rows) == ["a.txt"]


@pytest.mark.parametrize(
    "path, revision, repository, reason",
    [
        ("data", "nope", "{repo}", "git repository {repo} has no revision 'nope'"),
        ("missing", "main", "{repo}", "no folder 'missing' in git repository {repo} at revision 'main'"),
        ("data", "main", "", "the namespace has no repository bound"),
        ("data", "main", "{repo}-absent", "git repository {repo}-absent does not exist"),
    ],
)
def test_git_sources_that_cannot_be_read_fail_naming_what_is_missing(
    git_repo, pool, path, revision, repository, reason
):
    commit_files(git_repo, {"data/a.txt": b"a"})
    index = MemoryIndex()
    progress = run_scan(path, index, pool, revision=revision, repository=repository.format(repo=git_repo))
    assert progress.state == FAILED
    assert reason.format(repo=git_repo) in progress.failure_reason
    assert index.upserts == [] and index.deletes == []


def test_unknown_source_kinds_are_refused():
    with pytest.raises(SourceError, match="ftp:// sources are not supported"):
        open_source("ftp://host/data")


# -- through the services and the client ------------------------------------------------------------


def test_a_git_datasource_through_the_client(client, namespace, git_repo, capsys):
    import thresher

    commit_files(git_repo, {"images/a.png": png(4, 3), "images/b.txt": b"b", "docs/c.txt": b"c"})
    thresher.create_namespace(namespace, repository=git_repo, connection=client)
    ds = thresher.get_or_create_datasource(namespace, "images", "images", "main", connection=client)
    ds.wait_until_ready(timeout=60)
    # The progress bar (counts and rate) went to stderr.
    assert f"scanning {namespace}/images" in capsys.readouterr().err
    table = ds.all().arrow.sort_by("path")
    assert table["path"].to_pylist() == ["a.png", "b.txt"]
    assert table["width"].to_pylist() == [4, None] and table["content_type"].to_pylist() == ["image/png", "text/plain"]

    commit_files(git_repo, {"images/b.txt": None, "images/d.txt": b"d"})
    ds.rescan()
    ds.wait_until_ready(timeout=60, progress=False)
    assert sorted(ds.all().arrow["path"].to_pylist()) == ["a.png", "d.txt"]
    status = ds.scan_status
    assert (status.files_seen, status.datapoints_added, status.datapoints_updated, status.datapoints_removed) == (
        2,
        1,
        0,
        1,
    )


def test_an_s3_datasource_through_the_client(client, namespace, s3_bucket):
    import thresher
    from thresher.core.errors import ScanFailedError

    storage = open_storage(f"s3://{s3_bucket}/in")
    for i in range(12):
        storage.write(f"{i:02d}.json", b"{}")
    ds = thresher.get_or_create_datasource(namespace, "objects", f"s3://{s3_bucket}/in", connection=client)
    ds.wait_until_ready(timeout=60, progress=False)
    table = ds.all().arrow
    assert table.num_rows == 12 and set(table["content_type"].to_pylist()) == {"application/json"}
    assert table["etag"].null_count == 0

    missing = thresher.get_or_create_datasource(
        namespace, "missing", f"s3://{unique_bucket('absent')}/in", connection=client
    )
    with pytest.raises(ScanFailedError, match="S3 bucket .* does not exist"):
        missing.wait_until_ready(timeout=60, progress=False)
