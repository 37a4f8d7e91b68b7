"""Malformed protobuf bytes sent straight to every gRPC method, and malformed Flight tickets, commands and
descriptors: each gets a specific status (or, where the bytes happen to parse, an ordinary answer), never
INTERNAL, UNKNOWN, a crash or a hang. The services run on a store of this module's own, since random
bytes that parse may well create or delete things.
"""

from __future__ import annotations

import grpc
import pyarrow as pa
import pyarrow.flight as fl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.core import status
from thresher.core.errors import ServiceError
from thresher.local_services import LocalServices
from thresher.v1 import common_pb2, flight_pb2
from thresher.v1 import metadata_service_pb2 as mpb
from thresher.v1 import scanner_service_pb2 as spb

CASES = {"gRPC requests": 0, "Flight tickets": 0, "Flight descriptors": 0, "Flight uploads": 0}
SPECIFIC = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED,
}
CALL_TIMEOUT = 20


def _methods(descriptor):
    service = descriptor.services_by_name
    for service_descriptor in service.values():
        for method in service_descriptor.methods:
            yield f"/{service_descriptor.full_name}/{method.name}", method


METHODS = sorted(_methods(mpb.DESCRIPTOR), key=lambda pair: pair[0]) + sorted(
    _methods(spb.DESCRIPTOR), key=lambda pair: pair[0]
)


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts():
    yield
    print("\nmalformed input: " + ", ".join(f"{count} {what}" for what, count in CASES.items()))


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    with LocalServices(home=str(tmp_path_factory.mktemp("malformed-home"))) as running:
        yield running


@pytest.fixture(scope="module")
def raw_channels(services):
    channels = {
        name: grpc.insecure_channel(address)
        for name, address in (("metadata", services.metadata_address), ("scanner", services.scanner_address))
    }
    yield channels
    for channel in channels.values():
        channel.close()


def _mutations(valid: bytes):
    """Bytes near a valid message: truncated, a byte changed, garbage appended, or random."""
    return st.one_of(
        st.binary(max_size=200),
        st.integers(0, max(0, len(valid) - 1)).map(lambda cut: valid[:cut]),
        st.tuples(st.integers(0, max(0, len(valid) - 1)), st.integers(0, 255)).map(
            lambda change: valid[: change[0]] + bytes([change[1]]) + valid[change[0] + 1 :] if valid else b""
        ),
        st.binary(min_size=1, max_size=20).map(lambda tail: valid + tail),
    )


SAMPLE = mpb.ExecuteQueryRequest(
    query=common_pb2.Query(
        datasource_id=1,
        filter=common_pb2.Filter(
            comparison=common_pb2.Comparison(
                field="n", op=common_pb2.COMPARISON_OPERATOR_EQ, value=common_pb2.Value(int_value=3)
            )
        ),
    )
).SerializeToString()


def _call(channel: grpc.Channel, path: str, method, payload: bytes) -> grpc.StatusCode:
    identity = {"request_serializer": None, "response_deserializer": None}
    try:
        if method.client_streaming:
            channel.stream_unary(path, **identity)(iter([payload, payload[::-1]]), timeout=CALL_TIMEOUT)
        elif method.server_streaming:
            list(channel.unary_stream(path, **identity)(payload, timeout=CALL_TIMEOUT))
        else:
            channel.unary_unary(path, **identity)(payload, timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        assert error.code() in SPECIFIC, f"{path} answered {error.code().name}: {error.details()}"
        assert error.details(), f"{path} gave {error.code().name} without saying why"
        return error.code()
    return grpc.StatusCode.OK


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(METHODS), payload=_mutations(SAMPLE))
def test_malformed_grpc_requests_get_a_specific_status(raw_channels, target, payload):
    path, method = target
    channel = raw_channels["scanner" if "ScannerService" in path else "metadata"]
    _call(channel, path, method, payload)
    CASES["gRPC requests"] += 1


TICKET = flight_pb2.FlightTicket(
    query=flight_pb2.QueryTicket(query=common_pb2.Query(datasource_id=1))
).SerializeToString()


def _flight_failure(error: BaseException) -> None:
    assert status.is_transport_error(error), f"not a Flight error: {error!r}"
    mapped = status.from_flight_error(error)
    assert not isinstance(mapped, ServiceError), f"unspecific Flight error: {mapped}"


@pytest.fixture(scope="module")
def flight_client(services):
    client = fl.FlightClient(f"grpc://{services.flight_address}")
    yield client
    client.close()


OPTIONS = fl.FlightCallOptions(timeout=CALL_TIMEOUT)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=_mutations(TICKET))
def test_malformed_tickets_get_a_specific_error(flight_client, raw):
    try:
        flight_client.do_get(fl.Ticket(raw), options=OPTIONS).read_all()
    except Exception as error:  # noqa: BLE001 - the assertion says which errors are acceptable
        _flight_failure(error)
    CASES["Flight tickets"] += 1


COMMAND = flight_pb2.FlightCommand(query=common_pb2.Query(datasource_id=1)).SerializeToString()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    descriptor=st.one_of(
        _mutations(COMMAND).map(fl.FlightDescriptor.for_command),
        st.lists(st.text(max_size=10), max_size=4).map(lambda p: fl.FlightDescriptor.for_path(*p)),
    )
)
def test_malformed_descriptors_get_a_specific_error(flight_client, descriptor):
    for call in (flight_client.get_flight_info, flight_client.get_schema):
        try:
            call(descriptor, options=OPTIONS)
        except Exception as error:  # noqa: BLE001
            _flight_failure(error)
    CASES["Flight descriptors"] += 1


UPSERT = flight_pb2.FlightCommand(
    upsert=flight_pb2.UpsertCommand(datasource_id=10**9, create_missing=True)
).SerializeToString()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=_mutations(UPSERT))
def test_malformed_upload_commands_get_a_specific_error_and_write_nothing(flight_client, raw):
    table = pa.table({"path": ["a"], "x": [1]})
    try:
        writer, reader = flight_client.do_put(fl.FlightDescriptor.for_command(raw), table.schema, options=OPTIONS)
        writer.write_table(table)
        writer.done_writing()
        reader.read()
        writer.close()
    except Exception as error:  # noqa: BLE001
        _flight_failure(error)
    CASES["Flight uploads"] += 1
