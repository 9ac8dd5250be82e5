"""From a planned check to the probe call of one attempt (one module per protocol lives in ``probes``)."""

from __future__ import annotations

import functools
import importlib
import json
import ssl
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Any

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import parse_status
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.inventory.models import HttpCheck, IcmpSection, TlsSection
from pytest_autoglm.inventory.plan import Check, CheckSpec, CorsOriginSpec, DnsCheckSpec, GrpcSpec, TcpCheckSpec
from pytest_autoglm.inventory.urls import url_host_port
from pytest_autoglm.probes import dns as dns_probe
from pytest_autoglm.probes import tcp as tcp_probe

_PROBE_MODULES = {
    Layer.TLS: "pytest_autoglm.probes.tls",
    Layer.HTTP: "pytest_autoglm.probes.http",
    Layer.CORS: "pytest_autoglm.probes.cors",
    Layer.GRPC: "pytest_autoglm.probes.grpc",  # light: grpcio itself loads in the probe's thread
    Layer.ICMP: "pytest_autoglm.probes.icmp",
}


def warm_up(checks: Iterable[Check]) -> None:
    """Import the probe modules a run needs before the engine starts (an import on the engine's
    thread would stall every probe in flight for its duration)."""
    for kind in {c.kind for c in checks} & set(_PROBE_MODULES):
        importlib.import_module(_PROBE_MODULES[kind])


def web_url(spec: CheckSpec) -> str | None:
    """The URL an http or cors check requests (None for the other kinds)."""
    if isinstance(spec, HttpCheck):
        return spec.url
    if isinstance(spec, CorsOriginSpec):
        return spec.check.url
    return None


def speaks_tls(check: Check) -> bool:
    if check.kind is Layer.TLS:
        return True
    if isinstance(check.spec, GrpcSpec):
        return check.spec.check.tls
    url = web_url(check.spec)
    return url is not None and url.startswith("https:")


def destination(check: Check, address: str | None) -> tuple[str, int] | None:
    """The address and port one attempt connects to, for the per-destination limit (None: DNS).

    Behind a proxy the attempt connects to the proxy, so that is the destination counted.
    """
    spec = check.spec
    if isinstance(spec, TcpCheckSpec):
        return (address or check.host, spec.port)
    if isinstance(spec, TlsSection):
        return (address or check.host, spec.port)
    url = web_url(spec)
    if url is None:
        return None
    if check.proxy:
        try:
            return url_host_port(check.proxy)
        except ValueError:  # the probe reports an unusable proxy itself
            return None
    host, port = url_host_port(url)
    return (address or host, port)


def connect_host(check: Check) -> str | None:
    """The host whose addresses the check is made against; None when a proxy connects by name."""
    if check.kind in (Layer.TCP, Layer.TLS, Layer.GRPC, Layer.ICMP):
        return check.host
    if check.proxy:
        return None
    if isinstance(check.spec, HttpCheck) and check.spec.connect_to == "host":
        return check.host  # like curl --resolve: the target's address, the URL's name for Host and SNI
    url = web_url(check.spec)
    assert url is not None, f"no host to connect to for {check.kind}"
    return url_host_port(url)[0]


@functools.lru_cache(maxsize=16)
def _resolver_tls_context(ca_bundle: str | None) -> ssl.SSLContext | None:
    """DoT/DoH resolvers are verified against the system store plus the target's ``ca_bundle``."""
    if ca_bundle is None:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_bundle)
    return context


def _speaks_tls_to_resolvers(check: Check) -> bool:
    return any(r.kind in ("tls", "https") for r in check.resolvers)


def _dns_tls_context(check: Check) -> ssl.SSLContext | None:
    return _resolver_tls_context(check.ca_bundle) if _speaks_tls_to_resolvers(check) else None


async def resolve(
    host: str, check: Check, session: dns_probe.DnsSession | None = None
) -> tuple[tuple[str, ...], Verdict | None]:
    return await dns_probe.resolve_addresses(
        host, check.resolvers, check.timeout, ssl_context=_dns_tls_context(check), session=session
    )


