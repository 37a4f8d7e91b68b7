"""Helpers of the reliability tests: services in child processes that can be SIGKILLed, channels that
reconnect quickly, and reading a datasource back whole."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import grpc
import pandas as pd

from thresher.core.arrow_io import read_batch, read_schema
from thresher.core.transport import GRPC_OPTIONS
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as pb

# Reconnect quickly after each restart instead of gRPC's default backoff of up to two minutes.
FAST_RECONNECT = [option for option in GRPC_OPTIONS if "reconnect" not in option[0]] + [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fast_channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=FAST_RECONNECT)


class ChildService:
    """``python -m thresher.services.<name> --address A <arguments>``, started, killed and restarted."""

    def __init__(self, name: str, *arguments: str) -> None:
        self.name = name
        self.arguments = list(arguments)
        self.address = f"127.0.0.1:{free_port()}"
        self.process: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"thresher.services.{self.name}", "--address", self.address, *self.arguments],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.kills += 1
        if self.process is not None:
            self.process.wait(timeout=30)

    def __enter__(self) -> ChildService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def poll(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Calls ``condition`` until it returns something true; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(pause)  # polling a condition with a deadline; nothing signals it
        pause = min(pause * 2, 0.1)


def read_all(stub, datasource_id: int) -> pd.DataFrame:
    """Every datapoint of a datasource, read straight from the metadata service."""
    responses = iter(
        stub.ExecuteQuery(
            pb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=datasource_id)), timeout=60, wait_for_ready=True
        )
    )
    schema = read_schema(next(responses).schema)
    batches = [read_batch(r.record_batch, schema).to_pandas() for r in responses]
    return pd.concat(batches) if batches else schema.empty_table().to_pandas()


class Acknowledged:
    """The generations a writer saw acknowledged, with a wait for more of them."""

    def __init__(self) -> None:
        self.generations: set[int] = set()
        self._progress = threading.Condition()

    def add(self, generation: int) -> None:
        with self._progress:
            self.generations.add(generation)
            self._progress.notify_all()

    def wait_for_more(self, count: int, writer: threading.Thread) -> None:
        """Waits for ``count`` more acknowledgements; fails if ``writer`` stops meanwhile."""
        with self._progress:
            target = len(self.generations) + count
            assert self._progress.wait_for(lambda: len(self.generations) >= target or not writer.is_alive(), timeout=60)
        assert writer.is_alive(), "the writer stopped on an unexpected error"


def check_generations(frame: pd.DataFrame, acknowledged: set[int], size: int) -> int:
    """Every generation in ``frame`` is whole (``size`` paths ``g<generation>/<part>``) and every
    acknowledged one is there; returns how many unacknowledged generations are present (in full)."""
    counts = frame.groupby("generation")["path"].count()
    for generation, count in counts.items():
        assert count == size, f"generation {generation} is half-written: {count} of {size}"
        assert set(frame.loc[frame["generation"] == generation, "path"]) == {f"g{generation}/{p}" for p in range(size)}
    missing = sorted(acknowledged - set(counts.index))
    assert not missing, f"acknowledged generations lost: {missing[:10]}"
    return len(set(counts.index) - acknowledged)


def kill_while_writing(service: ChildService, writer, kills: int, most: int, seed: int) -> None:
    """SIGKILLs and restarts ``service`` ``kills`` times, each time after 1 to ``most`` more writes of
    ``writer`` (a thread with ``acknowledged`` and ``stopping``) were acknowledged; then stops the writer."""
    rng = random.Random(seed)
    try:
        for _ in range(kills):
            writer.acknowledged.wait_for_more(rng.randint(1, most), writer)
            service.kill()
            service.start()
        writer.acknowledged.wait_for_more(1, writer)
    finally:
        writer.stopping.set()
        writer.join(timeout=60)
