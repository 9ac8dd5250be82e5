"""tcp and tls checks through real proxies on loopback: tinyproxy (HTTP CONNECT) and dante (SOCKS5).

What the proxy says of the target counts as the target's state; a proxy that is down or refuses
us is reason ``proxy``, never blamed on the target.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import trustme

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.http import HttpExpectation, check_http
from pytest_autoglm.probes.proxy import ProxyRoute, check_tcp_via_proxy, current_route
from pytest_autoglm.probes.tls import TlsExpectation, check_tls
from tests.fakes.proxies import RunningProxy, dante, tinyproxy
from tests.fakes.tcp_servers import refused_port, tcp_listener
from tests.fakes.tls_server import Issued, TlsServer

HOST = "secure.test"


@pytest.fixture(scope="module")
def http_proxy() -> Iterator[RunningProxy]:
    with tinyproxy() as running:
        yield running


@pytest.fixture(scope="module")
def socks_proxy() -> Iterator[RunningProxy]:
    with dante() as running:
        yield running


@pytest.fixture(params=["http", "socks5"])
def proxy(request: pytest.FixtureRequest, http_proxy: RunningProxy, socks_proxy: RunningProxy) -> RunningProxy:
    return http_proxy if request.param == "http" else socks_proxy


def tcp(proxy_url: str, port: int, expect: str = "open", timeout: float = 3.0) -> Verdict:
    return asyncio.run(check_tcp_via_proxy(ProxyRoute.parse(proxy_url), "127.0.0.1", port, expect, timeout))


def test_an_open_port_through_the_proxy(proxy):
    with tcp_listener("127.0.0.1") as listener:
        verdict = tcp(proxy.url, listener.port)
    assert verdict.passed, verdict.message
    assert verdict.details["state"] == "open"
    assert proxy.url in verdict.message


def test_a_refused_target_is_the_target_s_fault(proxy):
    with refused_port() as port:
        verdict = tcp(proxy.url, port)
        closed = tcp(proxy.url, port, "closed")
    assert (verdict.layer, verdict.reason) == (Layer.TCP, Reason.REFUSED)
    assert closed.passed, closed.message


def test_a_proxy_that_is_down_is_reason_proxy(proxy):
    with refused_port() as dead, tcp_listener("127.0.0.1") as listener:
        scheme = proxy.url.split(":", 1)[0]
        verdict = tcp(f"{scheme}://127.0.0.1:{dead}", listener.port)
        closed = tcp(f"{scheme}://127.0.0.1:{dead}", listener.port, "closed")
    assert (verdict.layer, verdict.reason) == (Layer.TCP, Reason.PROXY)
    assert "cannot reach the proxy" in verdict.message
    assert closed.reason is Reason.PROXY  # never a false "closed" pass: the target was not observed


def test_a_proxy_that_refuses_us_is_reason_proxy():
    with tinyproxy(allow="127.0.0.2") as denying, tcp_listener("127.0.0.1") as listener:
        verdict = tcp(denying.url, listener.port)
    assert verdict.reason is Reason.PROXY
    assert "403" in verdict.message


def test_a_socks_ruleset_refusal_is_reason_proxy(socks_proxy):
    # dante passes only loopback destinations: any other is the proxy's refusal, not the target's state.
    verdict = asyncio.run(check_tcp_via_proxy(ProxyRoute.parse(socks_proxy.url), "192.0.2.1", 443, "open", 3.0))
    assert verdict.reason is Reason.PROXY
    assert "ruleset" in verdict.message


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_via(proxy_url: str | None, port: int, ca_file) -> Verdict:
    async def go() -> Verdict:
        token = current_route.set(ProxyRoute.parse(proxy_url) if proxy_url else None)
        try:
            return await check_tls(HOST, "127.0.0.1", TlsExpectation(port=port), timeout=3.0, ca_bundle=ca_file)
        finally:
            current_route.reset(token)

    return asyncio.run(go())


def test_tls_through_the_proxy(proxy, ca, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TlsServer([Issued.from_trustme(ca.issue_cert(HOST))]) as server:
        verdict = tls_via(proxy.url, server.port, ca_file)
    assert verdict.passed, verdict.message


def test_tls_through_a_dead_proxy_is_reason_proxy(ca, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TlsServer([Issued.from_trustme(ca.issue_cert(HOST))]) as server, refused_port() as dead:
        verdict = tls_via(f"socks5://127.0.0.1:{dead}", server.port, ca_file)
        direct = tls_via(None, server.port, ca_file)
    assert verdict.reason is Reason.PROXY
    assert direct.passed, direct.message


def test_http_through_a_dead_proxy_is_reason_proxy():
    with refused_port() as dead, tcp_listener("127.0.0.1") as listener:
        expect = HttpExpectation(f"http://127.0.0.1:{listener.port}/")
        verdict = asyncio.run(check_http(expect, timeout=2.0, proxy=f"http://127.0.0.1:{dead}"))
    assert (verdict.layer, verdict.reason) == (Layer.TCP, Reason.PROXY)


def test_proxied_tcp_and_tls_items_through_the_plugin(pytester, http_proxy, socks_proxy, ca):
    ca.cert_pem.write_to_path(str(pytester.path / "ca.pem"))
    with (
        TlsServer([Issued.from_trustme(ca.issue_cert(HOST))]) as server,
        refused_port() as closed,
        refused_port() as dead,
    ):
        (pytester.path / "relay.yaml").write_text(
            f"""\
