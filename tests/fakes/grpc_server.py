"""A real grpcio server on loopback with the standard health service (grpc.health.v1).

``health``: ``"standard"`` (grpcio-health-checking's own servicer, statuses set per service),
``"none"`` (no health service: every call is UNIMPLEMENTED) or ``"slow"`` (a servicer that
sleeps ``delay`` before answering SERVING, for deadlines). TLS: a trustme server certificate,
optionally requiring client certificates signed by the same CA.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import grpc
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

Health = Literal["standard", "none", "slow"]


@dataclass
class GrpcServer:
    port: int
    servicer: health.HealthServicer | None

    def set(self, service: str, status: str) -> None:
        assert self.servicer is not None
        self.servicer.set(service, health_pb2.HealthCheckResponse.ServingStatus.Value(status))


class _SlowHealth(health_pb2_grpc.HealthServicer):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def Check(self, request: Any, context: Any) -> Any:  # gRPC's method name
        time.sleep(self.delay)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@contextmanager
def grpc_server(
    health_mode: Health = "standard",
    *,
    status: str = "SERVING",
    services: dict[str, str] | None = None,
    delay: float = 2.0,
    ca: trustme.CA | None = None,
    server_name: str = "grpc.example.test",
    require_client_cert: bool = False,
    host: str = "127.0.0.1",
) -> Iterator[GrpcServer]:
    """A started server on a free loopback port; stopped (bounded) on exit."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    servicer: health.HealthServicer | None = None
    if health_mode == "standard":
        servicer = health.HealthServicer()
        servicer.set("", health_pb2.HealthCheckResponse.ServingStatus.Value(status))
        for name, value in (services or {}).items():
            servicer.set(name, health_pb2.HealthCheckResponse.ServingStatus.Value(value))
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    elif health_mode == "slow":
        health_pb2_grpc.add_HealthServicer_to_server(_SlowHealth(delay), server)
    address = f"[{host}]:0" if ":" in host else f"{host}:0"
    if ca is not None:
        leaf = ca.issue_cert(server_name)
        credentials = grpc.ssl_server_credentials(
            [(leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes())],
            root_certificates=ca.cert_pem.bytes() if require_client_cert else None,
            require_client_auth=require_client_cert,
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    server.start()
    try:
        yield GrpcServer(port, servicer)
    finally:
        server.stop(grace=0).wait(5)
