"""The Flight SQL surface of the flight service (docs/design.md, "The Flight surface"): statement queries, prepared statements
with bound parameters, and catalog listings, over the metadata service's SQL calls."""

from thresher.services.flight.sql.handler import FlightSqlHandler
from thresher.services.flight.sql.protocol import command_of, unpack

__all__ = ["FlightSqlHandler", "command_of", "unpack"]
