"""A real Ray cluster (a local head with 2 CPUs) and services whose results come in small partitions."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests.export.conftest import make_image_source

ray = pytest.importorskip("ray")

# Small enough that a 20-datapoint result comes in several partitions, one Flight endpoint each.
ROWS_PER_PARTITION = 7
_names = itertools.count()


@pytest.fixture(scope="module")
def ray_services(tmp_path_factory):
    """The three services, in-process, with a partition size of ROWS_PER_PARTITION rows."""
    from thresher.local_services import LocalServices

    home = tmp_path_factory.mktemp("ray-services")
    saved = {name: os.environ.get(name) for name in ("THRESHER_FLIGHT_PARTITION_ROWS", "THRESHER_STAGING_DIR")}
    os.environ["THRESHER_FLIGHT_PARTITION_ROWS"] = str(ROWS_PER_PARTITION)
    os.environ["THRESHER_STAGING_DIR"] = str(home / "staging")
    try:
        with LocalServices(home=str(home)) as services:
            yield services
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray head with 2 CPUs and a 200 MB object store, in a process of its own, stopped after the session.

    The head is started by ``ray start`` rather than ``ray.init``: ``ray.init`` forks its GCS server
    from the pytest process, and a fork of a process full of gRPC and DuckDB threads crashed the
    child before it could exec (CI, once in a few runs). One head serves all the Ray tests."""
    # A short folder of its own: Ray's socket paths must stay under the OS limit, and other runs keep theirs.
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = _free_port()
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={port}", f"--ray-client-server-port={_free_port()}",
        "--num-cpus=2", f"--object-store-memory={200 * 1024 * 1024}", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp}",
    ]  # fmt: skip
    # Token authentication stays off on both ends: the head is private to this test session on loopback,
    # and a token ``ray start`` left in ~/.ray must not turn it on for one end only.
    saved_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    log = open(os.path.join(temp, "head.log"), "wb")
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _connect(head, f"127.0.0.1:{port}", temp)
        yield ray
    finally:
        ray.shutdown()
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        if saved_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_auth


def _connect(head: subprocess.Popen, address: str, temp: str) -> None:
    """Connects this process to the head once it serves, failing with its log if it exits first."""
    deadline = time.monotonic() + 120
    while True:
        if head.poll() is not None:
            with open(os.path.join(temp, "head.log"), errors="replace") as log:
                pytest.fail(f"ray start exited with {head.returncode}:\n{log.read()[-4000:]}")
        try:
            ray.init(address=address, _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False)
            return
        except (ConnectionError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def images(ray_services, namespace, tmp_path):
    """Makes a scanned datasource of ``count`` PNG images ``img/NN.png`` with ``label``, ``x`` and ``note``."""
    conn = ray_services.connect()

    def make(count: int = 20):
        return make_image_source(conn, namespace, tmp_path / f"images{next(_names)}", count, note_field="note")

    return make
