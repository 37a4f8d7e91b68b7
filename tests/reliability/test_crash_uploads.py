"""Dataframe uploads through Flight DoPut survive SIGKILLs of the metadata service behind the flight service.

An uploader sends tables of a few rows through the (running) flight service, each table carrying one
generation number; the test SIGKILLs the metadata service after a random number of acknowledged uploads,
restarts it on the same store, and at the end checks every generation: acknowledged ones are present in
full, any other is present in full or not at all. The flight service is never restarted: it reconnects.
"""

from __future__ import annotations

import threading

import grpc
import pyarrow as pa
import pyarrow.flight as fl
import pytest

from tests.reliability.harness import (
    Acknowledged,
    ChildService,
    check_generations,
    fast_channel,
    free_port,
    kill_while_writing,
    read_all,
)
from thresher.core.storage.blobs import open_blob_store
from thresher.services.flight.data_port_client import DataPortClient
from thresher.services.flight.servicer import ThresherFlightServer
from thresher.v1 import flight_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as pb

pytestmark = pytest.mark.slow  # SIGKILL loop: dozens of service restarts, minutes on 2 cores

KILLS = 50
ROWS_PER_UPLOAD = 4


class _Uploader(threading.Thread):
    """Uploads generation after generation through Flight, retrying through outages."""

    def __init__(self, flight_uri: str, datasource_id: int, metadata_channel: grpc.Channel) -> None:
        super().__init__(daemon=True)
        self.metadata_channel = metadata_channel
        self.client = fl.FlightClient(flight_uri)
        command = flight_pb2.FlightCommand(
            upsert=flight_pb2.UpsertCommand(datasource_id=datasource_id, path_column="path", create_missing=True)
        )
        self.descriptor = fl.FlightDescriptor.for_command(command.SerializeToString())
        self.acknowledged = Acknowledged()
        self.attempted = 0
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        generation = 0
        options = fl.FlightCallOptions(timeout=30)
        while not self.stopping.is_set():
            table = pa.table(
                {
                    "path": [f"g{generation}/{part}" for part in range(ROWS_PER_UPLOAD)],
                    "generation": [generation] * ROWS_PER_UPLOAD,
                    "part": list(range(ROWS_PER_UPLOAD)),
                }
            )
            self.attempted = generation + 1
            try:
                writer, reader = self.client.do_put(self.descriptor, table.schema, options=options)
                # Two batches: a kill between them must not leave the first one written.
                writer.write_batch(table.to_batches()[0].slice(0, 2))
                writer.write_batch(table.to_batches()[0].slice(2))
                writer.done_writing()
                answer = reader.read()
                writer.close()
            except (fl.FlightUnavailableError, fl.FlightTimedOutError, fl.FlightCancelledError) as error:
                self.failures.append(type(error).__name__)
                # Retry once the flight service has reconnected to metadata, rather than spinning on refusals meanwhile.
                grpc.channel_ready_future(self.metadata_channel).result(timeout=60)
            else:
                response = pb.UpsertTableResponse.FromString(answer.to_pybytes())
                assert response.datapoints_written == ROWS_PER_UPLOAD, response
                self.acknowledged.add(generation)
            generation += 1


@pytest.mark.timeout(300)
def _store_arguments(request: pytest.FixtureRequest, engine: str, tmp_path, database: str) -> list[str]:
    """The metadata service's arguments for a fresh store on ``engine``."""
    arguments = ["--home", str(tmp_path / "home")]
    if engine == "postgres":
        import urllib.parse

        import adbc_driver_postgresql.dbapi as adbc_postgres

        url = request.getfixturevalue("postgres_url")
        with adbc_postgres.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
            cursor.execute(f"CREATE DATABASE {database}")
        arguments += ["--postgres-url", urllib.parse.urlsplit(url)._replace(path=f"/{database}").geturl()]
    return arguments


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
@pytest.mark.parametrize("hand_off", ["grpc", "data-port"])
def test_sigkill_of_metadata_during_flight_uploads_loses_no_acknowledged_upload(request, tmp_path, hand_off, engine):
    # The flight service hands each upload on over gRPC UpsertTable, or over the data port's DoPut. On
    # PostgreSQL the killed process's open transaction (and its advisory lock) dies with its connection.
    data_address = f"127.0.0.1:{free_port()}"
    listen = ["--metadata-data-listen", data_address] if hand_off == "data-port" else []
    store = _store_arguments(request, engine, tmp_path, f"crash_uploads_{hand_off.replace('-', '_')}")
    with ChildService("metadata", *store, *listen) as metadata:
        channel = fast_channel(metadata.address)
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        source = stub.CreateDatasource(
            pb.CreateDatasourceRequest(namespace="crash/uploads", name="d", source_uri="file:///x"),
            wait_for_ready=True,
            timeout=60,
        ).datasource
        # The flight service's own channel to metadata, with the short reconnect backoff, so that the
        # uploader can wait for it to reconnect after each restart.
        flight_channel = fast_channel(metadata.address)
        server = ThresherFlightServer(
            "grpc://127.0.0.1:0",
            flight_channel,
            "127.0.0.1",
            blobs=open_blob_store(home=str(tmp_path / "flight-home")),
            data_port=DataPortClient(data_address) if hand_off == "data-port" else None,
        )
        uploader = _Uploader(f"grpc://127.0.0.1:{server.port}", source.id, flight_channel)
        uploader.start()
        try:
            kill_while_writing(metadata, uploader, KILLS, most=4, seed=4321)
        finally:
            server.shutdown()
        frame = read_all(stub, source.id)
        channel.close()
        kills = metadata.kills

    unacknowledged = check_generations(frame, uploader.acknowledged.generations, ROWS_PER_UPLOAD)
    print(
        f"\n{kills} SIGKILLs of the metadata service on {engine} during Flight uploads ({hand_off}); "
        f"{len(uploader.acknowledged.generations)} acknowledged uploads of {uploader.attempted} attempted, all "
        f"present in full; {unacknowledged} unacknowledged present in full; "
        f"{len(uploader.failures)} uploads refused while it was down"
    )
