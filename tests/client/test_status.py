"""gRPC and Flight failures become Thresher exceptions that keep the service's message."""

import socket

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from thresher import datasources
from thresher.connection import Connection
from thresher.core.errors import (
    AlreadyExistsError,
    FieldTypeMismatchError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ServiceUnavailableError,
    UnknownFieldError,
)
from thresher.core.status import flight_message
from thresher.v1 import common_pb2


@pytest.mark.parametrize(
    "code, message, expected",
    [
        (grpc.StatusCode.NOT_FOUND, "datasource 'a/b' not found", NotFoundError),
        (grpc.StatusCode.NOT_FOUND, "field 'x' not found", UnknownFieldError),
        (grpc.StatusCode.ALREADY_EXISTS, "datasource 'a/b' already exists", AlreadyExistsError),
        (grpc.StatusCode.INVALID_ARGUMENT, "field 'x' has type int; got float value 1.5", FieldTypeMismatchError),
        (grpc.StatusCode.INVALID_ARGUMENT, "bad page token", InvalidArgumentError),
        (grpc.StatusCode.PERMISSION_DENIED, "not yours", PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, "no token", PermissionDeniedError),
        (grpc.StatusCode.INTERNAL, "disk on fire", ServiceError),
    ],
)
def test_grpc_status_codes_map_to_exceptions(fakes, code, message, expected):
    fakes.metadata.fail("GetDatasource", code, message)
    with pytest.raises(expected) as raised:
        datasources.get_datasource("alice/repo", "images", connection=fakes.connection)
    assert message in str(raised.value)
    assert type(raised.value) is expected


def test_unreachable_service_names_its_address():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    connection = Connection(address, address, address, retry_timeout=0)
    with pytest.raises(ServiceUnavailableError, match=address):
        datasources.get_datasource("a/b", "c", connection=connection)
    with pytest.raises(ServiceUnavailableError, match=address):
        connection.read_query(common_pb2.Query(datasource_id=1))


def test_idempotent_reads_retry_unavailable_and_writes_do_not(fakes, ds):
    fakes.metadata.fail("GetDatasource", grpc.StatusCode.UNAVAILABLE, "starting up")
    assert datasources.get_datasource("alice/repo", "images", connection=fakes.connection).id == 7
    assert len(fakes.metadata.requests("GetDatasource")) == 2
    fakes.metadata.fail("DeleteDatapoints", grpc.StatusCode.UNAVAILABLE, "starting up")
    with pytest.raises(ServiceUnavailableError, match="starting up"):
        ds.delete_datapoints(["a"])
    assert len(fakes.metadata.requests("DeleteDatapoints")) == 1


def test_a_prefixed_code_in_an_unknown_status_wins(fakes):
    # A relay may pass another service's code at the start of its message.
    fakes.metadata.fail("GetDatasource", grpc.StatusCode.UNKNOWN, "NOT_FOUND: datasource 3 is gone")
    with pytest.raises(NotFoundError, match="^datasource 3 is gone$"):
        datasources.get_datasource(id=3, connection=fakes.connection)


@pytest.mark.parametrize(
    "error, expected, message",
    [
        (
            flight.FlightServerError("INVALID_ARGUMENT: field 'x' has type int; got string"),
            FieldTypeMismatchError,
            "field 'x' has type int; got string",
        ),
        (
            flight.FlightServerError("NOT_FOUND: datasource 5 does not exist"),
            NotFoundError,
            "datasource 5 does not exist",
        ),
        (flight.FlightServerError("ALREADY_EXISTS: taken"), AlreadyExistsError, "taken"),
        (flight.FlightUnauthenticatedError("UNAUTHENTICATED: no token"), PermissionDeniedError, "no token"),
        (flight.FlightUnauthorizedError("no access"), PermissionDeniedError, "no access"),
        (pa.ArrowInvalid("bad ticket"), InvalidArgumentError, "bad ticket"),
        (KeyError("no such thing"), NotFoundError, "no such thing"),
        (flight.FlightInternalError("INTERNAL: oops"), ServiceError, "oops"),
    ],
)
def test_flight_errors_map_to_exceptions(fakes, ds, error, expected, message):
    fakes.flight.error = error
    with pytest.raises(expected) as raised:
        ds.all()
    assert type(raised.value) is expected
    assert str(raised.value).endswith(message)
    assert "Detail" not in str(raised.value) and "debug context" not in str(raised.value)


def test_upload_errors_map_too(fakes, ds):
    import pandas as pd

    fakes.flight.error = flight.FlightServerError("INVALID_ARGUMENT: field 'size' has type int; got string")
    with pytest.raises(FieldTypeMismatchError, match="field 'size' has type int; got string"):
        ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["a"], "other": ["x"]}), create_missing=True)
    assert fakes.flight.uploads == []


def test_flight_message_strips_client_context():
    raw = (
        "Flight returned unavailable error, with message: failed to connect. gRPC client debug context: "
        "UNAVAILABLE:failed. Client context: IOError: Server never sent a data message. Detail: Internal"
    )
    assert flight_message(flight.FlightUnavailableError(raw)) == "failed to connect"


def test_a_storage_failure_passed_on_by_the_flight_service_blames_the_storage():
    from thresher.core.status import STORAGE_MARK, exception_for
    from thresher.core.storage.storage_errors import StorageUnavailableError

    passed_on = exception_for(
        "UNAVAILABLE", f"{STORAGE_MARK}the S3 endpoint http://s3:9000 timed out", address="flight:7472"
    )
    assert type(passed_on) is StorageUnavailableError and str(passed_on) == "the S3 endpoint http://s3:9000 timed out"
    own = exception_for("UNAVAILABLE", "shutting down", address="flight:7472")
    assert type(own) is ServiceUnavailableError and "flight:7472" in str(own)
