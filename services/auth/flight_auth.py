"""Bearer-token auth for the Flight service: a server middleware, and the Basic-to-bearer handshake.

Every call but ListActions (the health check) needs ``authorization: Bearer <token>``; the
middleware makes the handler's thread act for the caller, so the calls the flight service makes to
the metadata service carry the caller's token and are judged there by namespace. A Handshake with
``authorization: Basic base64(subject:token)`` (what ADBC's username/password options and
``FlightClient.authenticate_basic_token`` send) answers with the bearer header to use from then on.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import pyarrow.flight as fl

from thresher.services.auth import context
from thresher.services.auth.tokens import Identity, TokenTable, bearer_token

MIDDLEWARE_KEY = "thresher-auth"
_OPEN_METHODS = {fl.FlightMethod.LIST_ACTIONS}


class _CallerMiddleware(fl.ServerMiddleware):  # type: ignore[misc]  # pyarrow ships no type information
    """Acts for the caller from the start of the call to its end (Flight runs both on one thread)."""

    def __init__(self, identity: Identity | None, token: str | None, reply_bearer: bool) -> None:
        self.identity = identity
        self._token = token
        self._reply_bearer = reply_bearer
        self._previous = context.enter(identity, token)

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._token}"} if self._reply_bearer and self._token else {}

    def call_completed(self, exception: BaseException | None) -> None:
        context.leave(self._previous)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    encoded = encoded.strip()
    try:
        # ADBC's Go driver sends unpadded base64 (RawStdEncoding); restore the padding the decoder wants.
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        subject, separator, token = raw.decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (subject, token) if separator else None


class BearerAuthMiddlewareFactory(fl.ServerMiddlewareFactory):  # type: ignore[misc]  # pyarrow ships no type information
    """Authenticates each Flight call against ``tokens``."""

    def __init__(self, tokens: TokenTable) -> None:
        self._tokens = tokens

    def start_call(self, info: fl.CallInfo, headers: dict[str, list[str]]) -> fl.ServerMiddleware | None:
        if info.method in _OPEN_METHODS:
            return None
        header = next(iter(headers.get("authorization", [])), "")
        if info.method == fl.FlightMethod.HANDSHAKE and (basic := _basic_credentials(header)) is not None:
            subject, basic_token = basic
            identity = self._tokens.authenticate(basic_token)
            if identity is None or identity.subject != subject:
                raise fl.FlightUnauthenticatedError(
                    "UNAUTHENTICATED: the user name and token do not match a configured token"
                )
            return _CallerMiddleware(identity, basic_token, reply_bearer=True)
        token = bearer_token(header)
        identity = self._tokens.authenticate(token)
        if identity is None:
            problem = "a bearer token is required" if token is None else "the bearer token is not valid"
            raise fl.FlightUnauthenticatedError(f"UNAUTHENTICATED: {problem}")
        return _CallerMiddleware(identity, token, reply_bearer=False)


class HeaderAuthHandler(fl.ServerAuthHandler):  # type: ignore[misc]  # pyarrow ships no type information
    """Lets Handshake succeed (the middleware has checked its header) and leaves every call to the middleware."""

    def authenticate(self, outgoing: fl.ServerAuthSender, incoming: fl.ServerAuthReader) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""


def flight_auth_options(tokens: TokenTable) -> dict[str, Any]:
    """Keyword arguments for ``FlightServerBase`` that turn auth on; empty when no tokens are configured."""
    if not tokens:
        return {}
    return {"auth_handler": HeaderAuthHandler(), "middleware": {MIDDLEWARE_KEY: BearerAuthMiddlewareFactory(tokens)}}
