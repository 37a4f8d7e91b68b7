"""Fixtures shared by the whole suite: real services on ephemeral loopback ports, temp stores."""

from __future__ import annotations

import gc
import itertools
import os

import grpc
import pytest

from thresher.core.transport import open_channel
from thresher.v1 import metadata_service_pb2_grpc

# S3/GCS endpoints and git repositories for storage tests (tests/storage_endpoints.py).
pytest_plugins = ("tests.storage_endpoints",)

_namespace_counter = itertools.count()

# The quick selection, `pytest -m "not slow"`, leaves out what costs tens of seconds and is covered by a
# cheaper test of the same area. Besides tests marked `slow` by hand (kill and restart loops, multi-process
# training jobs, the compose deployment, inputs whose size is the point), a test is slow when it:
#  - runs on PostgreSQL: a `postgres` parametrization, or any fixture built on `postgres_url`
#    (the `duckdb` parametrization of the same test stays quick);
#  - reads the ML test images from S3 (`images_source` = `s3`; the local variant stays quick);
#  - reads query results through the flight service's gRPC fallback (`flight_server` = `grpc`; the
#    data-port and in-process variants, what deployments and `thresher up` run, stay quick);
#  - needs one of these runtimes, each seconds to start and heavy on 2 cores:
SLOW_FIXTURES = {
    "postgres_url": "a PostgreSQL cluster",
    "ray_cluster": "a Ray cluster",
    "fo": "FiftyOne and its mongod",
    "browser": "a Chromium browser",
}


def _slow_reason(item: pytest.Item) -> str | None:
    """Why the quick selection leaves ``item`` out, or None when it keeps it."""
    for fixture, runtime in SLOW_FIXTURES.items():
        if fixture in item.fixturenames:
            return f"needs {runtime}"
    # metadata_server and the store-behaviour engines pick PostgreSQL by parameter, not by fixture.
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(
        isinstance(value, str) and value == "postgres" for value in callspec.params.values()
    ):
        return "runs on PostgreSQL"
    # The ML adapters read the same images from a folder and from S3; fetching is tested on its own.
    if callspec is not None and callspec.params.get("images_source") == "s3":
        return "reads the images from S3 (the local variant stays quick)"
    if callspec is not None and callspec.params.get("flight_server") == "grpc":
        return "reads results through the gRPC fallback (the data-port and in-process variants stay quick)"
    return None


def _engine_left_out(item: pytest.Item) -> bool:
    """Whether ``item`` is a ``single_writer`` test (of the embedded store's own machinery) given the
    PostgreSQL store: such a combination is not collected at all, rather than skipped."""
    callspec = getattr(item, "callspec", None)
    return (
        item.get_closest_marker("single_writer") is not None
        and callspec is not None
        and callspec.params.get("metadata_server") == "postgres"
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leaves out combinations that do not apply, and marks the tests that the rules above call slow
    (see CONTRIBUTING.md)."""
    left_out = [item for item in items if _engine_left_out(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not _engine_left_out(item)]
    for item in items:
        if item.get_closest_marker("slow") is None and _slow_reason(item) is not None:
            item.add_marker(pytest.mark.slow(reason=_slow_reason(item)))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Moves everything imported so far (torch, TensorFlow, pyarrow, the services) out of the garbage
    collector's reach: those millions of long-lived objects never become garbage, and without this every
    full collection walks them again, which made allocation-heavy tests several times slower in the suite
    than alone."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """No test ever touches the user's ~/.thresher."""
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path_factory.mktemp("thresher-home")))
    # Downloads and the blob cache (default ~/thresher) stay in the test's folders too.
    monkeypatch.setenv("THRESHER_DOWNLOAD_DIR", str(tmp_path_factory.mktemp("thresher-downloads")))


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so tests can share one set of services."""
    return f"test/ns{os.getpid()}-{next(_namespace_counter)}"


@pytest.fixture(scope="session")
def local_services(tmp_path_factory):
    """All three services in-process over one DuckDB store, shared by the session."""
    from thresher.local_services import LocalServices

    with LocalServices(home=str(tmp_path_factory.mktemp("services-home"))) as services:
        yield services


@pytest.fixture
def client(local_services):
    """A client connection to the shared services."""
    return local_services.connect()


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database for the session (skips where PostgreSQL is not installed)."""
    from tests.deploy.postgres import throwaway_postgres

    try:
        server = throwaway_postgres()
    except RuntimeError as error:
        pytest.skip(str(error))
    with server:
        yield server.url


@pytest.fixture(scope="session", params=["duckdb", "postgres"])
def metadata_server(request, tmp_path_factory):
    """The metadata service alone, on its own store: once over DuckDB, once over PostgreSQL."""
    from thresher.services.metadata.server import create_server, open_store

    if request.param == "postgres":
        # The lowest-versions run of the client tests installs no `postgres` extra; CI's main run does.
        pytest.importorskip("adbc_driver_postgresql")
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    store = open_store(str(tmp_path_factory.mktemp("metadata-home")), postgres_url=url)
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
