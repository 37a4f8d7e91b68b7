"""Builds a gRPC server the same way for every service: message limits, health and reflection."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent import futures

import grpc

from thresher.services.malformed import refuse_malformed
from thresher.services.server_extra import require
from thresher.core.transport import GRPC_OPTIONS

health = require("grpc_health.v1.health")
health_pb2 = require("grpc_health.v1.health_pb2")
health_pb2_grpc = require("grpc_health.v1.health_pb2_grpc")
reflection = require("grpc_reflection.v1alpha.reflection")

log = logging.getLogger(__name__)


def new_server(max_workers: int = 16, interceptors: Iterable[grpc.ServerInterceptor] = ()) -> grpc.Server:
    # Undecodable request bytes get INVALID_ARGUMENT rather than gRPC's INTERNAL (services/malformed.py).
    return refuse_malformed(grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
                                        interceptors=list(interceptors), options=GRPC_OPTIONS))


def finish_server(server: grpc.Server, address: str, service_names: Iterable[str],
                  credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, int]:
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
