"""Turns failures into Flight errors whose message starts with the gRPC status code name.

Clients map that prefix (``NOT_FOUND: ...``) back to their exceptions; where Flight has an error class
for the status (unavailable, unauthenticated, permission denied, deadline, cancelled, internal) that
class is used, so the status also travels on the wire, and otherwise ``FlightServerError``, which
travels as UNKNOWN.

Why not the real status for NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS or UNIMPLEMENTED: pyarrow (26)
has no Flight error class for them. It sends them only for other exceptions (``KeyError``,
``ValueError``, ``NotImplementedError`` or their ``pa.Arrow*`` twins), and then appends the Python
traceback, with the server's file paths and source lines, to the message every client sees
(``... Detail: Python exception: Traceback (most recent call last): ...``), as a pyarrow client and a
raw gRPC client both showed. A client other than Thresher's reads the code from the message prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import pyarrow.flight as fl

from thresher.core.status import flight_message, split_code, upstream_unavailable
from thresher.services.flight.backend import UnusableResult
from thresher.services.flight.tickets import TicketError

METADATA_SERVICE = "the metadata service"

_ERROR_CLASSES: dict[grpc.StatusCode, type[fl.FlightError]] = {
    grpc.StatusCode.UNAVAILABLE: fl.FlightUnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: fl.FlightUnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: fl.FlightUnauthorizedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: fl.FlightTimedOutError,
    grpc.StatusCode.CANCELLED: fl.FlightCancelledError,
    grpc.StatusCode.INTERNAL: fl.FlightInternalError,
    grpc.StatusCode.DATA_LOSS: fl.FlightInternalError,
}


def status_error(code: grpc.StatusCode, message: str) -> fl.FlightError:
    """The Flight error for a status: ``CODE: message`` in the class that best matches the code."""
    return _ERROR_CLASSES.get(code, fl.FlightServerError)(f"{code.name}: {message}")


def from_rpc_error(error: grpc.RpcError, upstream: str = "") -> fl.FlightError:
    """The Flight error for a failed call to the metadata service (at ``upstream``, when known), its status
    and message preserved; an UNAVAILABLE is marked as the metadata service's, so the client names it
    rather than this service, which is up."""
    if isinstance(error, grpc.Call):
        details = error.details() or ""
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            details = upstream_unavailable(METADATA_SERVICE, upstream or "its configured address", details)
        return status_error(error.code(), details)
    return status_error(grpc.StatusCode.UNKNOWN, str(error))


def invalid_argument(message: str) -> fl.FlightError:
    return status_error(grpc.StatusCode.INVALID_ARGUMENT, message)


def unimplemented(message: str) -> fl.FlightError:
    return status_error(grpc.StatusCode.UNIMPLEMENTED, message)


@contextlib.contextmanager
def flight_errors(upstream: str = "") -> Iterator[None]:
    """Re-raises metadata-service (at ``upstream``) and ticket failures as Flight errors."""
    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error, upstream) from None
    except TicketError as error:
        raise invalid_argument(str(error)) from None
    except UnusableResult as error:
        raise status_error(grpc.StatusCode.INTERNAL, str(error)) from None


def relayed_flight_error(error: BaseException, address: str) -> fl.FlightError:
    """A Flight error from a call to another service (``address``), as this service's own: its status
    kept, pyarrow's wrapping and debugging context dropped; an unreachable service is UNAVAILABLE."""
    message = flight_message(error)
    code, rest = split_code(message)
    if code is not None:
        return status_error(grpc.StatusCode[code], rest)
    if isinstance(error, fl.FlightUnavailableError):
        return status_error(
            grpc.StatusCode.UNAVAILABLE, upstream_unavailable(f"{METADATA_SERVICE}'s data port", address, message)
        )
    return status_error(grpc.StatusCode.INTERNAL, f"the metadata service's data port {address}: {message}")
