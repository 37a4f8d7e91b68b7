"""Fixtures shared by the whole suite: real services on ephemeral loopback ports, temp stores."""

from __future__ import annotations

import itertools
import os

import grpc
import pytest

from thresher.transport import open_channel
from thresher.v1 import metadata_service_pb2_grpc

_namespace_counter = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """No test ever touches the user's ~/.thresher."""
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path_factory.mktemp("thresher-home")))


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so tests can share one set of services."""
    return f"test/ns{os.getpid()}-{next(_namespace_counter)}"


@pytest.fixture(scope="session")
def local_services(tmp_path_factory):
    """All three services in-process over one DuckDB store, shared by the session."""
    from thresher.local import LocalServices

    with LocalServices(home=str(tmp_path_factory.mktemp("services-home"))) as services:
        yield services


@pytest.fixture
def client(local_services):
    """A client connection to the shared services."""
    return local_services.connect()


@pytest.fixture(scope="session")
def metadata_server(tmp_path_factory):
    """The metadata service alone, on its own store."""
    from thresher.services.metadata.server import create_server, open_store

    store = open_store(str(tmp_path_factory.mktemp("metadata-home")))
    server, port = create_server("127.0.0.1:0", store)
    yield f"127.0.0.1:{port}", store
    server.stop(grace=None)
    store.close()


@pytest.fixture
def metadata_stub(metadata_server):
    address, _ = metadata_server
    channel = open_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    yield metadata_service_pb2_grpc.MetadataServiceStub(channel)
    channel.close()
