"""A throwaway PostgreSQL server for tests and benchmarks.

Where a Docker engine answers, testcontainers' PostgreSQL; otherwise a cluster from Debian's
``postgresql`` package on a free loopback port, in a temporary folder (``initdb`` refuses to run as
root, so as root it runs as the ``postgres`` user). Either way the caller gets a ``postgresql://`` URL.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from types import TracebackType

USER, DATABASE = "thresher", "thresher"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin() -> str | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if folders and os.path.exists(os.path.join(folders[-1], "initdb")):
        return folders[-1]
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class LocalPostgres:
    """A PostgreSQL cluster in a temporary folder on ``port`` (0: a free one); a context manager."""

    def __init__(
        self, port: int = 0, user: str = USER, database: str = DATABASE, settings: Mapping[str, str] | None = None
    ) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
        self.port = port or free_port()
        self.user, self.database = user, database
        self._root = tempfile.mkdtemp(prefix="thresher-pg-")
        self.data = os.path.join(self._root, "data")
        self._as_postgres = os.geteuid() == 0
        self._started = False
        # Server settings (name -> value) passed as -c options after this class's own, so they win.
        self.settings = dict(settings or {})
        for key, value in self.settings.items():
            if not key.replace("_", "").replace(".", "").isalnum() or any(c in value for c in " '\"\\"):
                raise ValueError(f"unsupported PostgreSQL setting {key}={value!r}")

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, program: str, *args: str) -> None:
        command = [os.path.join(self.bin, program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )

    def start(self) -> LocalPostgres:
        if self._as_postgres:
            shutil.chown(self._root, "postgres", "postgres")
        self._run("initdb", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C", "-U", self.user, "-D", self.data)
        # fsync off: a throwaway cluster trades durability for speed. Socket in our own folder.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        options += "".join(f" -c {key}={value}" for key, value in self.settings.items())
        self._run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            os.path.join(self._root, "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        self._started = True
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database)
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._root, ignore_errors=True)

    def log(self) -> str:
        try:
            with open(os.path.join(self._root, "server.log")) as handle:
                return handle.read()
        except OSError:
            return ""

    def __enter__(self) -> LocalPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class ContainerPostgres:
    """testcontainers' PostgreSQL, for machines with a Docker engine."""

    def __init__(self, user: str = USER, database: str = DATABASE) -> None:
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # testcontainers before 4.15
            from testcontainers.postgres import PostgresContainer

        self._container = PostgresContainer(
            "postgres:15", username=user, password="thresher", dbname=database, driver=None
        )
        self.url = ""

    def __enter__(self) -> ContainerPostgres:
        self._container.start()
        self.url = self._container.get_connection_url()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._container.stop()


def throwaway_postgres(user: str = USER, database: str = DATABASE) -> LocalPostgres | ContainerPostgres:
    """A container where Docker works and testcontainers is installed, a local cluster otherwise."""
    if docker_works():
        try:
            return ContainerPostgres(user, database)
        except ImportError:
            pass
    return LocalPostgres(user=user, database=database)
