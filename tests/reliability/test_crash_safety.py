"""A metadata service killed with SIGKILL mid-write loses no acknowledged write and half-applies none.

A writer sends requests of three datapoints each, all carrying one generation number; the test kills
the service at random moments (chosen by how many writes were acknowledged since the last start, not
by time), restarts it on the same store, and at the end checks every generation: acknowledged ones
are present in full, and any other is present in full or not at all.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading

import grpc
import pandas as pd
import pytest

from thresher.arrow_io import read_batch, read_schema
from thresher.transport import GRPC_OPTIONS
from thresher.types import to_proto_value
from thresher.v1 import common_pb2, metadata_service_pb2 as pb, metadata_service_pb2_grpc

KILLS = 50
PATHS_PER_WRITE = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Service:
    def __init__(self, home: str) -> None:
        self.home = home
        self.address = f"127.0.0.1:{_free_port()}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "thresher.services.metadata", "--address", self.address, "--home", self.home],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


class _Writer(threading.Thread):
    """Writes generation after generation, retrying through outages; records what was acknowledged."""

    def __init__(self, stub, datasource_id: int) -> None:
        super().__init__(daemon=True)
        self.stub = stub
        self.datasource_id = datasource_id
        self.acknowledged: set[int] = set()
        self.attempted = 0
        self.progress = threading.Condition()
        self.stopping = threading.Event()

    def run(self) -> None:
        generation = 0
        while not self.stopping.is_set():
            request = pb.UpsertMetadataRequest(datasource_id=self.datasource_id, datapoints=[
                pb.DatapointValues(path=f"g{generation}/{part}", values={"generation": to_proto_value(generation)})
                for part in range(PATHS_PER_WRITE)])
            self.attempted = generation + 1
            try:
                self.stub.UpsertMetadata(request, timeout=30, wait_for_ready=True)
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            else:
                with self.progress:
                    self.acknowledged.add(generation)
                    self.progress.notify_all()
            generation += 1

    def wait_for_acknowledgements(self, count: int) -> None:
        with self.progress:
            target = len(self.acknowledged) + count
            assert self.progress.wait_for(lambda: len(self.acknowledged) >= target, timeout=60)


def _read_all(stub, datasource_id: int) -> pd.DataFrame:
    responses = iter(stub.ExecuteQuery(pb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=datasource_id))))
    schema = read_schema(next(responses).schema)
    return pd.concat([read_batch(r.record_batch, schema).to_pandas() for r in responses] or [schema.empty_table().to_pandas()])


@pytest.mark.timeout(600)
def test_sigkill_during_writes_loses_no_acknowledged_write(tmp_path):
    service = _Service(str(tmp_path / "home"))
    service.start()
    # Reconnect quickly after each restart instead of gRPC's default backoff of up to two minutes.
    channel = grpc.insecure_channel(service.address, options=GRPC_OPTIONS + [
        ("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 250)])
    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    source = stub.CreateDatasource(pb.CreateDatasourceRequest(namespace="crash/test", name="d", source_uri="file:///x"),
                                   wait_for_ready=True, timeout=60).datasource
    writer = _Writer(stub, source.id)
    writer.start()
    rng = random.Random(1234)
    try:
        for _ in range(KILLS):
            writer.wait_for_acknowledgements(rng.randint(1, 6))
            service.kill()
            service.start()
        writer.wait_for_acknowledgements(1)
    finally:
        writer.stopping.set()
        writer.join(timeout=60)
    frame = _read_all(stub, source.id)
    service.kill()
    channel.close()

    counts = frame.groupby("generation")["path"].count()
    for generation, count in counts.items():
        assert count == PATHS_PER_WRITE, f"generation {generation} is half-written: {count} of {PATHS_PER_WRITE}"
        assert set(frame.loc[frame["generation"] == generation, "path"]) == {
            f"g{generation}/{p}" for p in range(PATHS_PER_WRITE)}
    missing = sorted(writer.acknowledged - set(counts.index))
    assert not missing, f"acknowledged generations lost after {KILLS} kills: {missing[:10]}"
    print(f"{KILLS} kills; {len(writer.acknowledged)} acknowledged writes of {writer.attempted} attempted, all present; "
          f"{len(set(counts.index) - writer.acknowledged)} unacknowledged writes present in full")