def measures_latency(check: Check) -> bool:
    """Checks whose verdict is a time: measured when the loop is quiet, so our own load does not count."""
    return check.kind is Layer.HTTP and isinstance(check.spec, HttpCheck) and check.spec.max_latency is not None


def dns_attempt(check: Check, session: dns_probe.DnsSession | None = None) -> Awaitable[Verdict]:
    spec = check.spec
    assert isinstance(spec, DnsCheckSpec)
    return dns_probe.check_dns(
        check.host,
        spec.rdtype,
        spec.mode,
        spec.values,
        check.resolvers,
        consistent=spec.consistent,
        timeout=check.timeout,
        ssl_context=_dns_tls_context(check),
        session=session,
    )


def attempt(check: Check, address: str | None) -> Awaitable[Verdict]:
    if check.kind is Layer.TCP:
        spec = check.spec
        assert isinstance(spec, TcpCheckSpec) and address is not None
        if check.proxy:
            return _tcp_via_proxy(check, spec, address)
        return tcp_probe.check_tcp(address, spec.port, spec.expect, check.timeout, host=check.host)
    if check.kind is Layer.TLS:
        assert address is not None
        if check.proxy:
            return _tls_via_proxy(check, address)
        return _tls_attempt(check, address)
    if check.kind is Layer.HTTP:
        return _http_attempt(check, address)
    if check.kind is Layer.CORS:
        return _cors_attempt(check, address)
    if check.kind is Layer.GRPC:
        return _grpc_attempt(check, address)
    if check.kind is Layer.ICMP:
        assert address is not None
        return _icmp_attempt(check, address)
    raise AssertionError(f"no probe for {check.kind}")


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


async def _tls_attempt(check: Check, address: str) -> Verdict:
    from pytest_autoglm.probes import tls as tls_probe

    section = check.spec
    assert isinstance(section, TlsSection)
    expect = tls_probe.TlsExpectation(
        port=section.port,
        sni=section.sni,
        verify=section.verify,
        min_version=section.min_version,
        accept=tuple(section.accept),
        min_days_valid=section.min_days_valid,
        ocsp_stapling=section.ocsp_stapling,
        client_cert=_path(section.client_cert),
        client_key=_path(section.client_key),
        **tls_probe.expectation_extras(section.model_dump()),
    )
    return await tls_probe.check_tls(
        check.host, address, expect, timeout=check.timeout, ca_bundle=_path(check.ca_bundle)
    )


async def _http_attempt(check: Check, address: str | None) -> Verdict:
    from pytest_autoglm.probes import http as http_probe

    spec = check.spec
    assert isinstance(spec, HttpCheck)
    expect = http_probe.HttpExpectation(
        url=spec.url,
        method=spec.method,
        status=parse_status(spec.status),
        body_contains=spec.body_contains,
        json=spec.json_,
        max_latency=spec.max_latency,
        follow_redirects=spec.follow_redirects,
        **http_probe.expectation_extras(spec.model_dump()),
        **{"headers": dict(spec.headers), **_http_stream_fields(spec)},
    )
    return await http_probe.check_http(
        expect,
        address=address,
        timeout=check.timeout,
        ca_bundle=_path(check.ca_bundle),
        client_cert=_path(check.client_cert),
        client_key=_path(check.client_key),
        proxy=check.proxy,
        verify=check.verify,
        redact=check.redact,
    )


async def _cors_attempt(check: Check, address: str | None) -> Verdict:
    from pytest_autoglm.probes import cors as cors_probe
    from pytest_autoglm.probes.http import ConnectionOptions

    spec = check.spec
    assert isinstance(spec, CorsOriginSpec)
    expect = cors_probe.CorsExpectation(
        url=spec.check.url,
        methods=tuple(spec.check.methods),
        headers=tuple(spec.check.headers),
        credentials=spec.check.credentials,
    )
    connection = ConnectionOptions(
        address=address,
        ca_bundle=_path(check.ca_bundle),
        client_cert=_path(check.client_cert),
        client_key=_path(check.client_key),
        proxy=check.proxy,
        verify=check.verify,
        redact=check.redact,
    )
    if spec.hole is not None:
        return await cors_probe.check_cors_hole(
            expect, spec.hole, tuple(spec.check.allow), timeout=check.timeout, **connection
        )
    assert spec.origin is not None
    return await cors_probe.check_cors_origin(
        expect, spec.origin, should_allow=spec.should_allow, timeout=check.timeout, **connection
    )


