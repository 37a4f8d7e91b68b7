"""Addresses and gRPC channel settings shared by the client and by services that call each other."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import grpc

from thresher.core.settings import Settings, env_name

DEFAULT_METADATA_ADDRESS = "127.0.0.1:7470"
DEFAULT_SCANNER_ADDRESS = "127.0.0.1:7471"
DEFAULT_FLIGHT_ADDRESS = "127.0.0.1:7472"

# The variables' names, for messages; their values are read through thresher.core.settings only.
METADATA_ADDRESS_ENV = env_name("metadata_address")
SCANNER_ADDRESS_ENV = env_name("scanner_address")
FLIGHT_ADDRESS_ENV = env_name("flight_address")
HOME_ENV = env_name("home")
TOKEN_ENV = env_name("token")
TLS_ROOT_CERTS_ENV = env_name("tls_root_certs")

# Large enough for a generous record batch, small enough that a runaway request fails with a clear
# RESOURCE_EXHAUSTED instead of exhausting memory. Senders slice batches well below it.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
TARGET_BATCH_BYTES = 8 * 1024 * 1024
# Application metadata a DoPut client sends instead of ending its stream when its producer failed: the
# flight service then cancels the upload, so nothing of it is written.
ABORT_UPLOAD = b"thresher:abort-upload"
# Starts the message (after its FAILED_PRECONDITION status) of a DoGet with ``unless_partitioned`` set
# whose result the flight service would split into partitions: the client then asks GetFlightInfo.
PARTITIONED_RESULT = "partitioned:"

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # A name that resolves to several replicas (dns:///metadata:7470) spreads calls over all of them.
    ("grpc.lb_policy_name", "round_robin"),
    # After a peer restarts, reconnect within about a second instead of gRPC's default backoff, which
    # grows to two minutes: a flight or scanner service keeps working across a metadata service restart.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

# The client's Flight channel receives at most this much of a stream ahead of what it has read: gRPC's
# adaptive window (BDP probing) otherwise grows with load, so a reader that falls behind a fast service
# would hold ever more of a result in socket buffers. 16 MiB keeps loopback and LAN throughput.
FLIGHT_RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024
FLIGHT_CLIENT_OPTIONS = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", FLIGHT_RECEIVE_WINDOW_BYTES),
]


def metadata_address() -> str:
    """Where the metadata service is (``$THRESHER_METADATA_ADDRESS``)."""
    return str(Settings.read("metadata_address"))


def scanner_address() -> str:
    """Where the scanner service is (``$THRESHER_SCANNER_ADDRESS``)."""
    return str(Settings.read("scanner_address"))


def flight_address() -> str:
    """Where the flight service is (``$THRESHER_FLIGHT_ADDRESS``)."""
    return str(Settings.read("flight_address"))


def thresher_home() -> str:
    """The folder of the embedded store and blob store (``$THRESHER_HOME``, default ``~/.thresher``)."""
    return str(Settings.read("home"))


def tls_root_certificates(path: str | None = None) -> bytes | None:
    """The PEM roots in ``path`` (default ``$THRESHER_TLS_ROOT_CERTS``, which turns TLS on), or None."""
    path = Settings.read("tls_root_certs") if path is None else path
    if not path:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def open_channel(
    address: str, *, root_certificates: bytes | None = None, tls: bool = False, server_name: str | None = None
) -> grpc.Channel:
    """A channel to a service: TLS verified against ``root_certificates`` (or the system's roots when
    only ``tls`` is set), otherwise plaintext for a loopback or trusted-network service. ``server_name``
    is the host name the service's certificate must carry when the address does not say it (a list of
    replica addresses, an IP)."""
    if root_certificates is not None or tls:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        options = [*GRPC_OPTIONS, ("grpc.ssl_target_name_override", server_name)] if server_name else GRPC_OPTIONS
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=GRPC_OPTIONS)


# One channel (and Flight client) per address and credentials per process, shared by every
# Connection and thread: a call reuses an open HTTP/2 connection instead of dialling and
# handshaking anew. Each Connection holds a reference (``acquire``) until it closes (``release``); the
# object is closed when the last reference goes, so one Connection closing never cuts off another.
# A forked child must not use its parent's (gRPC's and Flight's connections do not survive a fork),
# so it starts with none and dials its own on first use.


class _Entry:
    """A shared object, how many holders it has, and objects made from it (stubs on a channel)."""

    __slots__ = ("derived", "refs", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.refs = 0
        self.derived: dict[str, Any] = {}


_shared: dict[tuple[Any, ...], _Entry] = {}
_shared_lock = threading.RLock()
# A child keeps its parent's objects referenced and never closes them: closing them there would
# act on connections and threads the child does not own.
_inherited: list[Any] = []


def acquire(kind: str, key: tuple[Any, ...], open_new: Callable[[], Any]) -> Any:
    """The process's one ``kind`` object for ``key`` (opened with ``open_new`` on first use), with one
    more reference held on it: give it back with ``release``."""
    with _shared_lock:
        entry = _shared.get((kind, *key))
        if entry is None:
            entry = _shared[(kind, *key)] = _Entry(open_new())
        entry.refs += 1
        return entry.value


def release(kind: str, key: tuple[Any, ...]) -> bool:
    """Drops one reference to the shared ``kind`` object for ``key``; the last one closes it (its
    ``close()``) and forgets what was made from it. True when it was closed."""
    with _shared_lock:
        entry = _shared.get((kind, *key))
        if entry is None:
            return False
        entry.refs -= 1
        if entry.refs > 0:
            return False
        del _shared[(kind, *key)]
    entry.value.close()  # outside the lock: closing a channel waits for its calls to be cancelled
    return True


def derived(kind: str, key: tuple[Any, ...], name: str, make: Callable[[Any], Any]) -> Any:
    """The one object ``name`` made by ``make`` from the shared ``kind`` object for ``key`` (a stub on a
    channel), which the caller holds a reference to; it goes when that object is closed."""
    with _shared_lock:
        entry = _shared[(kind, *key)]
        found = entry.derived.get(name)
        if found is None:
            found = entry.derived[name] = make(entry.value)
        return found


def references(kind: str, key: tuple[Any, ...]) -> int:
    """How many references the shared ``kind`` object for ``key`` has (0: none is open)."""
    with _shared_lock:
        entry = _shared.get((kind, *key))
        return entry.refs if entry is not None else 0


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.RLock()  # the parent may have held it while forking
    _inherited.extend(_shared.values())
    _shared.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
