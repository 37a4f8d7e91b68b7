"""Runs `thresher up` in a child process on free ports, so a benchmark's client and the services
do not share one interpreter lock, as in a real deployment."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from types import TracebackType


def _without_bench_variables(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """``environ`` less this benchmark's own THRESHER_BENCH_* switches, which `thresher up` would refuse
    as unknown settings."""
    return {key: value for key, value in environ.items() if not key.startswith("THRESHER_BENCH_")}


class ServiceProcess:
    def __init__(
        self, home: str | None = None, environment: dict[str, str] | None = None, log_path: str | None = None
    ) -> None:
        """``environment``: extra variables for the services (e.g. THRESHER_POSTGRES_URL for that store);
        ``log_path``: a file that receives the services' log (by default it is dropped)."""
        self._scratch = tempfile.TemporaryDirectory(prefix="thresher-bench-")
        self._log_path = log_path
        self.home = home or self._scratch.name
        self._service_environment = dict(environment or {})
        self.environment: dict[str, str] = {}
        self.gallery_url: str | None = None  # where `thresher up` serves the web gallery, if it does
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> ServiceProcess:
        log = None if os.environ.get("THRESHER_BENCH_LOGS") else subprocess.DEVNULL
        with open(self._log_path, "w") if self._log_path else contextlib.nullcontext(log) as stderr:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "thresher.cli", "up", "--home", self.home, "--port", "0"],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**_without_bench_variables(os.environ), **self._service_environment},
            )
        deadline = time.monotonic() + 120
        for line in self._process.stdout:
            if line.strip().startswith("export "):
                key, value = line.strip().removeprefix("export ").split("=", 1)
                self.environment[key] = value
            if line.startswith("Gallery on "):
                self.gallery_url = line.split()[2]
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        if "THRESHER_FLIGHT_ADDRESS" not in self.environment:
            self.__exit__(None, None, None)
            raise RuntimeError("thresher up did not start")
        os.environ.update(self.environment)
        return self

    def memory_peak_mib(self) -> float:
        """The services' peak resident memory so far (every service `thresher up` runs is in one process)."""
        assert self._process is not None, "entered"
        return peak_rss_mib(descendants(self._process.pid))

    def connect(self):
        import thresher

        return thresher.connect(
            metadata_address=self.environment["THRESHER_METADATA_ADDRESS"],
            scanner_address=self.environment["THRESHER_SCANNER_ADDRESS"],
            flight_address=self.environment["THRESHER_FLIGHT_ADDRESS"],
        )

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._scratch.cleanup()


def empty_datasource(namespace: str, name: str):
    """A datasource over an empty folder, scanned, so metadata uploads are the only datapoints."""
    import thresher

    folder = tempfile.mkdtemp(prefix="thresher-bench-source-")
    return thresher.datasources.get_or_create(namespace, name, folder).wait_until_ready(progress=False)


def best_of(function, repeats: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed runs after ``warmup`` untimed ones, in seconds."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def peak_rss_mib(pids: list[int]) -> float:
    """The sum of the processes' peak resident memory (VmHWM), in MiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def descendants(pid: int) -> list[int]:
    found = [pid]
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for child in result.stdout.split():
        found += descendants(int(child))
    return found
