"""The DNS layer against real DNS servers on loopback (tests/fakes/dns_server.py).

Every reason code of the DNS layer has a negative test asserting the exact
reason, next to a positive control. No traffic leaves 127.0.0.0/8 or ::1: the
system resolver is only exercised for ``localhost`` (/etc/hosts) or pointed at
a fake server.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import socket
import time
from collections.abc import Iterator, Sequence

import dns.message
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest_autoglm.probes.dns.system as dnsprobe
from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.resolvers import (
    SUPPORTED_TYPES,
    ResolverSpec,
    parse_resolver,
    validate_record_value,
)
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.dns import DnsAnswer, check_dns, query, resolve_addresses
from tests.fakes.dns_server import FakeDnsServer
from tests.timing import Stopwatch

LONG_TXT = "k=" + "x" * 298  # 300 bytes: served as two character-strings

ZONE = {
    "api.test.": {
        "A": ["192.0.2.10", "192.0.2.11"],
        "AAAA": ["2001:db8::10"],
        "TXT": ["v=spf1 include:_spf.example.com ~all", LONG_TXT],
        "MX": ["10 mail.test.", "20 Backup.Mail.test."],
        "CAA": ['0 issue "letsencrypt.org"'],
        "NS": ["ns1.test."],
    },
    "alias.test.": {"CNAME": ["API.test."]},
    "dangling.test.": {"CNAME": ["missing.test."]},
    "_https._tcp.api.test.": {"SRV": ["10 5 443 api.test."]},
    "v4only.test.": {"A": ["192.0.2.20"]},
    "txtonly.test.": {"TXT": ["hello"]},
    "1.0.0.127.in-addr.arpa.": {"PTR": ["localhost."]},
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.": {"PTR": ["localhost."]},
}

#: Turn an unclosed socket (a ResourceWarning raised in ``__del__``) into a test failure.
NO_LEAKS = pytest.mark.filterwarnings("error::ResourceWarning", "error::pytest.PytestUnraisableExceptionWarning")
pytestmark = [NO_LEAKS]

OTHER_ZONE = {**ZONE, "api.test.": {**ZONE["api.test."], "A": ["192.0.2.99"]}}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dns_server() -> Iterator[FakeDnsServer]:
    """One well-behaved server (UDP, TCP, DoT, DoH) shared by tests that do not count queries."""
    with FakeDnsServer(ZONE, tls=True, doh=True) as server:
        yield server


@pytest.fixture
def dns_fresh() -> Iterator[FakeDnsServer]:
    """A server of its own, for tests that assert on counters."""
    with FakeDnsServer(ZONE) as server:
        yield server


def run_check(
    name: str,
    rdtype: str,
    mode: str,
    values: Sequence[str],
    resolvers: Sequence[str | ResolverSpec],
    *,
    consistent: bool = False,
    timeout: float = 2.0,
    ssl_context: object = None,
) -> Verdict:
    specs = [r if isinstance(r, ResolverSpec) else parse_resolver(r) for r in resolvers]
    return asyncio.run(
        check_dns(
            name, rdtype, mode, tuple(values), specs, consistent=consistent, timeout=timeout, ssl_context=ssl_context
        )
    )


def run_query(name: str, rdtype: str, resolver: str, timeout: float = 2.0, **kwargs: object) -> DnsAnswer:
    return asyncio.run(query(name, rdtype, parse_resolver(resolver), timeout, **kwargs))  # type: ignore[arg-type]


def assert_fail(verdict: Verdict, reason: Reason) -> None:
    assert not verdict.passed, verdict
    assert verdict.layer is Layer.DNS
    assert verdict.reason is reason, verdict.message


# --------------------------------------------------------------------------- parse_resolver


@pytest.mark.parametrize(
    ("text", "kind", "host", "port", "url"),
    [
        ("system", "system", None, None, None),
        ("8.8.8.8", "udp", "8.8.8.8", 53, None),
        ("8.8.8.8:53", "udp", "8.8.8.8", 53, None),
        ("127.0.0.1:5353", "udp", "127.0.0.1", 5353, None),
        ("[2001:db8::53]:5353", "udp", "2001:db8::53", 5353, None),
        ("[2001:db8::53]", "udp", "2001:db8::53", 53, None),
        ("2001:db8::53", "udp", "2001:db8::53", 53, None),
        ("2001:DB8:0:0::53", "udp", "2001:db8::53", 53, None),
        ("tcp://1.1.1.1", "tcp", "1.1.1.1", 53, None),
        ("tcp://[::1]:5300", "tcp", "::1", 5300, None),
        ("tls://1.1.1.1", "tls", "1.1.1.1", 853, None),
        ("tls://9.9.9.9:8853", "tls", "9.9.9.9", 8853, None),
        ("tls://dns.quad9.net", "tls", "dns.quad9.net", 853, None),
        ("https://dns.google/dns-query", "https", "dns.google", 443, "https://dns.google/dns-query"),
        ("https://[::1]:8443/dns-query", "https", "::1", 8443, "https://[::1]:8443/dns-query"),
    ],
)
def test_parse_resolver_accepts(text: str, kind: str, host: str | None, port: int | None, url: str | None) -> None:
    spec = parse_resolver(text)
    assert (spec.kind, spec.host, spec.port, spec.url, spec.text) == (kind, host, port, url, text)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("x", "not an IP address"),
        ("", "empty"),
        ("dns.google", "not an IP address"),
        ("tcp://dns.google", "not an IP address"),
        ("8.8.8.8:0", "out of range 1..65535"),
        ("8.8.8.8:65536", "out of range 1..65535"),
        ("[::1]:99999", "out of range 1..65535"),
        ("8.8.8.8:dns", "not a number"),
        ("[::1", "unclosed"),
        ("quic://1.1.1.1", "unknown scheme"),
        ("https://dns.google", "needs a path"),
        ("https://dns.google/", "needs a path"),
        ("https://:443/dns-query", "missing host"),
        ("https://dns.google:0/dns-query", "out of range"),
        ("tls://1.1.1.1/x", "no path"),
        ("8.8.8.8 8.8.4.4", "whitespace"),
        ("999.1.1.1", "not an IP address"),
    ],
)
def test_parse_resolver_rejects_with_a_hint(text: str, hint: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_resolver(text)
    message = str(info.value)
    assert hint in message
    assert f"invalid resolver {text!r}" in message
    assert "expected 'system', an IP address with optional :port, tcp://, tls:// or https://host/dns-query" in message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60) | st.from_regex(r"\A(tcp|tls|https|udp)://[\[\]0-9a-f:.]{0,30}(/[a-z-]*)?\Z"))
def test_parse_resolver_only_raises_value_error(text: str) -> None:
    try:
        spec = parse_resolver(text)
    except ValueError:
        return
    assert spec.kind in ("system", "udp", "tcp", "tls", "https")
    assert spec.kind == "system" or (spec.port is not None and 1 <= spec.port <= 65535)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), st.integers(min_value=-5, max_value=70000))
def test_parse_resolver_ports_roundtrip(address: object, port: int) -> None:
    host = str(address)
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if port < 0:
        with pytest.raises(ValueError):
            parse_resolver(text)
    elif 1 <= port <= 65535:
        spec = parse_resolver(text)
        assert (spec.kind, spec.host, spec.port) == ("udp", host, port)
    else:
        with pytest.raises(ValueError, match=r"1\.\.65535"):
            parse_resolver(text)


# --------------------------------------------------------------------------- validate_record_value


@pytest.mark.parametrize(
    ("rdtype", "value", "normalized"),
    [
        ("A", "192.0.2.10", "192.0.2.10"),
        ("a", "192.0.2.10", "192.0.2.10"),
        ("AAAA", "2001:DB8:0:0::10", "2001:db8::10"),
        ("CNAME", "api.cdn.example.net", "api.cdn.example.net."),
        ("CNAME", "API.cdn.Example.NET.", "api.cdn.example.net."),
        ("NS", "ns1.example.com", "ns1.example.com."),
        ("PTR", "host.example.com.", "host.example.com."),
        ("MX", "10 Mail.Example.com", "10 mail.example.com."),
        ("SRV", "10 5 443 svc.example.com", "10 5 443 svc.example.com."),
        ("CAA", "0 issue letsencrypt.org", '0 issue "letsencrypt.org"'),
        ("CAA", '0 ISSUE "letsencrypt.org"', '0 issue "letsencrypt.org"'),
        ("TXT", "v=spf1 include:_spf.example.com ~all", "v=spf1 include:_spf.example.com ~all"),
        ("TXT", '"v=spf1 " "-all"', "v=spf1 -all"),
    ],
)
def test_validate_record_value_normalizes(rdtype: str, value: str, normalized: str) -> None:
    assert validate_record_value(rdtype, value) == normalized
    assert validate_record_value(rdtype, normalized) == normalized  # idempotent


@pytest.mark.parametrize(
    ("rdtype", "value", "hint"),
    [
        ("A", "2001:db8::1", "IPv4 address"),
        ("A", "192.0.2", "IPv4 address"),
        ("AAAA", "192.0.2.1", "IPv6 address"),
        ("MX", "mail.example.com", "10 mail.example.com."),
        ("SRV", "10 443 svc.example.com", "priority weight port target"),
        ("CNAME", "a..b", "domain name"),
        ("CNAME", "", "domain name"),
        ("CAA", "issue letsencrypt.org", "flags tag value"),
        ("SOA", "x", "unsupported record type 'SOA'"),
    ],
)
def test_validate_record_value_rejects_with_a_hint(rdtype: str, value: str, hint: str) -> None:
    with pytest.raises(ValueError, match="expected") as info:
        validate_record_value(rdtype, value)
    assert hint in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SUPPORTED_TYPES), st.text(max_size=40))
def test_validate_record_value_only_raises_value_error_and_is_idempotent(rdtype: str, value: str) -> None:
    try:
        normalized = validate_record_value(rdtype, value)
    except ValueError:
        return
    assert validate_record_value(rdtype, normalized) == normalized


# --------------------------------------------------------------------------- modes: positive controls and failures


def test_equal_set_passes(dns_server: FakeDnsServer) -> None:
    verdict = run_check("api.test", "A", "equal", ["192.0.2.11", "192.0.2.10"], [dns_server.address])
    assert verdict.passed, verdict.message
    assert verdict.details["answers"] == {dns_server.address: ["192.0.2.10", "192.0.2.11"]}
    json.dumps(verdict.details)  # builtin types only


def test_equal_set_mismatch_names_everything(dns_server: FakeDnsServer) -> None:
    verdict = run_check("api.test", "A", "equal", ["192.0.2.10"], [dns_server.address])
    assert_fail(verdict, Reason.MISMATCH)
    assert not verdict.transient  # a definite wrong answer is not retried
    assert verdict.message == (
        f"api.test A via {dns_server.address}: got {{192.0.2.10, 192.0.2.11}}, expected {{192.0.2.10}}"
    )


def test_present_passes_and_fails_on_nxdomain_and_nodata(dns_server: FakeDnsServer) -> None:
    assert run_check("api.test", "AAAA", "present", [], [dns_server.address]).passed
    assert_fail(run_check("nope.test", "AAAA", "present", [], [dns_server.address]), Reason.NXDOMAIN)
    verdict = run_check("v4only.test", "AAAA", "present", [], [dns_server.address])
    assert_fail(verdict, Reason.NODATA)
    assert "expected any AAAA record" in verdict.message


@pytest.mark.parametrize("name", ["nope.test", "v4only.test"], ids=["nxdomain", "nodata"])
def test_absent_is_satisfied_by_nxdomain_and_nodata(dns_server: FakeDnsServer, name: str) -> None:
    assert run_check(name, "MX", "absent", [], [dns_server.address]).passed


def test_absent_with_a_record_is_unexpected(dns_server: FakeDnsServer) -> None:
    verdict = run_check("api.test", "MX", "absent", [], [dns_server.address])
    assert_fail(verdict, Reason.UNEXPECTED)
    assert "got {10 mail.test., 20 backup.mail.test.}, expected no MX record" in verdict.message
    assert not verdict.transient


def test_contains(dns_server: FakeDnsServer) -> None:
    ok = run_check("api.test", "TXT", "contains", ["v=spf1 include:_spf.example.com ~all"], [dns_server.address])
    assert ok.passed, ok.message
    verdict = run_check("api.test", "TXT", "contains", ["v=spf1 -all"], [dns_server.address])
    assert_fail(verdict, Reason.MISMATCH)
    assert "missing {v=spf1 -all}" in verdict.message


def test_nxdomain(dns_server: FakeDnsServer) -> None:
    verdict = run_check("nope.test", "A", "equal", ["192.0.2.10"], [dns_server.address])
    assert_fail(verdict, Reason.NXDOMAIN)
    assert not verdict.transient
    assert "nope.test A via" in verdict.message and "NXDOMAIN" in verdict.message
    assert verdict.details["answers"] == {dns_server.address: "nxdomain"}


def test_nodata_in_equal_mode_is_nodata_not_mismatch(dns_server: FakeDnsServer) -> None:
    verdict = run_check("v4only.test", "AAAA", "equal", ["2001:db8::1"], [dns_server.address])
    assert_fail(verdict, Reason.NODATA)
    assert verdict.details["answers"] == {dns_server.address: "nodata"}


def test_servfail() -> None:
    with FakeDnsServer(ZONE, mode="servfail") as server:
        verdict = run_check("api.test", "A", "present", [], [server.address])
    assert_fail(verdict, Reason.SERVFAIL)
    assert verdict.transient
    assert "SERVFAIL" in verdict.message


def test_servfail_for_one_name_only() -> None:
    with FakeDnsServer(ZONE, servfail_names=["api.test."]) as server:
        assert_fail(run_check("api.test", "A", "present", [], [server.address]), Reason.SERVFAIL)
        assert run_check("v4only.test", "A", "present", [], [server.address]).passed


def test_refused() -> None:
    with FakeDnsServer(ZONE, mode="refused") as server:
        verdict = run_check("api.test", "A", "present", [], [server.address])
    assert_fail(verdict, Reason.REFUSED)
    assert verdict.transient
    assert "REFUSED" in verdict.message


def test_nothing_listening_is_refused_at_once() -> None:
    with FakeDnsServer(ZONE) as server:
        port = server.port
    watch = Stopwatch().start()
    verdict = run_check("api.test", "A", "present", [], [f"127.0.0.1:{port}"], timeout=2.0)
    assert_fail(verdict, Reason.REFUSED)
    assert "connection refused" in verdict.message
    assert watch.now() < 1.0


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls", "doh"])
def test_timeout_is_bounded(transport: str) -> None:
    with FakeDnsServer(ZONE, mode="silent", tls=transport == "tls", doh=transport == "doh") as server:
        resolver = {"udp": server.address, "tcp": server.tcp_address}.get(transport)
        resolver = resolver or (server.tls_address if transport == "tls" else server.doh_url)
        ctx = server.client_ssl_context() if transport in ("tls", "doh") else None
        # TLS transports get time for the handshake, so the query does reach the silent server
        timeout = 0.3 if transport in ("udp", "tcp") else 1.0
        watch = Stopwatch().start()
        verdict = run_check("api.test", "A", "present", [], [resolver], timeout=timeout, ssl_context=ctx)
        elapsed = watch.now()
        assert server.queries >= 1  # the query arrived; the server kept quiet
    assert_fail(verdict, Reason.TIMEOUT)
    assert verdict.transient
    assert f"no answer within {format_duration(timeout)}" in verdict.message
    assert elapsed < timeout + 0.7


@pytest.mark.parametrize("scheme", ["tls", "https"])
def test_stalled_tls_handshake_is_bounded_and_leaks_no_socket(scheme: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), never speaks TLS
        port = listener.getsockname()[1]
        resolver = f"tls://127.0.0.1:{port}" if scheme == "tls" else f"https://127.0.0.1:{port}/dns-query"
        watch = Stopwatch().start()
        verdict = run_check("api.test", "A", "present", [], [resolver], timeout=1.0)
        assert watch.now() < 3.0  # bounded by the timeout (a loose bound: CI machines are busy)
    gc.collect()  # an unclosed socket would warn here, and the filter makes that an error
    assert_fail(verdict, Reason.TIMEOUT)


def test_resolvers_are_queried_concurrently() -> None:
    with FakeDnsServer(ZONE, mode="silent") as a, FakeDnsServer(ZONE, mode="silent") as b:
        watch = Stopwatch().start()
        verdict = run_check("api.test", "A", "present", [], [a.address, b.address, a.tcp_address], timeout=0.3)
        elapsed = watch.now()
    assert_fail(verdict, Reason.TIMEOUT)
    assert elapsed < 0.8  # three silent resolvers, one timeout's worth of waiting


def test_invalid_expectation_is_a_setup_error(dns_server: FakeDnsServer) -> None:
    verdict = run_check("api.test", "A", "equal", ["not-an-ip"], [dns_server.address])
    assert_fail(verdict, Reason.SETUP)
    assert not verdict.transient


def test_message_names_the_resolver_that_broke_it(dns_server: FakeDnsServer) -> None:
    with FakeDnsServer(ZONE, mode="refused") as bad:
        verdict = run_check("api.test", "A", "present", [], [dns_server.address, bad.address])
    assert_fail(verdict, Reason.REFUSED)
    assert f"via {bad.address}:" in verdict.message
    assert verdict.details["answers"] == {
        dns_server.address: ["192.0.2.10", "192.0.2.11"],
        bad.address: "refused",
    }


# --------------------------------------------------------------------------- transports


def test_truncation_falls_back_to_tcp() -> None:
    with FakeDnsServer(ZONE, truncate_udp=True) as server:
        answer = run_query("api.test", "A", server.address)
        verdict = run_check("api.test", "A", "equal", ["192.0.2.10", "192.0.2.11"], [server.address])
        assert server.udp_queries >= 2
        assert server.tcp_queries >= 2
    assert answer.used_tcp
    assert answer.records == ("192.0.2.10", "192.0.2.11")
    assert verdict.passed, verdict.message


def test_udp_without_truncation_does_not_use_tcp(dns_fresh: FakeDnsServer) -> None:
    answer = run_query("api.test", "A", dns_fresh.address)
    assert not answer.used_tcp
    assert (dns_fresh.udp_queries, dns_fresh.tcp_queries) == (1, 0)


def test_tcp_resolver(dns_fresh: FakeDnsServer) -> None:
    verdict = run_check("api.test", "A", "equal", ["192.0.2.10", "192.0.2.11"], [dns_fresh.tcp_address])
    assert verdict.passed, verdict.message
    assert (dns_fresh.udp_queries, dns_fresh.tcp_queries) == (0, 1)


def test_dot_with_trusted_ca(dns_server: FakeDnsServer) -> None:
    ctx = dns_server.client_ssl_context()
    verdict = run_check(
        "api.test", "A", "equal", ["192.0.2.10", "192.0.2.11"], [dns_server.tls_address], ssl_context=ctx
    )
    assert verdict.passed, verdict.message
    named = f"tls://localhost:{dns_server.tls_port}"  # a named DoT server: SNI and hostname check on "localhost"
    assert run_check("api.test", "A", "present", [], [named], ssl_context=ctx).passed
    gc.collect()  # the TLS connection must be closed, not left to the garbage collector


def test_dot_with_untrusted_certificate_fails_clearly(dns_server: FakeDnsServer) -> None:
    verdict = run_check("api.test", "A", "present", [], [dns_server.tls_address])  # default trust store
    assert_fail(verdict, Reason.SERVFAIL)
    assert "TLS" in verdict.message and "certificate verify failed" in verdict.message


def test_doh(dns_server: FakeDnsServer) -> None:
    ctx = dns_server.client_ssl_context()
    verdict = run_check("alias.test", "A", "equal", ["192.0.2.10", "192.0.2.11"], [dns_server.doh_url], ssl_context=ctx)
    assert verdict.passed, verdict.message
    assert_fail(run_check("nope.test", "A", "present", [], [dns_server.doh_url], ssl_context=ctx), Reason.NXDOMAIN)


def test_doh_failures_are_explained(dns_server: FakeDnsServer) -> None:
    untrusted = run_check("api.test", "A", "present", [], [dns_server.doh_url])  # default trust store
    assert_fail(untrusted, Reason.SERVFAIL)
    assert "TLS with the resolver failed" in untrusted.message
    wrong_path = dns_server.doh_url.replace("/dns-query", "/nope")
    verdict = run_check("api.test", "A", "present", [], [wrong_path], ssl_context=dns_server.client_ssl_context())
    assert_fail(verdict, Reason.SERVFAIL)
    assert "HTTP 404" in verdict.message


def test_doh_fake_also_answers_get(dns_server: FakeDnsServer) -> None:
    wire = dns.message.make_query("api.test.", "A").to_wire()
    param = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
    reply = httpx.get(
        dns_server.doh_url, params={"dns": param}, verify=dns_server.client_ssl_context(), trust_env=False
    )
    assert reply.headers["content-type"] == "application/dns-message"
    assert len(dns.message.from_wire(reply.content).answer) == 1


# --------------------------------------------------------------------------- consistency


def test_consistent_resolvers_pass() -> None:
    with FakeDnsServer(ZONE) as a, FakeDnsServer(ZONE) as b:
        verdict = run_check("api.test", "A", "present", [], [a.address, b.tcp_address], consistent=True)
    assert verdict.passed, verdict.message


def test_inconsistent_resolvers() -> None:
    with FakeDnsServer(ZONE) as a, FakeDnsServer(OTHER_ZONE) as b:
        verdict = run_check("api.test", "A", "present", [], [a.address, b.address], consistent=True)
        relaxed = run_check("api.test", "A", "present", [], [a.address, b.address], consistent=False)
    assert_fail(verdict, Reason.INCONSISTENT)
    assert not verdict.transient
    assert f"{a.address} gave {{192.0.2.10, 192.0.2.11}}" in verdict.message
    assert f"{b.address} gave {{192.0.2.99}}" in verdict.message
    assert relaxed.passed  # each resolver passes on its own


def test_each_resolver_is_judged_before_consistency() -> None:
    with FakeDnsServer(ZONE) as a, FakeDnsServer(OTHER_ZONE) as b:
        verdict = run_check(
            "api.test", "A", "equal", ["192.0.2.10", "192.0.2.11"], [a.address, b.address], consistent=True
        )
    assert_fail(verdict, Reason.MISMATCH)
    assert f"via {b.address}: got {{192.0.2.99}}" in verdict.message


def test_nxdomain_and_nodata_are_inconsistent() -> None:
    with FakeDnsServer(ZONE) as a, FakeDnsServer({"other.test.": {"A": ["192.0.2.1"]}}) as b:
        verdict = run_check("v4only.test", "MX", "absent", [], [a.address, b.address], consistent=True)
    assert_fail(verdict, Reason.INCONSISTENT)


# --------------------------------------------------------------------------- record types and normalization


def test_cname_without_trailing_dot_and_any_case(dns_server: FakeDnsServer) -> None:
    verdict = run_check("alias.test", "CNAME", "equal", ["api.test"], [dns_server.address])
    assert verdict.passed, verdict.message
    assert verdict.details["answers"] == {dns_server.address: ["api.test."]}
    assert run_check("ALIAS.test.", "CNAME", "equal", ["API.TEST."], [dns_server.address]).passed


def test_cname_question_on_a_name_without_cname_is_nodata(dns_server: FakeDnsServer) -> None:
    assert_fail(run_check("api.test", "CNAME", "present", [], [dns_server.address]), Reason.NODATA)


def test_address_records_follow_the_cname_chain(dns_server: FakeDnsServer) -> None:
    assert run_check("alias.test", "A", "equal", ["192.0.2.10", "192.0.2.11"], [dns_server.address]).passed
    assert_fail(run_check("dangling.test", "A", "present", [], [dns_server.address]), Reason.NXDOMAIN)


@pytest.mark.parametrize(
    ("name", "rdtype", "values"),
    [
        ("api.test", "MX", ["10 mail.test", "20 backup.mail.test."]),
        ("api.test", "TXT", ["v=spf1 include:_spf.example.com ~all", LONG_TXT]),
        ("_https._tcp.api.test", "SRV", ["10 5 443 api.test"]),
        ("api.test", "CAA", ["0 issue letsencrypt.org"]),
        ("api.test", "NS", ["NS1.test"]),
        ("api.test", "AAAA", ["2001:DB8:0:0:0:0:0:10"]),
    ],
)
def test_record_types_equal(dns_server: FakeDnsServer, name: str, rdtype: str, values: list[str]) -> None:
    verdict = run_check(name, rdtype, "equal", values, [dns_server.address])
    assert verdict.passed, verdict.message


def test_txt_character_strings_are_joined(dns_server: FakeDnsServer) -> None:
    answer = run_query("api.test", "TXT", dns_server.address)
    assert LONG_TXT in answer.records  # 300 bytes arrive as two strings, compared as one


@pytest.mark.parametrize(("address", "reverse"), [("127.0.0.1", "1.0.0.127.in-addr.arpa."), ("::1", "ip6.arpa.")])
def test_ptr_on_an_ip_literal_asks_the_reverse_name(dns_fresh: FakeDnsServer, address: str, reverse: str) -> None:
    verdict = run_check(address, "PTR", "equal", ["localhost"], [dns_fresh.address])
    assert verdict.passed, verdict.message
    (_transport, qname, qtype), *_ = dns_fresh.questions
    assert qtype == "PTR" and qname.endswith(reverse)


# --------------------------------------------------------------------------- system resolver


def test_system_asks_nameservers_in_order_until_one_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        FakeDnsServer(ZONE, mode="silent") as silent,
        FakeDnsServer(ZONE, mode="servfail") as failing,
        FakeDnsServer(ZONE) as good,
    ):
        servers = (
            (ip, port)
            for ip, port in [("127.0.0.1", silent.port), ("127.0.0.1", failing.port), ("127.0.0.1", good.port)]
        )
        monkeypatch.setattr(dnsprobe, "system_nameservers", lambda: tuple(servers))
        watch = Stopwatch().start()
        verdict = run_check("api.test", "A", "equal", ["192.0.2.10", "192.0.2.11"], ["system"], timeout=0.9)
        assert watch.now() < 1.5
        assert (silent.queries, failing.queries, good.queries) == (1, 1, 1)
    assert verdict.passed, verdict.message


def test_system_with_only_silent_nameservers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeDnsServer(ZONE, mode="silent") as silent:
        monkeypatch.setattr(dnsprobe, "system_nameservers", lambda: (("127.0.0.1", silent.port),) * 2)
        watch = Stopwatch().start()
        verdict = run_check("api.test", "A", "present", [], ["system"], timeout=0.4)
        assert watch.now() < 1.0
    assert_fail(verdict, Reason.TIMEOUT)


def test_system_servfail_is_reported_as_servfail(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeDnsServer(ZONE, mode="servfail") as failing:
        monkeypatch.setattr(dnsprobe, "system_nameservers", lambda: (("127.0.0.1", failing.port),))
        verdict = run_check("api.test", "A", "present", [], ["system"])
    assert_fail(verdict, Reason.SERVFAIL)
    assert "via system" in verdict.message and f"nameserver 127.0.0.1:{failing.port}" in verdict.message


# --------------------------------------------------------------------------- resolve_addresses


@pytest.mark.parametrize(
    ("host", "expected"), [("192.0.2.7", ("192.0.2.7",)), ("2001:DB8::7", ("2001:db8::7",)), ("[::1]", ("::1",))]
)
def test_resolve_addresses_of_an_ip_literal(host: str, expected: tuple[str, ...]) -> None:
    assert asyncio.run(resolve_addresses(host, [parse_resolver("192.0.2.53")], 0.5)) == (expected, None)


def test_resolve_addresses_of_localhost_via_system() -> None:
    addresses, failure = asyncio.run(resolve_addresses("localhost", [parse_resolver("system")], 2.0))
    assert failure is None
    assert "127.0.0.1" in addresses
    assert set(addresses) <= {"127.0.0.1", "::1"}


def test_resolve_addresses_via_a_fake_server(dns_server: FakeDnsServer) -> None:
    spec = [parse_resolver(dns_server.address)]
    assert asyncio.run(resolve_addresses("alias.test", spec, 2.0)) == (
        ("192.0.2.10", "192.0.2.11", "2001:db8::10"),
        None,
    )
    assert asyncio.run(resolve_addresses("v4only.test", spec, 2.0)) == (("192.0.2.20",), None)

    addresses, failure = asyncio.run(resolve_addresses("nope.test", spec, 2.0))
    assert addresses == () and failure is not None
    assert_fail(failure, Reason.NXDOMAIN)
    assert "nope.test" in failure.message

    addresses, failure = asyncio.run(resolve_addresses("txtonly.test", spec, 2.0))
    assert addresses == () and failure is not None
    assert_fail(failure, Reason.NODATA)


def test_resolve_addresses_timeout() -> None:
    with FakeDnsServer(ZONE, mode="silent") as server:
        watch = Stopwatch().start()
        addresses, failure = asyncio.run(resolve_addresses("api.test", [parse_resolver(server.address)], 0.3))
        assert watch.now() < 1.0
    assert addresses == () and failure is not None
    assert_fail(failure, Reason.TIMEOUT)
    assert failure.transient


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Reason.NXDOMAIN),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), Reason.SERVFAIL),
    ],
)
def test_system_getaddrinfo_errors_are_mapped(monkeypatch: pytest.MonkeyPatch, error: OSError, reason: Reason) -> None:
    def fake_getaddrinfo(*args: object, **kwargs: object) -> list[object]:
        raise error

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    addresses, failure = asyncio.run(resolve_addresses("db.internal.test", [], 1.0))
    assert addresses == () and failure is not None
    assert_fail(failure, reason)
    assert "db.internal.test via system" in failure.message


def test_system_getaddrinfo_that_hangs_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_getaddrinfo(*args: object, **kwargs: object) -> list[object]:
        time.sleep(1.5)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    watch = Stopwatch().start()
    _, failure = asyncio.run(resolve_addresses("slow.internal.test", [], 0.2))
    assert watch.now() < 1.0  # asyncio.run does not wait for the stuck lookup
    assert failure is not None
    assert_fail(failure, Reason.TIMEOUT)


def test_system_resolver_answers_address_records_from_etc_hosts_first() -> None:
    """As the stub resolver does for applications: `localhost` has an A record via system, no DNS query."""
    from pytest_autoglm.probes.dns import hosts_file_records

    assert "127.0.0.1" in hosts_file_records("localhost", "A")
    assert hosts_file_records("localhost", "MX") == ()
    verdict = asyncio.run(
        check_dns(
            "localhost", "A", "contains", ("127.0.0.1",), [parse_resolver("system")], consistent=False, timeout=1.0
        )
    )
    assert verdict.passed, verdict.message
