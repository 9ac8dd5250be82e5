"""gRPC health: one ``grpc.health.v1.Health/Check`` call, judged on the status it answers.

grpcio is imported only when a grpc check runs, and in a worker thread: its import (~0.1 s)
and its blocking channel never stall the engine's event loop. The call's own deadline is the
check's timeout, so the thread is bounded too. gRPC status codes become reasons here, once:
UNIMPLEMENTED (no health service) ``unimplemented``, UNAVAILABLE (nothing answers, a broken
handshake) ``unavailable``, DEADLINE_EXCEEDED ``deadline``, NOT_FOUND (the health service does
not know the service) and an answered NOT_SERVING ``not_serving``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_autoglm.core.records import Redact, Verdict, no_redaction
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.errmap import LocalSetupError

#: At most this many health calls block a thread at once (each is bounded by its timeout).
MAX_THREADS = 32

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _executor
    _executor = None  # the parent's threads do not exist in a forked child


os.register_at_fork(after_in_child=_reset_after_fork)


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="autoglm-grpc")
        return _executor


@dataclass(frozen=True, slots=True)
class GrpcExpectation:
    """What one grpc entry asks, with the TLS settings of its port's tls group."""

    port: int
    service: str = ""
    tls: bool = False
    status: str = "SERVING"
    keepalive: float | None = None
    max_message: int | None = None
    sni: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True)
class _Answer:
    """What the call gave: a health status name, or a gRPC status code name and its details."""

    status: str | None
    code: str | None
    details: str
    elapsed_s: float


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LocalSetupError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _target(address: str | None, host: str, port: int) -> str:
    where = address or host
    return f"[{where}]:{port}" if ":" in where else f"{where}:{port}"


def _options(host: str, expect: GrpcExpectation, proxy: str | None) -> list[tuple[str, Any]]:
    """Channel options: the service's own keepalive and message limits, the name it is known by."""
    name = (expect.sni or host) if expect.tls else host  # gRPC checks the authority against the server name
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 0),
        ("grpc.default_authority", f"{name}:{expect.port}"),
    ]
    if proxy and proxy.startswith("http://"):
        options.append(("grpc.http_proxy", proxy))
    else:
        options.append(("grpc.enable_http_proxy", 0))  # *_proxy variables of the environment never apply
    if expect.tls:
        options.append(("grpc.ssl_target_name_override", expect.sni or host))
    if expect.keepalive is not None:
        options.append(("grpc.keepalive_time_ms", max(1, round(expect.keepalive * 1000))))
    if expect.max_message is not None:
        options += [
            ("grpc.max_receive_message_length", expect.max_message),
            ("grpc.max_send_message_length", expect.max_message),
        ]
    return options


def _call(
    host: str, address: str | None, expect: GrpcExpectation, timeout: float, ca_bundle: Path | None, proxy: str | None
) -> _Answer:
    """One blocking health call (in a worker thread)."""
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise LocalSetupError(f"grpc checks need grpcio and grpcio-health-checking: {exc}") from None
    target = _target(address, host, expect.port)
    options = _options(host, expect, proxy)
    if expect.tls:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(ca_bundle, "CA bundle"),
            private_key=_read(expect.client_key or expect.client_cert, "client key") if expect.client_cert else None,
            certificate_chain=_read(expect.client_cert, "client certificate"),
        )
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    started = time.monotonic()
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=expect.service), timeout=timeout)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return _Answer(status, None, "", time.monotonic() - started)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        details = (exc.details() if hasattr(exc, "details") else None) or ""
        return _Answer(None, code.name if code is not None else "UNKNOWN", details, time.monotonic() - started)
    finally:
        channel.close()


#: gRPC status codes of a failed call -> the reason they stand for.
_CODE_REASONS = {
    "UNIMPLEMENTED": Reason.UNIMPLEMENTED,
    "UNAVAILABLE": Reason.UNAVAILABLE,
    "DEADLINE_EXCEEDED": Reason.DEADLINE,
    "NOT_FOUND": Reason.NOT_SERVING,
    "UNAUTHENTICATED": Reason.AUTH,
    "PERMISSION_DENIED": Reason.AUTH,
}


