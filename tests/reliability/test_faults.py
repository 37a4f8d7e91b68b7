"""Faults of peers and storage: a service that is down or refusing, a metadata service restarted under a
query the flight service is relaying, an S3 endpoint that disappears mid-stream or goes silent."""

from __future__ import annotations

import os

import grpc
import pyarrow as pa
import pyarrow.flight as fl
import pytest

import thresher
from tests.downloads.conftest import indexed
from tests.reliability.harness import ChildService, fast_channel, free_port, poll
from tests.reliability.proxy import FaultProxy
from tests.storage_endpoints import unique_bucket
from thresher.connection import Connection
from thresher.core import status
from thresher.core.errors import ServiceUnavailableError, ThresherError
from thresher.core.storage import open_storage
from thresher.core.storage.blobs import open_blob_store
from thresher.core.storage.storage_errors import StorageUnavailableError
from thresher.services.flight.data_port_client import DataPortClient
from thresher.services.flight.servicer import ThresherFlightServer
from thresher.services.grpc_server import new_server
from thresher.v1 import common_pb2, flight_pb2, metadata_service_pb2_grpc
from thresher.v1 import metadata_service_pb2 as mpb

SERVICE = "thresher.v1.MetadataService"


class _Refusing:
    """A stand-in metadata service answering UNAVAILABLE (``failures`` times, then for real) and counting calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._handler(name, answer),
                request_deserializer=request.FromString,
                response_serializer=lambda message: message.SerializeToString(),
            )
            for name, request, answer in (
                (
                    "GetDatasource",
                    mpb.GetDatasourceRequest,
                    mpb.GetDatasourceResponse(datasource=common_pb2.Datasource(id=7, name="d")),
                ),
                ("UpsertMetadata", mpb.UpsertMetadataRequest, mpb.UpsertMetadataResponse()),
            )
        }
        self.server = new_server()
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def _handler(self, name: str, answer):
        def handle(request, context):
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.calls[name] <= self.failures:
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
            return answer

        return handle


@pytest.fixture
def refusing():
    made = []

    def make(failures: int) -> _Refusing:
        made.append(_Refusing(failures))
        return made[-1]

    yield make
    for service in made:
        service.server.stop(grace=None)


@pytest.mark.slow(reason="waits out the retries")
def test_an_idempotent_read_retries_while_the_service_refuses_then_fails_naming_it(refusing):
    service = refusing(failures=10**6)
    with Connection(metadata_address=service.address, retry_timeout=2.0) as conn:
        with pytest.raises(ServiceUnavailableError, match=service.address):
            conn.call_metadata("GetDatasource", mpb.GetDatasourceRequest(id=7), idempotent=True)
    assert service.calls["GetDatasource"] > 1


def test_an_idempotent_read_succeeds_once_the_service_answers(refusing):
    service = refusing(failures=2)
    with Connection(metadata_address=service.address, retry_timeout=30.0) as conn:
        answer = conn.call_metadata("GetDatasource", mpb.GetDatasourceRequest(id=7), idempotent=True)
    assert answer.datasource.id == 7 and service.calls["GetDatasource"] == 3


def test_a_write_is_never_retried(refusing):
    service = refusing(failures=1)
    with Connection(metadata_address=service.address, retry_timeout=30.0) as conn:
        with pytest.raises(ServiceUnavailableError, match=service.address):
            conn.call_metadata("UpsertMetadata", mpb.UpsertMetadataRequest(datasource_id=7, create_missing=True))
    assert service.calls["UpsertMetadata"] == 1


def test_services_that_are_down_are_named():
    metadata, flight = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with Connection(metadata_address=metadata, flight_address=flight, retry_timeout=0.3) as conn:
        with pytest.raises(ServiceUnavailableError, match=metadata):
            thresher.datasources.get_datasource(id=1, connection=conn)
        with pytest.raises(ServiceUnavailableError, match=flight):
            conn.read_query(common_pb2.Query(datasource_id=1))


# -- the flight service while the metadata service restarts under a query ------------------------------

ROWS = 400_000  # about 100 MB of results: far more than the relay and gRPC's windows buffer


def _ticket(query: common_pb2.Query) -> fl.Ticket:
    return fl.Ticket(flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=query)).SerializeToString())


@pytest.mark.slow  # restarts a metadata service process mid-query
@pytest.mark.timeout(180)
@pytest.mark.parametrize("relay", ["grpc", "data-port"])
def test_a_metadata_restart_mid_query_fails_the_query_clearly_and_the_next_one_works(tmp_path, relay):
    options = fl.FlightCallOptions(timeout=60)
    data_address = f"127.0.0.1:{free_port()}"
    port_arguments = ["--data-address", data_address] if relay == "data-port" else []
    with ChildService("metadata", "--home", str(tmp_path / "home"), *port_arguments) as metadata:
        channel = fast_channel(metadata.address)
        source = (
            metadata_service_pb2_grpc.MetadataServiceStub(channel)
            .CreateDatasource(
                mpb.CreateDatasourceRequest(namespace="faults/relay", name="d", source_uri="file:///x"),
                wait_for_ready=True,
                timeout=60,
            )
            .datasource
        )
        server = ThresherFlightServer(
            "grpc://127.0.0.1:0",
            channel,
            "127.0.0.1",
            blobs=open_blob_store(home=str(tmp_path / "blobs")),
            data_port=DataPortClient(data_address) if port_arguments else None,
        )
        client = fl.FlightClient(f"grpc://127.0.0.1:{server.port}")
        try:
            table = pa.table({"path": [f"p{i:07d}" for i in range(ROWS)], "text": pa.repeat("x" * 250, ROWS)})
            command = flight_pb2.FlightCommand(
                upsert=flight_pb2.UpsertCommand(datasource_id=source.id, create_missing=True)
            )
            writer, reader = client.do_put(
                fl.FlightDescriptor.for_command(command.SerializeToString()), table.schema, options=options
            )
            writer.write_table(table, max_chunksize=20_000)
            writer.done_writing()
            reader.read()
            writer.close()

            stream = client.do_get(_ticket(common_pb2.Query(datasource_id=source.id)), options=options)
            first = stream.read_chunk().data.num_rows
            metadata.kill()
            metadata.start()
            with pytest.raises((fl.FlightError, pa.ArrowException)) as failure:
                stream.read_all()
            mapped = status.from_flight_error(failure.value)
            assert isinstance(mapped, ThresherError) and str(mapped), mapped
            assert first < ROWS

            grpc.channel_ready_future(channel).result(timeout=60)
            assert (
                poll(
                    lambda: _rows_or_none(client, _ticket(common_pb2.Query(datasource_id=source.id, limit=5))),
                    timeout=60,
                    what="a query after the restart",
                )
                == 5
            )
        finally:
            client.close()
            server.shutdown()


def _rows_or_none(client: fl.FlightClient, ticket: fl.Ticket) -> int | None:
    """The rows a query returns, or None while the service it needs is still coming back (UNAVAILABLE)."""
    try:
        return client.do_get(ticket, options=fl.FlightCallOptions(timeout=60)).read_all().num_rows
    except fl.FlightUnavailableError:
        return None


# -- S3 endpoint faults ------------------------------------------------------------------------------

SIZE = 3 * 1024 * 1024


@pytest.fixture
def s3_behind_proxy(s3_endpoint, local_services, namespace):
    """A 3 MiB object on the S3 endpoint, a datasource over it, and a fault proxy before the endpoint."""
    bucket = unique_bucket("faults")
    s3_endpoint.s3_client().create_bucket(Bucket=bucket)
    open_storage(f"s3://{bucket}/data").write("big.bin", os.urandom(SIZE))
    host, port = s3_endpoint.url.removeprefix("http://").split(":")
    proxy = FaultProxy(host, int(port))
    conn = local_services.connect()
    ds = indexed(conn, namespace, f"s3://{bucket}/data", ["big.bin"])
    yield ds, proxy, s3_endpoint
    thresher.disable_bucket_downloaders()
    proxy.close()


def _proxied_client(endpoint, proxy: FaultProxy):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=proxy.url,
        region_name="us-east-1",
        **endpoint.credentials,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )


def _leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_an_endpoint_that_disappears_mid_download_leaves_no_partial_file(s3_behind_proxy, tmp_path):
    ds, proxy, endpoint = s3_behind_proxy
    proxy.cut_after = SIZE // 3
    thresher.enable_s3_bucket_downloader(_proxied_client(endpoint, proxy))
    with pytest.raises(StorageUnavailableError, match=proxy.url):
        ds.all().download_files(tmp_path / "out", keep_source_prefix=False)
    assert _leftovers(tmp_path / "out") == []


@pytest.mark.slow(reason="waits out a read timeout")
def test_a_silent_endpoint_times_out_and_leaves_no_partial_file(s3_behind_proxy, tmp_path):
    ds, proxy, endpoint = s3_behind_proxy
    thresher.enable_s3_bucket_downloader(_proxied_client(endpoint, proxy))
    proxy.hold()
    try:
        with pytest.raises(StorageUnavailableError, match="timeout|timed out"):
            ds.all().download_files(tmp_path / "out", keep_source_prefix=False)
    finally:
        proxy.release()
    assert _leftovers(tmp_path / "out") == []
