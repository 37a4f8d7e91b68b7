"""Parses Flight tickets and descriptors: ``flight_pb2.FlightTicket`` / ``FlightCommand`` bytes, and paths."""

from __future__ import annotations

from typing import TypeVar

import pyarrow.flight as fl
from google.protobuf.message import DecodeError

from thresher.v1 import common_pb2, flight_pb2

_Kinded = TypeVar("_Kinded", flight_pb2.FlightTicket, flight_pb2.FlightCommand)


class TicketError(ValueError):
    """Ticket or command bytes that are not a usable Thresher message; the message says what is wrong."""


def parse_ticket(raw: bytes) -> flight_pb2.FlightTicket:
    """A FlightTicket with one of its kinds set; raises TicketError otherwise."""
    return _parse(flight_pb2.FlightTicket, raw, "ticket")


def parse_command(raw: bytes) -> flight_pb2.FlightCommand:
    """A FlightCommand with one of its kinds set; raises TicketError otherwise."""
    return _parse(flight_pb2.FlightCommand, raw, "descriptor command")


def descriptor_path(descriptor: fl.FlightDescriptor) -> list[str]:
    """A path descriptor's parts as text (pyarrow gives bytes; what is not UTF-8 is replaced)."""
    return [part.decode("utf-8", "replace") if isinstance(part, bytes) else part for part in descriptor.path]


def query_ticket(query: common_pb2.Query) -> bytes:
    """The ticket that streams ``query``'s result."""
    ticket: bytes = flight_pb2.FlightTicket(query=flight_pb2.QueryTicket(query=query)).SerializeToString()
    return ticket


def _parse(message_type: type[_Kinded], raw: bytes, what: str) -> _Kinded:
    name = message_type.DESCRIPTOR.full_name
    if not raw:
        raise TicketError(f"the {what} is empty; expected a serialized {name}")
    try:
        message: _Kinded = message_type.FromString(raw)
    except DecodeError as error:
        raise TicketError(f"the {what} is not a serialized {name}: {error}") from None
    if message.WhichOneof("kind") is None:
        kinds = ", ".join(field.name for field in message_type.DESCRIPTOR.oneofs_by_name["kind"].fields)
        raise TicketError(f"the {what} sets none of {name}'s kinds ({kinds}); is it a {name}?")
    return message
