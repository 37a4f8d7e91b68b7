"""Module-level datasource functions against the fakes: what they send and when they start scans."""

import pathlib

import pytest

from thresher import datasources
from thresher.core.errors import InvalidArgumentError
from thresher.datasources import source_uri
from thresher.v1 import common_pb2


def test_source_uri():
    assert source_uri("s3://bucket/prefix") == "s3://bucket/prefix"
    assert source_uri("file:///abs/dir") == "file:///abs/dir"
    assert source_uri("images/train", revision="main") == "images/train"  # a path in the namespace's repository
    assert source_uri("rel/dir") == (pathlib.Path.cwd() / "rel/dir").as_uri()
    assert source_uri(pathlib.Path("~")) == pathlib.Path.home().as_uri()
    with pytest.raises(InvalidArgumentError):
        source_uri("")


def test_create_sends_a_file_uri_and_starts_the_scan(fakes, tmp_path):
    ds = datasources.create_datasource("alice/repo", "images", tmp_path, connection=fakes.connection)
    [request] = fakes.metadata.requests("CreateDatasource")
    assert (request.namespace, request.name, request.source_uri) == ("alice/repo", "images", tmp_path.as_uri())
    assert [r.datasource_id for r in fakes.scanner.requests("StartScan")] == [ds.id]


def test_get_or_create_starts_a_scan_only_when_none_ever_started(fakes, tmp_path):
    datasources.get_or_create("alice/repo", "images", tmp_path, connection=fakes.connection)
    assert fakes.scanner.requests("StartScan") == []
    fakes.metadata.datasource.scan.state = common_pb2.SCAN_STATE_PENDING
    datasources.get_or_create("alice/repo", "images", tmp_path, connection=fakes.connection)
    assert len(fakes.scanner.requests("StartScan")) == 1


def test_get_datasources_reads_every_page(fakes):
    listed = datasources.get_datasources("alice/repo", connection=fakes.connection)
    assert [d.name for d in listed] == ["ds0", "ds1", "ds2"]
    assert [r.page_token for r in fakes.metadata.requests("ListDatasources")] == ["", "1", "2"]