version: 1
defaults: {{timeout: 2s, retries: 0, proxy: "{http_proxy.url}", ca_bundle: ca.pem}}
targets:
  - name: via-connect
    host: 127.0.0.1
    tcp: {{open: [{server.port}], closed: [{closed}]}}
    tls: {{port: {server.port}, sni: {HOST}}}
  - name: via-socks
    host: 127.0.0.1
    proxy: "{socks_proxy.url}"
    tcp: {{open: [{server.port}]}}
    tls: {{port: {server.port}, sni: {HOST}}}
  - name: proxy-down
    host: 127.0.0.1
    proxy: "socks5://127.0.0.1:{dead}"
    tcp: {{open: [{server.port}]}}
    tls: {{port: {server.port}, sni: {HOST}}}
"""
        )
        result = pytester.runpytest("--autoglm-target", "relay.yaml")
    doc = json.loads((pytester.path / "reports" / "relay.json").read_text())
    by_id = {r["id"]: r for r in doc["results"]}
    for target in ("via-connect", "via-socks"):
        assert by_id[f"tls[relay:{target}:{server.port}]"]["outcome"] == "passed", by_id
    down_tcp = by_id[f"tcp[relay:proxy-down:{server.port}/open]"]
    assert (down_tcp["layer"], down_tcp["reason"]) == ("tcp", "proxy")
    assert by_id[f"tls[relay:proxy-down:{server.port}]"]["reason"] == "upstream"
    result.assert_outcomes(passed=5, failed=2)


def test_grpc_health_through_the_connect_proxy(http_proxy, socks_proxy):
    from pytest_autoglm.probes.grpc import GrpcExpectation, check_grpc
    from tests.fakes.grpc_server import grpc_server

    with grpc_server() as server, refused_port() as dead:
        expect = GrpcExpectation(port=server.port)
        via = asyncio.run(check_grpc("127.0.0.1", "127.0.0.1", expect, timeout=3.0, proxy=http_proxy.url))
        down = asyncio.run(check_grpc("127.0.0.1", "127.0.0.1", expect, timeout=3.0, proxy=f"http://127.0.0.1:{dead}"))
        socks = asyncio.run(check_grpc("127.0.0.1", "127.0.0.1", expect, timeout=3.0, proxy=socks_proxy.url))
    assert via.passed, via.message
    assert "CONNECT" in http_proxy.log.read_text(errors="replace")
    assert down.reason is Reason.PROXY
    assert socks.reason is Reason.SETUP
