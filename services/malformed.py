"""Requests whose bytes are not the method's message get INVALID_ARGUMENT instead of gRPC's INTERNAL.

gRPC answers a request it cannot deserialize with INTERNAL ("Exception deserializing request!"), which
reads as a fault of the service. ``refuse_malformed(server)`` wraps every handler registered on it: the
deserializer returns a marker instead of raising, and the handler refuses a marked request with
INVALID_ARGUMENT naming the message type it expected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

# grpc ships no type information, so its handler objects are Any; these aliases name what each one is.
_Handler = Any  # a grpc.RpcMethodHandler (a namedtuple with _replace), or None where the server has none
_Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class _Malformed:
    def __init__(self, expected: str, reason: str) -> None:
        self.message = f"the request is not a serialized {expected}: {reason}"


def refuse_malformed(server: grpc.Server) -> grpc.Server:
    """Makes ``server`` refuse undecodable requests with INVALID_ARGUMENT; returns it."""
    add_generic = server.add_generic_rpc_handlers
    server.add_generic_rpc_handlers = lambda handlers: add_generic(tuple(_Generic(h) for h in handlers))
    # grpcio >= 1.64 stubs register methods this way too; older grpcio has no such method (nor calls it).
    add_registered = getattr(server, "add_registered_method_handlers", None)
    if add_registered is not None:
        server.add_registered_method_handlers = lambda name, handlers: add_registered(
            name, {method: _wrapped(handler) for method, handler in handlers.items()}
        )
    return server


class _Generic(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no type information
    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> _Handler:
        return _wrapped(self._inner.service(handler_call_details))


def _wrapped(handler: _Handler) -> _Handler:
    if handler is None or handler.request_deserializer is None:
        return handler
    deserializer = handler.request_deserializer
    owner = getattr(deserializer, "__self__", None)
    expected = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as error:  # noqa: BLE001 - whatever the parser raises, the bytes are malformed
            return _Malformed(expected, str(error) or type(error).__name__)

    changes: dict[str, Any] = {"request_deserializer": deserialize}
    if handler.unary_unary is not None:
        changes["unary_unary"] = _unary(handler.unary_unary)
    if handler.unary_stream is not None:
        changes["unary_stream"] = _unary_stream(handler.unary_stream)
    if handler.stream_unary is not None:
        changes["stream_unary"] = _stream_unary(handler.stream_unary)
    if handler.stream_stream is not None:
        changes["stream_stream"] = _stream_stream(handler.stream_stream)
    return handler._replace(**changes)


def _unary(behaviour: _Behaviour) -> _Behaviour:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, _Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return behaviour(request, context)

    return call


def _unary_stream(behaviour: _Behaviour) -> _Behaviour:
    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if isinstance(request, _Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        yield from behaviour(request, context)

    return call


def _checked(requests: Iterator[Any], found: list[_Malformed]) -> Iterator[Any]:
    for request in requests:
        if isinstance(request, _Malformed):
            found.append(request)
            raise ValueError(request.message)
        yield request


def _stream_unary(behaviour: _Behaviour) -> _Behaviour:
    """A malformed message in the request stream ends the call with INVALID_ARGUMENT, even where the
    servicer catches the failure and reports it as something else."""

    def call(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        found: list[_Malformed] = []
        try:
            return behaviour(_checked(requests, found), context)
        except Exception:
            if found:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, found[0].message)
            raise

    return call


def _stream_stream(behaviour: _Behaviour) -> _Behaviour:
    def call(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        found: list[_Malformed] = []
        try:
            yield from behaviour(_checked(requests, found), context)
        except Exception:
            if found:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, found[0].message)
            raise

    return call
