"""Decoding Flight SQL's messages: each travels as a ``google.protobuf.Any`` whose type URL names it.

Thresher's own tickets and commands are ``FlightTicket`` / ``FlightCommand`` messages; a Flight SQL
message is recognised only by the Any's type URL prefix, so the two can never be confused even where
one's bytes happen to parse as the other's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.flight as fl
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from thresher.flight_sql_protocol import flight_sql_pb2 as fsql
from thresher.services.flight.tickets import TicketError

PACKAGE = fsql.DESCRIPTOR.package
TYPE_URL_PREFIX = f"type.googleapis.com/{PACKAGE}."


@dataclass(frozen=True)
class UnsupportedMessage:
    """Stands for a Flight SQL message this server does not declare; ``name`` is its message name."""

    name: str


def unpack(raw: bytes) -> Message | UnsupportedMessage | None:
    """The Flight SQL message in ``raw``, or None when ``raw`` is not a Flight SQL Any (a Thresher message)."""
    if not raw:
        return None
    try:
        wrapper = any_pb2.Any.FromString(raw)
    except DecodeError:
        return None
    if not wrapper.type_url.startswith(TYPE_URL_PREFIX):
        return None
    name = wrapper.type_url[len(TYPE_URL_PREFIX) :]
    message_type = fsql.DESCRIPTOR.message_types_by_name.get(name)
    if message_type is None:
        return UnsupportedMessage(name)
    message_class = getattr(fsql, message_type.name)
    try:
        return message_class.FromString(wrapper.value)
    except DecodeError as error:
        raise TicketError(f"malformed Flight SQL {name}: {error}") from None


def command_of(descriptor: fl.FlightDescriptor) -> Message | UnsupportedMessage | None:
    """The Flight SQL command of a command descriptor; None for path descriptors and Thresher commands."""
    if descriptor.descriptor_type != fl.DescriptorType.CMD:
        return None
    return unpack(descriptor.command)


def pack(message: Message) -> bytes:
    """``message`` as the serialized Any that Flight SQL puts in commands, tickets and action results."""
    wrapper = any_pb2.Any()
    wrapper.Pack(message)
    packed: bytes = wrapper.SerializeToString()
    return packed
