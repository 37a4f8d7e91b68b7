"""A container health check: ``python -m thresher.services.healthcheck grpc|flight ADDRESS``.

``grpc`` asks the gRPC health service (which needs no token) whether every service is SERVING;
``flight`` asks the Flight service for its actions, the one Flight call that needs no token: any
answer means it is up. TLS follows ``$THRESHER_TLS_ROOT_CERTS``; the check dials the address it is
given (in a container, 127.0.0.1), so the service's certificate must name that address (a certificate
for compose names 127.0.0.1 and localhost beside the service host names). ``$THRESHER_TLS_SERVER_NAME``
is not used here: it names the services this one calls. Exits 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

TIMEOUT_SECONDS = 5.0


def grpc_healthy(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from thresher.core import transport

    roots = transport.tls_root_certificates()
    if roots is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(roots))
    try:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_SECONDS)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def flight_healthy(address: str) -> bool:
    import pyarrow as pa
    import pyarrow.flight as fl

    from thresher.core import transport

    roots = transport.tls_root_certificates()
    host_port = address.split("://", 1)[-1]
    location = f"grpc+tls://{host_port}" if roots is not None else f"grpc://{host_port}"
    client = fl.FlightClient(location, tls_root_certs=roots)
    try:
        client.list_actions(options=fl.FlightCallOptions(timeout=TIMEOUT_SECONDS))
        return True
    except pa.ArrowNotImplementedError:
        return True  # answered: the service is up, it just lists no actions
    except (fl.FlightError, pa.ArrowException, OSError):
        return False
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thresher.services.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["grpc", "flight"])
    parser.add_argument("address", help="host:port of the service")
    args = parser.parse_args(argv)
    healthy = grpc_healthy(args.address) if args.kind == "grpc" else flight_healthy(args.address)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
