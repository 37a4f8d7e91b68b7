"""Passes the caller's identity on: a Flight server (the flight service, the metadata data port) keeps the
client's identity headers for the calls it makes, or the writes it records, on the client's behalf.

The client's ``thresher-user`` header names who writes (the metadata service records it with every
write) and ``authorization`` carries its token; both go with every call the flight service makes for it.
"""

from __future__ import annotations

import pyarrow.flight as fl

FORWARDED_HEADERS = ("thresher-user", "authorization")
MIDDLEWARE_KEY = "thresher-forwarded-headers"

Metadata = tuple[tuple[str, str], ...]


class _Forwarded(fl.ServerMiddleware):  # type: ignore[misc]  # pyarrow ships no type information
    def __init__(self, metadata: Metadata) -> None:
        self.metadata = metadata


class ForwardedHeadersFactory(fl.ServerMiddlewareFactory):  # type: ignore[misc]  # pyarrow ships no type information
    """Keeps, for each call, the client's headers that the metadata service must also see."""

    def start_call(self, info: fl.CallInfo, headers: dict[str, list[str | bytes]]) -> _Forwarded | None:
        metadata = tuple((name, _text(value)) for name in FORWARDED_HEADERS for value in headers.get(name, ())[:1])
        return _Forwarded(metadata) if metadata else None


def forwarded(context: fl.ServerCallContext) -> Metadata:
    """The gRPC metadata to send with calls made for the call of ``context``."""
    middleware = context.get_middleware(MIDDLEWARE_KEY)
    return middleware.metadata if middleware is not None else ()


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
