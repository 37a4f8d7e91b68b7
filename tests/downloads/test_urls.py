"""download_url: file:// for local sources, presigned for S3, the flight service's URL otherwise."""

from __future__ import annotations

import base64
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pyarrow.flight as fl

import thresher
from tests.downloads.conftest import indexed
from tests.storage_endpoints import commit_files
from thresher.core.storage import open_storage


def fetch_flight_url(url: str) -> bytes:
    """What any Arrow Flight client does with the URL: DoGet the ticket at the location."""
    parts = urlsplit(url)
    raw = parse_qs(parts.query)["ticket"][0]
    ticket = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    with fl.connect(f"{parts.scheme}://{parts.netloc}") as client:
        table = client.do_get(fl.Ticket(ticket)).read_all()
    return b"".join(table.column("data").to_pylist())


def test_local_source_urls_are_file_urls(local_source):
    ds = local_source({"a b.txt": b"local"})
    url = ds.get_datapoint("a b.txt").download_url
    assert url.startswith("file:///") and url.endswith("/a%20b.txt")
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"local"


def test_s3_source_urls_are_presigned(s3_source):
    ds = s3_source({"x/y.bin": b"from s3"})
    url = ds.get_datapoint("x/y.bin").download_url
    assert url.startswith("http") and "Signature" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"from s3"


def test_git_and_unsignable_gcs_sources_get_flight_urls(conn, namespace, git_repo, gcs_bucket):
    commit_files(git_repo, {"data/g.txt": b"from git"})
    thresher.create_namespace(namespace, git_repo, connection=conn)
    git_ds = indexed(conn, namespace, "data", ["g.txt"], revision="main")
    url = git_ds.get_datapoint("g.txt").download_url
    assert url.startswith(f"grpc://{conn.flight_address}?ticket=")
    assert fetch_flight_url(url) == b"from git"
    open_storage(f"gs://{gcs_bucket}/p").write("q.bin", b"from gcs")
    gcs_ds = indexed(conn, namespace, f"gs://{gcs_bucket}/p", ["q.bin"])
    assert fetch_flight_url(gcs_ds.get_datapoint("q.bin").download_url) == b"from gcs"


def test_with_download_urls_adds_a_column(local_source):
    ds = local_source({"a.txt": b"a", "b.txt": b"b"})
    result = ds.all()
    assert "download_url" not in result.dataframe.columns  # only when asked: it is built per row
    frame = result.with_download_urls().dataframe
    assert [url.rsplit("/", 1)[1] for url in frame["download_url"]] == frame["path"].tolist()
