"""Bearer-token auth for gRPC services: a server interceptor, and a client interceptor that passes a
caller's token on to the services called on its behalf.

The server interceptor authenticates every call but health checks (UNAUTHENTICATED for a missing or
unknown token), makes the handler's thread act for the caller (``context``), and asks the service's
``Authorizer`` whether the caller may touch the namespace the request names (PERMISSION_DENIED if
not). Authorizers see the request itself, so a call is judged by what it asks for, not only its name.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

from thresher.services.auth import context
from thresher.services.auth.tokens import Identity, TokenTable, bearer_token

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
AUTHORIZATION = "authorization"
_NOTHING = object()
# What a client interceptor calls to go on: (call details, request or request iterator) -> call or response.
_Continuation = Callable[[grpc.ClientCallDetails, Any], Any]


class PermissionDenied(Exception):
    """The caller's token does not reach what the request touches; the message says what it lacks."""


class Authorizer(Protocol):
    def check(self, method: str, request: Any, identity: Identity) -> None:
        """Raises PermissionDenied unless ``identity`` may make this request. ``method`` is the short name."""

    def filter(self, method: str, response: Any, identity: Identity) -> Any:
        """The response with what ``identity`` may not see removed."""


def _metadata_token(details: grpc.HandlerCallDetails) -> str | None:
    for key, value in details.invocation_metadata or ():
        if key == AUTHORIZATION:
            return bearer_token(value)
    return None


def _refuse(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def abort(request_or_iterator: Any, servicer_context: grpc.ServicerContext) -> Any:
        servicer_context.abort(code, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort, handler.request_deserializer, handler.response_serializer)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, handler.request_deserializer, handler.response_serializer)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort, handler.request_deserializer, handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(abort, handler.request_deserializer, handler.response_serializer)


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type information
    """Checks ``authorization: Bearer <token>`` against ``tokens`` and requests against ``authorizer``."""

    def __init__(self, tokens: TokenTable, authorizer: Authorizer | None = None) -> None:
        self._tokens = tokens
        self._authorizer = authorizer

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = continuation(details)
        if handler is None or details.method.startswith(HEALTH_PREFIX):
            return handler
        token = _metadata_token(details)
        identity = self._tokens.authenticate(token)
        if identity is None:
            problem = "a bearer token is required" if token is None else "the bearer token is not valid"
            return _refuse(handler, grpc.StatusCode.UNAUTHENTICATED, f"{details.method}: {problem}")
        return _Guarded(handler, details.method.rsplit("/", 1)[-1], identity, token, self._authorizer).handler()


class _Guarded:
    """One call's handler, run as the caller and checked by the authorizer."""

    def __init__(
        self,
        handler: grpc.RpcMethodHandler,
        method: str,
        identity: Identity,
        token: str | None,
        authorizer: Authorizer | None,
    ) -> None:
        self.inner, self.method, self.identity, self.token, self.authorizer = (
            handler,
            method,
            identity,
            token,
            authorizer,
        )

    def _check(self, request: Any, servicer_context: grpc.ServicerContext) -> None:
        if self.authorizer is None:
            return
        try:
            self.authorizer.check(self.method, request, self.identity)
        except PermissionDenied as error:
            servicer_context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))

    def _filtered(self, response: Any) -> Any:
        return response if self.authorizer is None else self.authorizer.filter(self.method, response, self.identity)

    def _requests(self, requests: Iterator[Any], servicer_context: grpc.ServicerContext) -> Iterator[Any]:
        """A client stream whose first message (the header) is checked before the handler starts, so that
        a refusal is not mistaken by the handler for a failure of its own."""
        first = next(requests, _NOTHING)
        if first is _NOTHING:
            return iter(())
        self._check(first, servicer_context)
        return itertools.chain([first], requests)

    def _responses(self, responses: Iterator[Any]) -> Iterator[Any]:
        # A server stream runs lazily, after the behaviour returned: act as the caller while it runs.
        with context.acting_as(self.identity, self.token):
            for response in responses:
                yield self._filtered(response)

    def handler(self) -> grpc.RpcMethodHandler:
        inner = self.inner
        if inner.request_streaming:
            behavior = inner.stream_stream if inner.response_streaming else inner.stream_unary
        else:
            behavior = inner.unary_stream if inner.response_streaming else inner.unary_unary

        def guarded(request: Any, servicer_context: grpc.ServicerContext) -> Any:
            with context.acting_as(self.identity, self.token):
                if inner.request_streaming:
                    request = self._requests(request, servicer_context)
                else:
                    self._check(request, servicer_context)
                result = behavior(request, servicer_context)
            return self._responses(result) if inner.response_streaming else self._filtered(result)

        factory = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        make = factory[(inner.request_streaming, inner.response_streaming)]
        return make(guarded, inner.request_deserializer, inner.response_serializer)


class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]  # grpc ships no type information
    def __init__(self, details: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = getattr(details, "compression", None)


# grpc ships no type information: its interceptor bases are Any.
class ForwardingInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Sends the token of the caller this thread acts for, or ``own_token`` when it acts for no one,
    on calls that do not already carry one."""

    def __init__(self, own_token: str | None) -> None:
        self._own_token = own_token

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        token = context.current_token() or self._own_token
        if token and not any(key == AUTHORIZATION for key, _ in metadata):
            metadata.append((AUTHORIZATION, f"Bearer {token}"))
        return _CallDetails(details, metadata)

    def intercept_unary_unary(self, continuation: _Continuation, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: _Continuation, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: _Continuation, details: grpc.ClientCallDetails, request_iterator: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(
        self, continuation: _Continuation, details: grpc.ClientCallDetails, request_iterator: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), request_iterator)
