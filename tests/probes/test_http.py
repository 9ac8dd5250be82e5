"""The http probe against real servers on loopback (uvicorn + Starlette, and a raw
asyncio server that misbehaves on purpose). Needs starlette and uvicorn."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import StatusSpec, parse_status
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.http import HttpExpectation, check_http
from tests.fakes.http_servers import (
    SECRET_TOKEN,
    RawHttpServer,
    UvicornServer,
    basic_app,
    filtered_port,
    unused_port,
)
from tests.timing import Seconds, Stopwatch

MARGIN = 0.5  # seconds a bounded attempt may overrun its timeout (scheduling, teardown)


def run(expect: HttpExpectation, **kwargs: Any) -> Verdict:
    kwargs.setdefault("timeout", 3.0)
    return asyncio.run(check_http(expect, **kwargs))


def timed(expect: HttpExpectation, **kwargs: Any) -> tuple[Verdict, Seconds]:
    """The verdict and its duration; upper bounds on it leave out our own waits for a CPU (tests/timing.py)."""
    with Stopwatch() as watch:
        verdict = run(expect, **kwargs)
    return verdict, watch.elapsed


@dataclass
class Pki:
    ca: trustme.CA
    ca_bundle: Path
    client_cert: Path
    server: trustme.LeafCert
    expired: trustme.LeafCert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    ca.issue_cert("client.lab").private_key_and_cert_chain_pem.write_to_path(str(tmp / "client.pem"))
    server = ca.issue_cert("app.test", "127.0.0.1")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    expired = ca.issue_cert("app.test", "127.0.0.1", not_before=past - dt.timedelta(days=60), not_after=past)
    return Pki(ca, tmp / "ca.pem", tmp / "client.pem", server, expired)


@pytest.fixture(scope="module")
def web() -> Iterator[UvicornServer]:
    with UvicornServer(basic_app()) as server:
        yield server


@pytest.fixture(scope="module")
def other_host() -> Iterator[UvicornServer]:
    """Another host: same app on 127.0.0.2 (a different origin, no name resolution)."""
    with UvicornServer(basic_app(), host="127.0.0.2") as server:
        yield server


@pytest.fixture(scope="module")
def tls_web(pki: Pki) -> Iterator[UvicornServer]:
    with UvicornServer(basic_app(), cert=pki.server) as server:
        yield server


@pytest.fixture(scope="module")
def raw() -> Iterator[RawHttpServer]:
    with RawHttpServer() as server:
        yield server


# --------------------------------------------------------------------------- status


def test_200_passes_with_details(web: UvicornServer) -> None:
    verdict = run(HttpExpectation(web.url("/ok")))
    assert verdict.passed, verdict.message
    d = verdict.details
    assert d["status"] == 200 and d["http_version"] == "HTTP/1.1"
    assert d["headers"]["server"] == "uvicorn" and d["headers"]["content-type"] == "application/json"
    assert set(d["timings_ms"]) >= {"dns", "connect", "tls", "first_byte", "total"}
    assert d["timings_ms"]["connect"] is not None and d["timings_ms"]["tls"] is None
    assert d["bytes_read"] == 69 and d["truncated"] is False
    assert verdict.address == d["address"] == "127.0.0.1"


def test_503_is_a_transient_status_failure(web: UvicornServer) -> None:
    verdict = run(HttpExpectation(web.url("/status/503")))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.HTTP, Reason.STATUS, True)
    assert "503" in verdict.message and "expected 2xx" in verdict.message


def test_404_is_a_definite_status_failure(web: UvicornServer) -> None:
    verdict = run(HttpExpectation(web.url("/status/404")))
    assert (verdict.reason, verdict.transient) == (Reason.STATUS, False)


def test_401_is_auth(web: UvicornServer) -> None:
    verdict = run(HttpExpectation(web.url("/auth")))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.HTTP, Reason.AUTH, False)
    assert verdict.details["headers"]["www-authenticate"] == "Bearer"


def test_401_passes_when_expected(web: UvicornServer) -> None:
    assert run(HttpExpectation(web.url("/auth"), status=parse_status(401))).passed


def test_header_authenticates(web: UvicornServer) -> None:
    expect = HttpExpectation(web.url("/auth"), headers={"Authorization": f"Bearer {SECRET_TOKEN}"})
    assert run(expect).passed


@pytest.mark.parametrize(
    ("path", "status", "passed"),
    [
        ("/status/204", [200, 204], True),
        ("/status/202", [200, 204], False),
        ("/status/204", "2xx", True),
        ("/status/302", "3xx", True),
        ("/status/200", "3xx", False),
        ("/status/418", ["4xx", 200], True),
    ],
)
def test_status_forms(web: UvicornServer, path: str, status: object, passed: bool) -> None:
    verdict = run(HttpExpectation(web.url(path), status=parse_status(status)))
    assert verdict.passed is passed, verdict.message
    if not passed:
        assert verdict.reason is Reason.STATUS


def test_head_reads_no_body(web: UvicornServer) -> None:
    verdict = run(HttpExpectation(web.url("/status/200"), method="head"))
    assert verdict.passed and verdict.details["bytes_read"] == 0 and verdict.details["method"] == "HEAD"


# --------------------------------------------------------------------------- body, json, latency


def test_body_contains(web: UvicornServer) -> None:
    assert run(HttpExpectation(web.url("/ok"), body_contains='"status":"ok"')).passed
    verdict = run(HttpExpectation(web.url("/ok"), body_contains="degraded"))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.HTTP, Reason.BODY, False)
    assert "degraded" in verdict.message and '"status"' in verdict.details["body_snippet"]


def test_json_subset_nested(web: UvicornServer) -> None:
    assert run(HttpExpectation(web.url("/ok"), json={"status": "ok", "service": {"version": 3}, "tags": ["b"]})).passed


@pytest.mark.parametrize(
    ("expected", "where"),
    [
        ({"service": {"version": 4}}, "$.service.version"),
        ({"service": {"region": "eu"}}, "$.service.region: missing"),
        ({"tags": ["c"]}, "$.tags[0]"),
        ({"service": {"version": True}}, "$.service.version"),  # true is not 1
    ],
)
def test_json_mismatch_is_body(web: UvicornServer, expected: dict[str, Any], where: str) -> None:
    verdict = run(HttpExpectation(web.url("/ok"), json=expected))
    assert verdict.reason is Reason.BODY and where in verdict.message


def test_json_on_a_non_json_body(raw: RawHttpServer) -> None:
    verdict = run(HttpExpectation(raw.url("/ok"), json={"a": 1}))
    assert verdict.reason is Reason.BODY and "not JSON" in verdict.message


def test_slow(web: UvicornServer) -> None:
    verdict = run(HttpExpectation(web.url("/slow?delay=0.4"), max_latency=0.15))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.HTTP, Reason.SLOW, False)
    assert verdict.details["timings_ms"]["total"] >= 400
    assert run(HttpExpectation(web.url("/slow?delay=0.1"), max_latency=2.0)).passed


# --------------------------------------------------------------------------- deadlines and misbehaviour


def test_no_answer_times_out_within_the_deadline(raw: RawHttpServer) -> None:
    verdict, elapsed = timed(HttpExpectation(raw.url("/silent")), timeout=1.0)
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.HTTP, Reason.TIMEOUT, True)
    assert elapsed < 1.0 + MARGIN


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-head"])
def test_trickle_is_bounded_by_the_total_deadline(raw: RawHttpServer, path: str) -> None:
    verdict, elapsed = timed(HttpExpectation(raw.url(path)), timeout=1.2)
    assert (verdict.layer, verdict.reason) == (Layer.HTTP, Reason.TIMEOUT)
    assert elapsed < 1.2 + MARGIN


def test_huge_body_is_capped(raw: RawHttpServer) -> None:
    verdict, elapsed = timed(HttpExpectation(raw.url("/huge")), timeout=5.0)
    assert verdict.passed, verdict.message
    cap = 1024 * 1024
    assert verdict.details["bytes_read"] <= cap and verdict.details["truncated"] is True
    assert elapsed < 2.0


def test_huge_body_with_a_small_cap_and_a_missing_needle(raw: RawHttpServer) -> None:
    verdict = run(HttpExpectation(raw.url("/huge"), body_contains="needle", max_body_bytes=65536))
    assert verdict.reason is Reason.BODY and "first 65536 bytes" in verdict.message
    assert verdict.details["bytes_read"] <= 65536


@pytest.mark.parametrize("path", ["/garbage", "/close", "/reset"])
def test_broken_http_is_protocol(raw: RawHttpServer, path: str) -> None:
    verdict = run(HttpExpectation(raw.url(path)), timeout=2.0)
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.HTTP, Reason.PROTOCOL, True)


def test_refused_port_is_tcp_refused() -> None:
    verdict = run(HttpExpectation(f"http://127.0.0.1:{unused_port()}/"))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.TCP, Reason.REFUSED, True)
    assert verdict.address == "127.0.0.1"


def test_dropped_syn_is_tcp_filtered_within_the_deadline() -> None:
    with filtered_port() as port:
        verdict, elapsed = timed(HttpExpectation(f"http://127.0.0.1:{port}/"), timeout=1.0)
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.TCP, Reason.FILTERED, True)
    assert elapsed < 1.0 + MARGIN


# --------------------------------------------------------------------------- redirects


def test_redirect_to_another_host_is_not_followed_by_default(web: UvicornServer, other_host: UvicornServer) -> None:
    target = other_host.url("/ok")
    verdict = run(HttpExpectation(web.url(f"/redirect?to={quote(target)}")))
    assert (verdict.reason, verdict.transient) == (Reason.STATUS, False)
    assert "302" in verdict.message and target in verdict.message
    assert verdict.details["headers"]["location"] == target


def test_redirect_followed_when_asked_without_forwarding_secrets(web: UvicornServer, other_host: UvicornServer) -> None:
    target = other_host.url("/echo")
    expect = HttpExpectation(
        web.url(f"/redirect?to={quote(target)}"),
        follow_redirects=True,
        headers={"Authorization": f"Bearer {SECRET_TOKEN}", "Accept": "application/json"},
        json={"authorization": None, "host": f"127.0.0.2:{other_host.port}", "headers": {"accept": "application/json"}},
    )
    verdict = run(expect)
    assert verdict.passed, verdict.message
    assert verdict.details["final_url"] == target and len(verdict.details["redirects"]) == 1


def test_303_turns_post_into_get(web: UvicornServer) -> None:
    expect = HttpExpectation(
        web.url("/redirect?code=303&to=/echo"), method="POST", follow_redirects=True, json={"method": "GET"}
    )
    assert run(expect).passed


def test_redirect_loop_is_bounded(web: UvicornServer) -> None:
    verdict = run(HttpExpectation(web.url("/loop"), follow_redirects=True))
    assert verdict.reason is Reason.STATUS and "more than 10 redirects" in verdict.message


# --------------------------------------------------------------------------- TLS


def test_https_with_the_test_ca_passes(tls_web: UvicornServer, pki: Pki) -> None:
    verdict = run(HttpExpectation(tls_web.url("/ok")), ca_bundle=pki.ca_bundle)
    assert verdict.passed, verdict.message
    assert verdict.details["timings_ms"]["tls"] is not None and verdict.details["tls_version"].startswith("TLS")


def test_https_without_the_ca_is_untrusted(tls_web: UvicornServer) -> None:
    verdict = run(HttpExpectation(tls_web.url("/ok")))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.TLS, Reason.UNTRUSTED, False)


def test_verify_false_accepts_an_unknown_ca(tls_web: UvicornServer) -> None:
    assert run(HttpExpectation(tls_web.url("/ok")), verify=False).passed


def test_address_keeps_host_header_and_sni(tls_web: UvicornServer, pki: Pki) -> None:
    """Connect to 127.0.0.1 while the URL says app.test (never resolved)."""
    port = tls_web.port
    expect = HttpExpectation(f"https://app.test:{port}/echo", json={"host": f"app.test:{port}"})
    verdict = run(expect, address="127.0.0.1", ca_bundle=pki.ca_bundle)
    assert verdict.passed, verdict.message
    assert verdict.address == verdict.details["address"] == "127.0.0.1"
    assert verdict.details["timings_ms"]["dns"] is None


def test_address_with_a_name_the_certificate_lacks_is_hostname(tls_web: UvicornServer, pki: Pki) -> None:
    verdict = run(
        HttpExpectation(f"https://other.test:{tls_web.port}/ok"), address="127.0.0.1", ca_bundle=pki.ca_bundle
    )
    assert (verdict.layer, verdict.reason) == (Layer.TLS, Reason.HOSTNAME)
    assert verdict.address == "127.0.0.1"


def test_expired_certificate(pki: Pki) -> None:
    with UvicornServer(basic_app(), cert=pki.expired) as server:
        verdict = run(HttpExpectation(server.url("/ok")), ca_bundle=pki.ca_bundle)
    assert (verdict.layer, verdict.reason) == (Layer.TLS, Reason.EXPIRED)


def test_client_certificate(pki: Pki) -> None:
    with UvicornServer(basic_app(), cert=pki.server, client_ca=pki.ca) as server:
        expect = HttpExpectation(server.url("/ok"))
        assert run(expect, ca_bundle=pki.ca_bundle, client_cert=pki.client_cert).passed
        verdict = run(expect, ca_bundle=pki.ca_bundle)
    # TLS 1.2 reports the refusal in the handshake; TLS 1.3 only by closing afterwards.
    if verdict.layer is Layer.TLS:
        assert verdict.reason is Reason.HANDSHAKE
    else:
        assert verdict.reason is Reason.PROTOCOL and "client certificate" in verdict.message


def test_tls_handshake_that_never_finishes(raw: RawHttpServer) -> None:
    verdict, elapsed = timed(HttpExpectation(raw.url("/", scheme="https")), timeout=1.0)
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.TLS, Reason.TIMEOUT, True)
    assert elapsed < 1.0 + MARGIN


def test_unreadable_ca_bundle_is_setup(web: UvicornServer, tmp_path: Path) -> None:
    verdict = run(HttpExpectation(web.url("/ok")), ca_bundle=tmp_path / "missing.pem")
    assert verdict.reason is Reason.SETUP and "missing.pem" in verdict.message


# --------------------------------------------------------------------------- proxy


def test_plain_http_through_the_proxy(web: UvicornServer, raw: RawHttpServer) -> None:
    verdict = run(HttpExpectation(web.url("/ok"), body_contains="proxied GET"), proxy=raw.proxy_url)
    assert verdict.passed, verdict.message
    assert verdict.details["proxy"] == raw.proxy_url


def test_https_tunnel_through_the_proxy(tls_web: UvicornServer, raw: RawHttpServer, pki: Pki) -> None:
    verdict = run(
        HttpExpectation(tls_web.url("/ok"), json={"status": "ok"}), proxy=raw.proxy_url, ca_bundle=pki.ca_bundle
    )
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_wanting_credentials_is_auth(scheme: str, pki: Pki, tls_web: UvicornServer, web: UvicornServer) -> None:
    url = (tls_web if scheme == "https" else web).url("/ok")
    with RawHttpServer(proxy_auth="Basic bGFiOmxhYg==") as proxy:
        verdict = run(HttpExpectation(url), proxy=proxy.proxy_url, ca_bundle=pki.ca_bundle)
        assert (verdict.layer, verdict.reason) == (Layer.HTTP, Reason.AUTH)
        assert run(HttpExpectation(url), proxy=f"http://lab:lab@127.0.0.1:{proxy.port}", ca_bundle=pki.ca_bundle).passed


def test_refused_proxy_is_tcp_proxy(web: UvicornServer) -> None:
    """Issue 19: a proxy that is down is reason ``proxy`` (was ``refused``), never blamed on the target."""
    verdict = run(HttpExpectation(web.url("/ok")), proxy=f"http://127.0.0.1:{unused_port()}")
    assert (verdict.layer, verdict.reason) == (Layer.TCP, Reason.PROXY) and "proxy" in verdict.message


# --------------------------------------------------------------------------- secrets


def test_secrets_are_redacted_everywhere(web: UvicornServer) -> None:
    def redact(text: str) -> str:
        return text.replace(SECRET_TOKEN, "***")

    expect = HttpExpectation(
        web.url(f"/echo?key={SECRET_TOKEN}"),
        headers={"Authorization": f"Bearer {SECRET_TOKEN}"},
        body_contains=f"not-there-{SECRET_TOKEN}",
    )
    verdict = run(expect, redact=redact)
    assert verdict.reason is Reason.BODY
    assert SECRET_TOKEN in run(expect).details["body_snippet"]  # the echo does carry it ...
    assert SECRET_TOKEN not in repr(verdict)  # ... and nothing of it is left after redaction
    assert "***" in verdict.message and "***" in verdict.details["url"]


def test_secret_in_a_network_failure_message_is_redacted() -> None:
    verdict = run(
        HttpExpectation(f"http://127.0.0.1:{unused_port()}/?token={SECRET_TOKEN}"),
        redact=lambda s: s.replace(SECRET_TOKEN, "***"),
    )
    assert verdict.reason is Reason.REFUSED and SECRET_TOKEN not in repr(verdict)


# --------------------------------------------------------------------------- parse_status


def test_parse_status_forms() -> None:
    assert parse_status(200) == StatusSpec(codes=frozenset({200}))
    assert parse_status("2xx") == parse_status("2XX") == StatusSpec(classes=frozenset({2}))
    assert parse_status([200, "3xx"]).describe() == "one of 200, 3xx"
    assert parse_status("204").matches(204)
    assert HttpExpectation("http://x/").status.describe() == "2xx"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("6xx", "does not exist"),
        ("0xx", "does not exist"),
        (99, "out of range 100..599"),
        (600, "out of range"),
        ("abc", "expected an int like 200"),
        ([], "empty"),
        ([[200]], "nested"),
        (True, "invalid status"),
        (2.5, "float"),
        (None, "NoneType"),
    ],
)
def test_parse_status_rejects(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_status(value)


@settings(max_examples=60, deadline=None)
@given(code=st.integers(100, 599), other=st.integers(100, 599))
def test_parse_status_single_code(code: int, other: int) -> None:
    spec = parse_status(code)
    assert spec.matches(code) and spec.describe() == str(code)
    assert spec.matches(other) is (other == code)
    assert parse_status(str(code)) == spec


@settings(max_examples=60, deadline=None)
@given(klass=st.integers(1, 5), code=st.integers(100, 599), upper=st.booleans())
def test_parse_status_class(klass: int, code: int, upper: bool) -> None:
    spec = parse_status(f"{klass}{'XX' if upper else 'xx'}")
    assert spec.matches(code) is (code // 100 == klass)


@settings(max_examples=60, deadline=None)
@given(codes=st.lists(st.integers(100, 599), min_size=1, max_size=6), code=st.integers(100, 599))
def test_parse_status_list(codes: list[int], code: int) -> None:
    assert parse_status(codes).matches(code) is (code in codes)


@settings(max_examples=60, deadline=None)
@given(code=st.integers().filter(lambda n: not 100 <= n <= 599))
def test_parse_status_out_of_range(code: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_status(code)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=8))
def test_parse_status_text_is_accepted_only_in_valid_forms(text: str) -> None:
    stripped = text.strip()
    valid = (stripped.isascii() and stripped.isdigit() and 100 <= int(stripped) <= 599) or (
        len(stripped) == 3 and stripped[0] in "12345" and stripped[1:].lower() == "xx"
    )
    if valid:
        assert isinstance(parse_status(text), StatusSpec)
    else:
        with pytest.raises(ValueError):
            parse_status(text)