# -- the rest of the troubleshooting path (issue 19) -----------------------------------------------------------


async def _grpc_attempt(check: Check, address: str | None) -> Verdict:
    """grpcio itself is imported by the probe in a worker thread, never here on the loop."""
    from pytest_autoglm.probes import grpc as grpc_probe

    spec = check.spec
    assert isinstance(spec, GrpcSpec)
    entry = spec.check
    expect = grpc_probe.GrpcExpectation(
        port=entry.port,
        service=entry.service,
        tls=entry.tls,
        status=entry.status,
        keepalive=entry.keepalive,
        max_message=entry.max_message,
        sni=spec.sni,
        client_cert=_path(check.client_cert),
        client_key=_path(check.client_key),
        verify=check.verify,
    )
    return await grpc_probe.check_grpc(
        check.host,
        address,
        expect,
        timeout=check.timeout,
        ca_bundle=_path(check.ca_bundle),
        proxy=check.proxy,
        redact=check.redact,
    )


def _http_stream_fields(spec: HttpCheck) -> dict[str, Any]:
    """An http item's request body and stream expectation (issue 19), for ``HttpExpectation``."""
    from pytest_autoglm.probes.http.stream import StreamExpectation

    fields: dict[str, Any] = {}
    if spec.body is not None:
        fields["content"] = spec.body.encode() if isinstance(spec.body, str) else json.dumps(spec.body).encode()
        if not isinstance(spec.body, str) and not any(k.lower() == "content-type" for k in spec.headers):
            fields["headers"] = {**spec.headers, "Content-Type": "application/json"}
    if spec.stream is not None:
        s = spec.stream
        fields["stream"] = StreamExpectation(s.kind, s.first_event_within, s.min_events, s.done, s.max_gap)
    return fields


def _proxy_route(check: Check) -> tuple[Any, Verdict | None]:
    from pytest_autoglm.probes import proxy as proxy_probe

    assert check.proxy is not None
    try:
        return proxy_probe.ProxyRoute.parse(check.proxy), None
    except ValueError as exc:
        return None, Verdict.fail(check.kind, Reason.SETUP, check.redact(f"{check.host}: {exc}"))


async def _tcp_via_proxy(check: Check, spec: TcpCheckSpec, address: str) -> Verdict:
    """A tcp item whose target sits behind the run's proxy: judged on what the proxy says."""
    from pytest_autoglm.probes import proxy as proxy_probe

    route, failure = _proxy_route(check)
    if failure is not None:
        return failure
    return await proxy_probe.check_tcp_via_proxy(
        route, address, spec.port, spec.expect, check.timeout, host=check.host, redact=check.redact
    )


async def _tls_via_proxy(check: Check, address: str) -> Verdict:
    """A tls item through the proxy: the TLS probe's connections open a tunnel (probes.proxy.current_route)."""
    from pytest_autoglm.probes import proxy as proxy_probe

    route, failure = _proxy_route(check)
    if failure is not None:
        return failure
    token = proxy_probe.current_route.set(route)
    try:
        return await _tls_attempt(check, address)
    finally:
        proxy_probe.current_route.reset(token)


async def _icmp_attempt(check: Check, address: str) -> Verdict:
    from pytest_autoglm.probes import icmp as icmp_probe

    spec = check.spec
    assert isinstance(spec, IcmpSection)
    expect = icmp_probe.IcmpExpectation(
        reachable=spec.reachable,
        count=spec.count,
        interval=spec.interval,
        max_loss=spec.max_loss,
        max_rtt=spec.max_rtt,
        trace=spec.trace,
        max_hops=spec.max_hops,
    )
    return await icmp_probe.check_icmp(address, expect, timeout=check.timeout, host=check.host)
