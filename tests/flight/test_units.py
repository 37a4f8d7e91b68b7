"""Ticket parsing, status mapping and read-ahead, without servers."""

import threading

import grpc
import pyarrow.flight as fl
import pytest

from thresher.services.flight.backend import response_part
from thresher.services.flight.flight_errors import flight_errors, from_rpc_error
from thresher.services.flight.readahead import read_ahead
from thresher.services.flight.tickets import TicketError, parse_command, parse_ticket, query_ticket
from thresher.v1 import common_pb2, flight_pb2
from thresher.v1 import metadata_service_pb2 as mpb


class _RpcError(grpc.RpcError, grpc.Call):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details

    # The rest of grpc.Call is not needed here.
    initial_metadata = trailing_metadata = is_active = time_remaining = cancel = add_callback = lambda self, *a: None


def test_query_tickets_round_trip():
    query = common_pb2.Query(datasource_id=5, limit=3)
    assert parse_ticket(query_ticket(query)).query.query == query
    assert parse_command(flight_pb2.FlightCommand(query=query).SerializeToString()).query == query


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "the ticket is empty"),
        (b"\x0a\xff", "the ticket is not a serialized thresher.v1.FlightTicket"),
    ],
)
def test_malformed_tickets_name_the_problem(raw, message):
    with pytest.raises(TicketError, match=message):
        parse_ticket(raw)


def test_a_command_with_no_kind_lists_the_kinds():
    with pytest.raises(
        TicketError,
        match=r"sets none of thresher.v1.FlightCommand's kinds \(query, upsert, bag_dataset, estimated_query\)",
    ):
        parse_command(b"\x50\x01")  # parses, but holds only an unknown field


@pytest.mark.parametrize(
    "code, kind",
    [
        (grpc.StatusCode.NOT_FOUND, fl.FlightServerError),
        (grpc.StatusCode.INVALID_ARGUMENT, fl.FlightServerError),
        (grpc.StatusCode.ALREADY_EXISTS, fl.FlightServerError),
        (grpc.StatusCode.UNAVAILABLE, fl.FlightUnavailableError),
        (grpc.StatusCode.UNAUTHENTICATED, fl.FlightUnauthenticatedError),
        (grpc.StatusCode.PERMISSION_DENIED, fl.FlightUnauthorizedError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, fl.FlightTimedOutError),
        (grpc.StatusCode.CANCELLED, fl.FlightCancelledError),
        (grpc.StatusCode.INTERNAL, fl.FlightInternalError),
    ],
)
def test_rpc_errors_become_flight_errors_named_by_status(code, kind):
    error = from_rpc_error(_RpcError(code, "datasource 42 not found"))
    # An unavailable metadata service is named as the one that is down, not this flight service.
    upstream = (
        "upstream: the metadata service at its configured address: " if code == grpc.StatusCode.UNAVAILABLE else ""
    )
    assert type(error) is kind and str(error) == f"{code.name}: {upstream}datasource 42 not found"


def test_an_unavailable_metadata_service_is_named_with_its_address():
    error = from_rpc_error(_RpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"), "10.0.0.5:7470")
    assert str(error) == "UNAVAILABLE: upstream: the metadata service at 10.0.0.5:7470: connection refused"


def test_flight_errors_translates_rpc_and_ticket_errors():
    with pytest.raises(fl.FlightServerError, match="^NOT_FOUND: gone$"):
        with flight_errors():
            raise _RpcError(grpc.StatusCode.NOT_FOUND, "gone")
    with pytest.raises(fl.FlightServerError, match="^INVALID_ARGUMENT: bad ticket$"):
        with flight_errors():
            raise TicketError("bad ticket")


def test_read_ahead_yields_everything_in_order_then_the_error():
    def source():
        yield from range(10)
        raise ValueError("stream broke")

    got = []
    with pytest.raises(ValueError, match="stream broke"):
        for item in read_ahead(source(), depth=2):
            got.append(item)
    assert got == list(range(10))


def test_closing_read_ahead_early_stops_the_reader_and_calls_on_close():
    closed = threading.Event()
    finished = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            finished.set()

    items = read_ahead(endless(), depth=2, on_close=closed.set)
    assert next(items) == 0
    items.close()
    assert closed.is_set()
    assert finished.wait(10)  # the reading thread stopped pulling and let its source go


@pytest.mark.parametrize(
    "message",
    [
        mpb.ExecuteQueryResponse(schema=b"s" * 5),
        mpb.ExecuteQueryResponse(record_batch=b"b" * 300),  # a two-byte length
        mpb.ExecuteQueryResponse(record_batch=b""),
        mpb.ExecuteQueryResponse(),
    ],
)
def test_response_parts_are_read_without_parsing_the_message(message):
    part, payload = response_part(message.SerializeToString())
    assert part == message.WhichOneof("part")
    assert bytes(payload) == (getattr(message, part) if part else b"")


def test_responses_with_more_than_one_field_fall_back_to_protobuf():
    raw = (
        mpb.ExecuteQueryResponse(schema=b"old").SerializeToString()
        + mpb.ExecuteQueryResponse(record_batch=b"new").SerializeToString()
    )  # the last oneof member wins
    assert response_part(raw) == ("record_batch", b"new")
