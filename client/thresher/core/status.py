"""Turns gRPC and Arrow Flight failures into Thresher's exception classes.

Both transports end up here: a gRPC error carries its status code; a Flight error carries a
pyarrow exception class and a message that the flight service starts with the metadata service's
status code name ("INVALID_ARGUMENT: field 'x' has type int; got ..."). The service's message is
kept in every exception.
"""

from __future__ import annotations

import re

import grpc
import pyarrow as pa
import pyarrow.flight as flight

from thresher.core import errors
from thresher.core.transport import MAX_MESSAGE_BYTES

# The flight service starts the message of an UNAVAILABLE it passes on from storage with this, so that
# the client blames the storage endpoint, not the service.
STORAGE_MARK = "storage: "
# ...and the message of an UNAVAILABLE it passes on from a service it called (the metadata service) with
# this, followed by that service and its address, so that the client names the node that is down, not
# the flight service that answered.
UPSTREAM_MARK = "upstream: "
_CODE_NAMES = frozenset(code.name for code in grpc.StatusCode)
_CODE_PREFIX = re.compile(r"^\s*'?([A-Z_]+):\s*")
# Flight appends debugging context to the server's message; everything from the first of these on is noise.
_FLIGHT_NOISE = (". Detail: ", ". gRPC client debug context: ", ". Client context: ")
# pyarrow's own wording before the server's message; GetSchema's errors arrive as "Unknown error: ...".
_FLIGHT_PREAMBLE = re.compile(r"^(Flight returned [a-z ]+ error, with message: |Unknown error: )")

# The Flight exception classes pyarrow raises for each gRPC status, most specific first.
_FLIGHT_CLASS_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (flight.FlightUnavailableError, "UNAVAILABLE"),
    (flight.FlightUnauthenticatedError, "UNAUTHENTICATED"),
    (flight.FlightUnauthorizedError, "PERMISSION_DENIED"),
    (flight.FlightTimedOutError, "DEADLINE_EXCEEDED"),
    (flight.FlightCancelledError, "CANCELLED"),
    (flight.FlightInternalError, "INTERNAL"),
    (pa.ArrowInvalid, "INVALID_ARGUMENT"),
    (pa.ArrowKeyError, "NOT_FOUND"),
    (pa.ArrowNotImplementedError, "UNIMPLEMENTED"),
)


def exception_for(code: str, message: str, address: str | None = None) -> errors.ThresherError:
    """The exception for a status code name and the service's message."""
    lowered = message.lower()
    if code == "NOT_FOUND":
        if re.search(r"\bfield\b", lowered):
            return errors.UnknownFieldError(message)
        return errors.NotFoundError(message)
    if code == "ALREADY_EXISTS":
        return errors.AlreadyExistsError(message)
    if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
        # The metadata service phrases type mismatches as "field 'x' has type int; got float value ...".
        if "has type" in lowered and "got" in lowered:
            return errors.FieldTypeMismatchError(message)
        if "are not in datasource" in lowered and "create_missing" in lowered:
            return errors.UnknownPathsError(message)
        if "unknown field" in lowered:
            return errors.UnknownFieldError(message)
        return errors.InvalidArgumentError(message)
    if code == "UNAVAILABLE" and message.startswith(STORAGE_MARK):
        from thresher.core.storage.storage_errors import StorageUnavailableError

        return StorageUnavailableError(message[len(STORAGE_MARK) :])
    if code == "UNAVAILABLE" and message.startswith(UPSTREAM_MARK):
        through = f" (the service at {address} that relayed the call is up)" if address else ""
        return errors.ServiceUnavailableError(f"Thresher service unavailable: {message[len(UPSTREAM_MARK) :]}{through}")
    if code == "UNAVAILABLE":
        where = f" at {address}" if address else ""
        return errors.ServiceUnavailableError(f"Thresher service unavailable{where}: {message}")
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return errors.PermissionDeniedError(message, code)
    if code == "DEADLINE_EXCEEDED":
        where = f" at {address}" if address else ""
        return errors.ServiceTimeoutError(f"a call to the Thresher service{where} timed out: {message}")
    if code == "RESOURCE_EXHAUSTED":
        return errors.ResourceExhaustedError(
            f"{message} (the limit is {MAX_MESSAGE_BYTES // 2**20} MiB a message)"
            if "larger than max" in message
            else message
        )
    return errors.ServiceError(f"{code}: {message}" if code else message)


def from_grpc_error(error: grpc.RpcError, address: str | None = None) -> errors.ThresherError:
    """Maps a failed gRPC call (a ``grpc.RpcError`` that is also a ``grpc.Call``) to our exception."""
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    name = code.name if code is not None else "UNKNOWN"
    prefixed, rest = split_code(details)
    # A relayed error may carry the original service's code at the start of its message.
    if prefixed and name in ("UNKNOWN", "INTERNAL"):
        name = prefixed
    return exception_for(name, rest if prefixed == name else details, address)


def from_flight_error(error: BaseException, address: str | None = None) -> errors.ThresherError:
    """Maps an exception raised by a pyarrow Flight call to our exception."""
    message = flight_message(error)
    prefixed, rest = split_code(message)
    if prefixed:
        return exception_for(prefixed, rest, address)
    for cls, code in _FLIGHT_CLASS_CODES:
        if isinstance(error, cls):
            return exception_for(code, message, address)
    return exception_for("UNKNOWN", message, address)


def upstream_unavailable(service: str, address: str, details: str) -> str:
    """The message of an UNAVAILABLE a service passes on from ``service`` at ``address`` (see UPSTREAM_MARK)."""
    return f"{UPSTREAM_MARK}{service} at {address}: {details}"


def is_transport_error(error: BaseException) -> bool:
    """True for the exceptions ``from_flight_error`` knows how to map."""
    return isinstance(error, flight.FlightError | pa.ArrowException)


def flight_message(error: BaseException) -> str:
    """The server's message inside a Flight exception, without the client's debugging context."""
    text = str(error)
    cut = min((i for i in (text.find(marker) for marker in _FLIGHT_NOISE) if i >= 0), default=len(text))
    text = _FLIGHT_PREAMBLE.sub("", text[:cut].strip())
    # KeyError-based exceptions quote their message.
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def split_code(message: str) -> tuple[str | None, str]:
    """(status code name, the rest) of a message that starts with one, else (None, message)."""
    match = _CODE_PREFIX.match(message)
    if match and match.group(1) in _CODE_NAMES:
        return match.group(1), message[match.end() :]
    return None, message
