"""Session fixtures for object-store endpoints: S3 and GCS on loopback, git repositories in tmp.

S3 is moto's server mode (a real HTTP endpoint, in this process) and GCS is gcp-storage-emulator (a
subprocess); where a Docker engine answers, MinIO and fake-gcs-server containers are used instead.
Registered for the whole suite by ``pytest_plugins`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

_names = itertools.count()
START_DEADLINE = 60.0
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclasses.dataclass
class Endpoint:
    """An object-store endpoint: its URL and how to make a client for it."""

    url: str
    kind: str
    """``moto``, ``minio``, ``gcp-storage-emulator`` or ``fake-gcs-server``."""
    credentials: dict[str, str] = dataclasses.field(default_factory=dict)
    _clients: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def s3_client(self, **config: Any) -> Any:
        """A boto3 client for the endpoint (shared when ``config`` is empty: clients take ~0.2 s to make)."""
        if config:
            return self._new_s3_client(**config)
        if "s3" not in self._clients:
            self._clients["s3"] = self._new_s3_client()
        return self._clients["s3"]

    def _new_s3_client(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(
                **{"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 2, "mode": "standard"}, **config}
            ),
            **self.credentials,
        )

    def gcs_client(self) -> Any:
        """A shared anonymous google-cloud-storage client for the endpoint."""
        if "gcs" not in self._clients:
            self._clients["gcs"] = self._new_gcs_client()
        return self._clients["gcs"]

    def _new_gcs_client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )


def unique_bucket(prefix: str = "bucket") -> str:
    """A bucket name no other test uses."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, deadline: float = START_DEADLINE) -> None:
    """Polls until something accepts connections on ``port``; fails if ``process`` exits or time runs out."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the endpoint process exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)  # polling with a deadline: the process gives no other readiness signal
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {deadline} s")


def docker_available() -> bool:
    """True when a Docker engine answers and testcontainers is installed."""
    if shutil.which("docker") is None:
        return False
    try:
        import testcontainers  # noqa: F401
    except ImportError:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def s3_server() -> Iterator[Endpoint]:
    """MinIO in a container where Docker runs, else moto's threaded server on a free loopback port."""
    if docker_available():
        from testcontainers.minio import MinioContainer

        with MinioContainer() as minio:
            config = minio.get_config()
            yield Endpoint(
                f"http://{config['endpoint']}",
                "minio",
                {"aws_access_key_id": config["access_key"], "aws_secret_access_key": config["secret_key"]},
            )
        return
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield Endpoint(f"http://{host}:{port}", "moto")
    finally:
        server.stop()


@contextlib.contextmanager
def gcs_server() -> Iterator[Endpoint]:
    """fake-gcs-server in a container where Docker runs, else gcp-storage-emulator as a subprocess."""
    if docker_available():
        from testcontainers.core.container import DockerContainer

        container = (
            DockerContainer("fsouza/fake-gcs-server").with_command("-scheme http -port 4443").with_exposed_ports(4443)
        )
        with container:
            port = int(container.get_exposed_port(4443))
            wait_for_port(port)
            yield Endpoint(f"http://{container.get_container_host_ip()}:{port}", "fake-gcs-server")
        return
    port = free_port()
    command = [
        os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator"),
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield Endpoint(f"http://127.0.0.1:{port}", "gcp-storage-emulator")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[Endpoint]:
    """An S3 endpoint for the session; dummy AWS credentials and THRESHER_S3_ENDPOINT_URL point at it."""
    with pytest.MonkeyPatch.context() as patch, s3_server() as endpoint:
        for name, value in AWS_ENV.items():
            patch.setenv(name, value)
        if endpoint.credentials:
            patch.setenv("AWS_ACCESS_KEY_ID", endpoint.credentials["aws_access_key_id"])
            patch.setenv("AWS_SECRET_ACCESS_KEY", endpoint.credentials["aws_secret_access_key"])
            patch.delenv("AWS_SESSION_TOKEN")
        patch.setenv("THRESHER_S3_ENDPOINT_URL", endpoint.url)
        yield endpoint


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[Endpoint]:
    """A GCS endpoint for the session; STORAGE_EMULATOR_HOST points google-cloud-storage at it."""
    with pytest.MonkeyPatch.context() as patch, gcs_server() as endpoint:
        patch.setenv("STORAGE_EMULATOR_HOST", endpoint.url)
        patch.setenv("GOOGLE_CLOUD_PROJECT", "test")
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A new, empty bucket on the S3 endpoint."""
    name = unique_bucket("s3")
    s3_endpoint.s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def gcs_bucket(gcs_endpoint) -> str:
    """A new, empty bucket on the GCS endpoint."""
    name = unique_bucket("gcs")
    gcs_endpoint.gcs_client().create_bucket(name)
    return name


def git(repo: os.PathLike[str] | str, *args: str) -> str:
    """Runs git in ``repo`` with a fixed identity; returns stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env, text=True).stdout


def commit_files(repo: os.PathLike[str] | str, files: dict[str, bytes | None], message: str = "change") -> str:
    """Writes (bytes) or deletes (None) ``files`` in the work tree of ``repo``, commits, returns the commit id."""
    for path, content in files.items():
        target = os.path.join(str(repo), path)
        if content is None:
            os.unlink(target)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def git_repo(tmp_path) -> str:
    """A new git repository (branch ``main``) with no commits yet; see ``commit_files``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return str(repo)
