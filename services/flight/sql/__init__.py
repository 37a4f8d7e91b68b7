"""The Flight SQL surface of the flight service (docs/design.md, "The Flight surface"): statement queries, prepared statements
with bound parameters, and catalog listings, over the metadata service's SQL calls."""

from .handler import FlightSqlHandler
from .protocol import command_of, unpack

__all__ = ["FlightSqlHandler", "command_of", "unpack"]
