"""A metadata service killed with SIGKILL mid-write loses no acknowledged write and half-applies none.

A writer sends requests of three datapoints each, all carrying one generation number; the test kills
the service at random moments (chosen by how many writes were acknowledged since the last start, not
by time), restarts it on the same store, and at the end checks every generation: acknowledged ones
are present in full, and any other is present in full or not at all.
"""

from __future__ import annotations

import threading

import grpc
import pytest

from tests.reliability.harness import (
    Acknowledged,
    ChildService,
    check_generations,
    fast_channel,
    kill_while_writing,
    read_all,
)
from thresher.core.types import to_proto_value
from thresher.v1 import metadata_service_pb2 as pb
from thresher.v1 import metadata_service_pb2_grpc

pytestmark = pytest.mark.slow  # SIGKILL loop: dozens of service restarts, minutes on 2 cores

KILLS = 50
PATHS_PER_WRITE = 3


class _Writer(threading.Thread):
    """Writes generation after generation, retrying through outages; records what was acknowledged."""

    def __init__(self, stub, datasource_id: int) -> None:
        super().__init__(daemon=True)
        self.stub = stub
        self.datasource_id = datasource_id
        self.acknowledged = Acknowledged()
        self.attempted = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        generation = 0
        while not self.stopping.is_set():
            request = pb.UpsertMetadataRequest(
                datasource_id=self.datasource_id,
                datapoints=[
                    pb.DatapointValues(path=f"g{generation}/{part}", values={"generation": to_proto_value(generation)})
                    for part in range(PATHS_PER_WRITE)
                ],
                create_missing=True,
            )
            self.attempted = generation + 1
            try:
                self.stub.UpsertMetadata(request, timeout=30, wait_for_ready=True)
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            else:
                self.acknowledged.add(generation)
            generation += 1


@pytest.mark.timeout(600)
def test_sigkill_during_writes_loses_no_acknowledged_write(tmp_path):
    service = ChildService("metadata", "--home", str(tmp_path / "home"))
    service.start()
    channel = fast_channel(service.address)
    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    source = stub.CreateDatasource(
        pb.CreateDatasourceRequest(namespace="crash/test", name="d", source_uri="file:///x"),
        wait_for_ready=True,
        timeout=60,
    ).datasource
    writer = _Writer(stub, source.id)
    writer.start()
    kill_while_writing(service, writer, KILLS, most=6, seed=1234)
    frame = read_all(stub, source.id)
    kills = service.kills
    service.kill()
    channel.close()

    unacknowledged = check_generations(frame, writer.acknowledged.generations, PATHS_PER_WRITE)
    print(
        f"{kills} kills; {len(writer.acknowledged.generations)} acknowledged writes of {writer.attempted} attempted, "
        f"all present; {unacknowledged} unacknowledged writes present in full"
    )
