"""Who the current call acts for, kept per thread while a service handles it.

gRPC and Flight handlers run a call on one thread from start to end (Flight's middleware, handler and
result stream included), so a thread-local holds the caller's identity for the servicer (the actor
of a write) and the caller's token for the calls the service makes on its behalf.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from thresher.services.auth.tokens import Identity

_local = threading.local()


def current_identity() -> Identity | None:
    return getattr(_local, "identity", None)


def current_token() -> str | None:
    return getattr(_local, "token", None)


def enter(identity: Identity | None, token: str | None) -> tuple[Identity | None, str | None]:
    """Makes this thread act for ``identity``; returns what it acted for before."""
    previous = current_identity(), current_token()
    _local.identity, _local.token = identity, token
    return previous


def leave(previous: tuple[Identity | None, str | None]) -> None:
    _local.identity, _local.token = previous


@contextmanager
def acting_as(identity: Identity | None, token: str | None) -> Iterator[None]:
    previous = enter(identity, token)
    try:
        yield
    finally:
        leave(previous)