async def check_grpc(
    host: str,
    address: str | None,
    expect: GrpcExpectation,
    *,
    timeout: float,
    ca_bundle: Path | None = None,
    proxy: str | None = None,
    redact: Redact = no_redaction,
) -> Verdict:
    """Ask the health service of ``host`` (at ``address``) for ``expect.service``; never raises."""
    where = f"{host}:{expect.port}" + (f" service {expect.service!r}" if expect.service else "")
    if expect.tls and not expect.verify:
        return Verdict.fail(
            Layer.GRPC,
            Reason.SETUP,
            f"{where}: gRPC over TLS always verifies the server; give its CA in ca_bundle instead of verify: false",
            address=address,
        )
    if proxy and not proxy.startswith("http://"):
        return Verdict.fail(
            Layer.GRPC,
            Reason.SETUP,
            redact(f"{where}: gRPC checks go through http:// (CONNECT) proxies only, not {proxy.split(':', 1)[0]}://"),
            address=address,
        )
    if proxy:
        failure = await _proxy_failure(proxy, address or host, expect.port, timeout, where, address, redact)
        if failure is not None:
            return failure
    loop = asyncio.get_running_loop()
    try:
        answer = await loop.run_in_executor(_pool(), _call, host, address, expect, timeout, ca_bundle, proxy)
    except LocalSetupError as exc:
        return Verdict.fail(Layer.GRPC, Reason.SETUP, redact(f"{where}: {exc}"), address=address)
    details: dict[str, Any] = {"port": expect.port, "service": expect.service, "elapsed_ms": answer.elapsed_s * 1000}
    if answer.status is not None:
        details["status"] = answer.status
        took = format_duration(answer.elapsed_s)
        if answer.status == expect.status:
            return Verdict.ok(f"{where}: {answer.status} in {took}", address=address, details=details)
        reason = Reason.NOT_SERVING if expect.status == "SERVING" else Reason.UNEXPECTED
        return Verdict.fail(
            Layer.GRPC,
            reason,
            f"{where}: health status {answer.status}, expected {expect.status}",
            address=address,
            details=details,
        )
    assert answer.code is not None
    details["code"] = answer.code
    if answer.details:
        details["grpc_details"] = redact(answer.details)
    reason = _CODE_REASONS.get(answer.code, Reason.PROTOCOL)
    text = {
        Reason.UNIMPLEMENTED: "no health service (grpc.health.v1) answers",
        Reason.DEADLINE: f"no answer within {format_duration(timeout)}",
        Reason.NOT_SERVING: "the health service does not know this service",
    }.get(reason, answer.details or answer.code)
    return Verdict.fail(
        Layer.GRPC,
        reason,
        redact(f"{where}: {text} ({answer.code})"),
        address=address,
        details=details,
    )


async def _proxy_failure(
    proxy: str, target: str, port: int, timeout: float, where: str, address: str | None, redact: Redact
) -> Verdict | None:
    """gRPC's own CONNECT hides a proxy's failure behind UNAVAILABLE: a tunnel opened first tells
    the proxy's fault (reason ``proxy``) from the target's (``unavailable``)."""
    from pytest_autoglm.probes.proxy import ProxyFault, ProxyRoute, TargetState

    try:
        sock = await ProxyRoute.parse(proxy).open(target, port, timeout)
    except ProxyFault as exc:
        return Verdict.fail(Layer.GRPC, Reason.PROXY, redact(f"{where}: {exc}"), address=address)
    except TargetState as exc:
        return Verdict.fail(Layer.GRPC, Reason.UNAVAILABLE, redact(f"{where}: {exc.text}"), address=address)
    except OSError as exc:
        return Verdict.fail(Layer.GRPC, Reason.SETUP, redact(f"{where}: cannot use the proxy: {exc}"), address=address)
    sock.close()
    return None
