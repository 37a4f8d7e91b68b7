"""A metadata replica that dies behind a flight service that is up: the client's error names the replica
(its gRPC port or its data port), never the flight service, for every read that needs it."""

from __future__ import annotations

import pandas as pd
import pyarrow.flight as fl
import pytest

import thresher
from tests.downloads.conftest import indexed
from thresher.core.errors import ServiceUnavailableError
from thresher.flight_bytes import blob_chunks, file_chunks
from thresher.v1 import common_pb2, flight_pb2


@pytest.fixture
def dying(tmp_path):
    """A metadata replica (gRPC and data port) and a flight service on it, with a datasource holding a file
    and a blob; ``kill()`` stops the replica and leaves the flight service running."""
    from thresher.services.flight.server import create_server as create_flight
    from thresher.services.metadata.data_port import create_data_port
    from thresher.services.metadata.server import create_server as create_metadata
    from thresher.services.metadata.server import open_store

    store = open_store(str(tmp_path / "home"))
    metadata, metadata_port = create_metadata("127.0.0.1:0", store)
    data_port, data_port_number = create_data_port("127.0.0.1:0", store)
    addresses = {"metadata": f"127.0.0.1:{metadata_port}", "data port": f"127.0.0.1:{data_port_number}"}
    flight, flight_port = create_flight(
        "127.0.0.1:0",
        addresses["metadata"],
        advertise_host="127.0.0.1",
        home=str(tmp_path / "home"),
        metadata_data_address=addresses["data port"],
    )
    addresses["flight"] = f"127.0.0.1:{flight_port}"
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.bin").write_bytes(b"a")
    connection = thresher.Connection(addresses["metadata"], addresses["flight"], retry_timeout=0.3)
    ds = indexed(connection, "team/dying", (tmp_path / "files").as_uri(), ["a.bin"])
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["a.bin"], "thumb": [b"thumb"]}))
    digest = ds.get_datapoint("a.bin")["thumb"]

    def kill() -> None:
        metadata.stop(grace=None).wait()
        data_port.shutdown()

    yield connection, ds.id, digest, addresses, kill
    flight.shutdown()
    connection.close()
    store.close()


def _named(call, service: str, address: str, flight: str) -> str:
    with pytest.raises(ServiceUnavailableError) as down:
        call()
    message = str(down.value)
    assert f"{service} at {address}" in message, message
    assert f"unavailable at {flight}" not in message, message  # the flight service is up: not the one blamed
    return message


def test_a_dead_metadata_replica_is_named_not_the_flight_service_that_relays_to_it(dying):
    connection, datasource_id, digest, addresses, kill = dying
    assert connection.read_query(common_pb2.Query(datasource_id=datasource_id)).num_rows == 1  # all up
    kill()
    flight = addresses["flight"]
    # A query ticket's rows come from the data port; planning a read (its partitions), a description,
    # a file and a blob need the gRPC port.
    ticket = fl.Ticket(
        flight_pb2.FlightTicket(
            query=flight_pb2.QueryTicket(query=common_pb2.Query(datasource_id=datasource_id))
        ).SerializeToString()
    )
    _named(
        lambda: connection._flight_call(lambda: connection.flight.do_get(ticket).read_all(), idempotent=True),
        "the metadata service's data port",
        addresses["data port"],
        flight,
    )
    _named(
        lambda: connection.read_query(common_pb2.Query(datasource_id=datasource_id)),
        "the metadata service",
        addresses["metadata"],
        flight,
    )
    descriptor = fl.FlightDescriptor.for_command(
        flight_pb2.FlightCommand(query=common_pb2.Query(datasource_id=datasource_id)).SerializeToString()
    )
    _named(
        lambda: connection._flight_call(lambda: connection.flight.get_flight_info(descriptor), idempotent=True),
        "the metadata service",
        addresses["metadata"],
        flight,
    )
    _named(
        lambda: b"".join(file_chunks(connection, datasource_id, "a.bin")),
        "the metadata service",
        addresses["metadata"],
        flight,
    )
    message = _named(
        lambda: b"".join(blob_chunks(connection, digest, datasource_id)),
        "the metadata service",
        addresses["metadata"],
        flight,
    )
    assert f"the service at {flight} that relayed the call is up" in message, message
