"""Limits: requests over the message size fail clearly and write nothing, calls have deadlines, and a
big query result streams as many messages from a lazy store iterator."""

from __future__ import annotations

import threading

import grpc
import pandas as pd
import pyarrow as pa
import pytest

import thresher
from thresher.connection import Connection
from thresher.core.errors import ResourceExhaustedError, ServiceTimeoutError
from thresher.core.transport import GRPC_OPTIONS, MAX_MESSAGE_BYTES
from thresher.services.grpc_server import new_server
from thresher.v1 import common_pb2
from thresher.v1 import metadata_service_pb2 as mpb

OVER = "x" * (MAX_MESSAGE_BYTES + 1024)


@pytest.fixture
def source(client, namespace, tmp_path):
    return thresher.datasources.create_datasource(namespace, "limits", tmp_path, connection=client).wait_until_ready(
        timeout=60, progress=False
    )


def test_a_grpc_request_over_the_limit_is_refused_by_the_service(local_services):
    options = [(name, value) for name, value in GRPC_OPTIONS if name != "grpc.max_send_message_length"]
    with grpc.insecure_channel(
        local_services.metadata_address, options=options + [("grpc.max_send_message_length", 2 * MAX_MESSAGE_BYTES)]
    ) as channel:
        upsert = channel.unary_unary(
            f"/{mpb.DESCRIPTOR.services_by_name['MetadataService'].full_name}/UpsertMetadata",
            request_serializer=mpb.UpsertMetadataRequest.SerializeToString,
            response_deserializer=mpb.UpsertMetadataResponse.FromString,
        )
        request = mpb.UpsertMetadataRequest(
            datasource_id=1,
            datapoints=[mpb.DatapointValues(path="big", values={"text": common_pb2.Value(string_value=OVER)})],
            create_missing=True,
        )
        with pytest.raises(grpc.RpcError) as failure:
            upsert(request, timeout=60)
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in failure.value.details()


def test_a_metadata_write_over_the_limit_raises_a_specific_error_and_writes_nothing(source):
    with pytest.raises(ResourceExhaustedError, match="MiB"), source.metadata_context(create_missing=True) as context:
        context.update_metadata("big", {"text": OVER})
    assert source.count() == 0


@pytest.mark.parametrize("small_rows", [1, 5000])
def test_a_flight_upload_of_a_row_over_the_limit_fails_clearly_and_writes_nothing(source, small_rows):
    # Among many small rows too: the big row is found inside a batch that is over the limit as a whole.
    paths = [f"small-{i}" for i in range(small_rows)]
    texts = ["s"] * small_rows
    frame = pd.DataFrame({"path": [*paths[:1], "big", *paths[1:]], "text": [*texts[:1], OVER, *texts[1:]]})
    with pytest.raises(ResourceExhaustedError, match="MiB"):
        source.upload_metadata_from_dataframe(frame, create_missing=True)
    assert source.count() == 0


def test_a_call_to_a_silent_service_ends_at_its_deadline():
    release = threading.Event()
    calls = []

    def hang(request, context):
        calls.append(request)
        release.wait(30)
        return mpb.GetDatasourceResponse()

    server = new_server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "thresher.v1.MetadataService",
                {
                    "GetDatasource": grpc.unary_unary_rpc_method_handler(
                        hang,
                        request_deserializer=mpb.GetDatasourceRequest.FromString,
                        response_serializer=mpb.GetDatasourceResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        with Connection(metadata_address=address, call_timeout=0.5) as conn:
            with pytest.raises(ServiceTimeoutError, match=address):
                conn.call_metadata("GetDatasource", mpb.GetDatasourceRequest(id=1), idempotent=True)
        assert len(calls) == 1  # a deadline is not retried
    finally:
        release.set()
        server.stop(grace=None)


def test_a_big_result_streams_in_many_messages_from_a_lazy_iterator(local_services, source):
    rows = 30_000
    source.upload_metadata_from_dataframe(
        pd.DataFrame({"path": [f"p{i}" for i in range(rows)], "n": range(rows)}), create_missing=True
    )
    schema, batches = local_services._store.query(common_pb2.Query(datasource_id=source.id), 1000)
    assert not isinstance(batches, list | tuple)
    first = next(iter(batches))
    assert isinstance(first, pa.RecordBatch) and first.num_rows <= 1000
    batches.close()

    responses = list(
        source.connection.metadata.ExecuteQuery(
            mpb.ExecuteQueryRequest(query=common_pb2.Query(datasource_id=source.id), max_batch_rows=1000), timeout=60
        )
    )
    assert responses[0].WhichOneof("part") == "schema"
    assert len(responses) - 1 >= rows // 1000
