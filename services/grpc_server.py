"""Builds a gRPC server the same way for every service: message limits, health and reflection."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures

import grpc

from thresher.core.transport import GRPC_OPTIONS
from thresher.services.malformed import refuse_malformed
from thresher.services.server_extra import require

health = require("grpc_health.v1.health")
health_pb2 = require("grpc_health.v1.health_pb2")
health_pb2_grpc = require("grpc_health.v1.health_pb2_grpc")
reflection = require("grpc_reflection.v1alpha.reflection")

log = logging.getLogger(__name__)


def new_server(max_workers: int = 16, interceptors: Iterable[grpc.ServerInterceptor] = ()) -> grpc.Server:
    # Undecodable request bytes get INVALID_ARGUMENT rather than gRPC's INTERNAL (services/malformed.py).
    return refuse_malformed(
        grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
            interceptors=list(interceptors),
            options=GRPC_OPTIONS,
        )
    )


def finish_server(
    server: grpc.Server, address: str, service_names: Iterable[str], credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.Server, int]:
    """Adds health checking and reflection for ``service_names``, binds ``address`` (over TLS when
    ``credentials`` are given) and starts serving.

    Returns the server and the bound port (useful with port 0).
    """
    names = list(service_names)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in names + [""]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(names + [health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"could not bind {address}")
    server.start()
    log.info("serving %s on %s (port %d)", ", ".join(names), address, port)
    return server, port


class ServiceServer(grpc.Server):  # type: ignore[misc]  # grpc ships no type information
    """A started gRPC server together with what it owns: ``stop`` stops the server, runs ``stopping``
    at once (cancelling background work while calls drain), then, once the server is down, ``cleanup``
    (closing a store, a second port, a channel) before the returned event is set.

    Extra attributes (``data_port``) are set by the service that builds it.
    """

    def __init__(
        self,
        server: grpc.Server,
        cleanup: Callable[[], None] = lambda: None,
        stopping: Callable[[], None] = lambda: None,
    ) -> None:
        self._server = server
        self._cleanup = cleanup
        self._on_stopping = stopping
        self._stopped = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()

    def stop(self, grace: float | None) -> threading.Event:
        with self._lock:
            if self._stopping:
                return self._stopped
            self._stopping = True
        server_stopped = self._server.stop(grace)

        def finish() -> None:
            try:
                for step, then_wait in ((self._on_stopping, True), (self._cleanup, False)):
                    try:
                        step()
                    except Exception:  # noqa: BLE001 - the server goes down either way; say what failed
                        log.exception("stopping the server: %s failed", getattr(step, "__qualname__", step))
                    if then_wait:
                        server_stopped.wait()
            finally:
                self._stopped.set()

        threading.Thread(target=finish, name="server-stop", daemon=True).start()
        return self._stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def start(self) -> None:
        self._server.start()

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self._server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return int(self._server.add_insecure_port(address))

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return int(self._server.add_secure_port(address, server_credentials))
