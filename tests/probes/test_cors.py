"""The cors probe against Starlette's CORSMiddleware (several configurations) and
hand-written CORS answers, all served by uvicorn on loopback. Needs starlette and uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.cors import (
    CORS_HOLE_SEVERITY,
    CORS_HOLES,
    VARY_MISSING,
    CorsExpectation,
    check_cors_hole,
    check_cors_origin,
    serialize_origin,
)
from tests.fakes.http_servers import (
    ALLOWED_ORIGIN,
    SECRET_TOKEN,
    RawHttpServer,
    UvicornServer,
    cors_app,
    unused_port,
)
from tests.timing import Stopwatch

EVIL = "https://evil.example.org"


@pytest.fixture(scope="module")
def cors() -> Iterator[UvicornServer]:
    with UvicornServer(cors_app()) as server:
        yield server


def origin_check(url: str, origin: str = ALLOWED_ORIGIN, *, allow: bool = True, **kwargs: Any) -> Verdict:
    options = {k: kwargs.pop(k) for k in list(kwargs) if k not in ("methods", "headers", "credentials")}
    options.setdefault("timeout", 3.0)
    expect = CorsExpectation(url, **kwargs)
    return asyncio.run(check_cors_origin(expect, origin, should_allow=allow, **options))


def hole_check(url: str, hole: str, allowed: tuple[str, ...] = (ALLOWED_ORIGIN,), **kwargs: Any) -> Verdict:
    expect = CorsExpectation(url, **kwargs)
    return asyncio.run(check_cors_hole(expect, hole, allowed, timeout=3.0))


def kinds(verdict: Verdict) -> list[str]:
    return [f"{ex['kind']} {ex['method']}" for ex in verdict.details["exchanges"]]


# --------------------------------------------------------------------------- Starlette, allow and deny


def test_allowed_origin_with_preflight(cors: UvicornServer) -> None:
    verdict = origin_check(
        cors.url("/strict/"), methods=("GET", "PUT"), headers=("Authorization", "X-Api-Key"), credentials=True
    )
    assert verdict.passed, verdict.message
    assert kinds(verdict) == ["preflight GET", "actual GET", "preflight PUT", "method check PUT", "actual PUT"]
    preflight = verdict.details["exchanges"][2]
    assert preflight["request_headers"] == {
        "Origin": ALLOWED_ORIGIN,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,x-api-key",
    }
    assert preflight["response_headers"]["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert verdict.details["exchanges"][3]["response_headers"]["access-control-allow-credentials"] == "true"


def test_simple_requests_need_no_preflight(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/strict/"), methods=("GET", "HEAD", "post"), headers=("Accept-Language",))
    assert verdict.passed, verdict.message
    assert kinds(verdict) == ["actual GET", "actual HEAD", "actual POST"]


def test_origin_is_serialized_like_a_browser(cors: UvicornServer) -> None:
    assert origin_check(cors.url("/strict/"), "HTTPS://App.Example.com:443/").passed
    assert serialize_origin("http://a.test:8080/x") == "http://a.test:8080" and serialize_origin("null") == "null"


def test_unlisted_origin_is_not_allowed(cors: UvicornServer) -> None:
    for methods in (("GET",), ("PUT",)):
        verdict = origin_check(cors.url("/strict/"), "https://other.example.net", methods=methods)
        assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.CORS, Reason.NOT_ALLOWED, False)
        assert "https://other.example.net" in verdict.message


def test_deny_origin_refused_passes(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/strict/"), EVIL, allow=False, methods=("GET", "PUT"), headers=("Authorization",))
    assert verdict.passed, verdict.message
    assert origin_check(cors.url("/strict/"), "null", allow=False).passed


def test_deny_origin_allowed_by_wildcard(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/public/"), EVIL, allow=False)
    assert (verdict.layer, verdict.reason) == (Layer.CORS, Reason.ALLOWED)
    assert "Access-Control-Allow-Origin: *" in verdict.message


def test_deny_null_allowed(cors: UvicornServer) -> None:
    assert origin_check(cors.url("/null/"), "null", allow=False).reason is Reason.ALLOWED


def test_method_not_allowed(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/strict/"), methods=("GET", "DELETE"))
    assert verdict.reason is Reason.NOT_ALLOWED and "DELETE" in verdict.message


def test_header_not_allowed(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/strict/"), methods=("POST",), headers=("X-Other",))
    assert verdict.reason is Reason.NOT_ALLOWED and "x-other" in verdict.message


def test_credentials_expected_but_not_allowed(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/nocreds/"), credentials=True)
    assert (verdict.layer, verdict.reason) == (Layer.CORS, Reason.CREDENTIALS)
    assert origin_check(cors.url("/nocreds/")).passed  # positive control


def test_no_cors_at_all_fails_the_preflight(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/plain"), methods=("PUT",))
    assert verdict.reason is Reason.PREFLIGHT and "405" in verdict.message


# --------------------------------------------------------------------------- Fetch rules, hand-written answers


@pytest.mark.parametrize(
    ("query", "expect", "reason"),
    [
        ("acao=$origin", {}, None),
        ("acao=$origin", {"methods": ("POST",)}, None),  # simple: no preflight, no permission needed
        ("acao=*", {}, None),
        ("acao=*", {"credentials": True}, Reason.CREDENTIALS),
        ("acao=*&acac=true", {"credentials": True}, Reason.WILDCARD_CREDENTIALS),
        ("acao=$origin&acac=true", {"credentials": True}, None),
        ("acao=$origin&acac=True", {"credentials": True}, Reason.CREDENTIALS),  # exactly "true"
        ("acao=https://app.example.com/", {}, Reason.NOT_ALLOWED),  # byte-exact origin
        ("acao=https://app.example.com, https://x.test", {}, Reason.NOT_ALLOWED),  # one origin only
        ("acao=$origin&acam=*", {"methods": ("PUT",)}, None),
        ("acao=$origin&acac=true&acam=*", {"methods": ("PUT",), "credentials": True}, Reason.NOT_ALLOWED),
        ("acao=$origin&acam=PUT", {"methods": ("put",)}, None),  # put is normalised to PUT
        ("acao=$origin&acam=put", {"methods": ("put",)}, Reason.NOT_ALLOWED),  # ... and compared exactly
        # patch is not normalised; /hand's route serves only PATCH, so the actual 'patch' gets 405 without
        # CORS headers (as Chromium sees it: tests/browser, hand-actual-patch-405-without-cors)
        ("acao=$origin&acam=patch", {"methods": ("patch",)}, Reason.NOT_ALLOWED),
        ("acao=$origin&acam=PATCH", {"methods": ("patch",)}, Reason.NOT_ALLOWED),
        ("acao=$origin&acah=x-API-key", {"headers": ("X-Api-Key",)}, None),  # names: any case
        ("acao=$origin&acah=*", {"headers": ("X-Api-Key",)}, None),
        # the Fetch standard excludes Authorization from *, Chromium does not: we judge as the browser
        ("acao=$origin&acah=*", {"headers": ("Authorization",)}, None),
        ("acao=$origin&acac=true&acah=*", {"headers": ("Authorization",), "credentials": True}, Reason.NOT_ALLOWED),
        ("acao=$origin&acac=true&acah=*", {"headers": ("X-Api-Key",), "credentials": True}, Reason.NOT_ALLOWED),
        ("acao=$origin&acam=PUT&pstatus=401", {"methods": ("PUT",)}, Reason.PREFLIGHT),  # needs 2xx
        ("pstatus=404", {"methods": ("PUT",)}, Reason.PREFLIGHT),  # no CORS headers at all
        ("acam=PUT&pstatus=400", {"methods": ("PUT",)}, Reason.NOT_ALLOWED),  # CORS answered: origin refused
    ],
)
def test_fetch_rules(cors: UvicornServer, query: str, expect: dict[str, Any], reason: Reason | None) -> None:
    verdict = origin_check(cors.url(f"/hand?{query}"), **expect)
    assert verdict.reason is reason, verdict.message
    assert verdict.passed is (reason is None)


def test_preflight_server_error_is_transient(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/hand?pstatus=500"), methods=("PUT",))
    assert (verdict.reason, verdict.transient) == (Reason.PREFLIGHT, True)


def test_server_error_without_cors_headers_is_http_status(cors: UvicornServer) -> None:
    verdict = origin_check(cors.url("/hand?status=503"))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.HTTP, Reason.STATUS, True)
    assert origin_check(cors.url("/hand?status=503&acao=$origin")).passed  # the browser ignores the status


# --------------------------------------------------------------------------- holes


@pytest.mark.parametrize(
    ("hole", "path", "reason"),
    [
        ("reflect_any_origin", "/any-credentials/", Reason.REFLECTS_ANY_ORIGIN),  # Starlette: * + credentials
        ("reflect_any_origin", "/hand?acao=$origin", Reason.REFLECTS_ANY_ORIGIN),
        ("reflect_any_origin", "/strict/", None),
        ("reflect_any_origin", "/public/", None),  # '*' is public, not reflection
        ("null_origin", "/null/", Reason.ALLOWED),
        ("null_origin", "/strict/", None),
        ("suffix_bypass", "/suffix/", Reason.ALLOWED),  # regex without an end anchor on the host
        ("suffix_bypass", "/prefix/", None),
        ("suffix_bypass", "/strict/", None),
        ("prefix_bypass", "/prefix/", Reason.ALLOWED),  # regex with .* before the host
        ("prefix_bypass", "/suffix/", None),
        ("prefix_bypass", "/strict/", None),
        ("wildcard_credentials", "/hand?acao=*&acac=true", Reason.WILDCARD_CREDENTIALS),
        ("wildcard_credentials", "/public/", None),
        ("wildcard_credentials", "/strict/", None),
        ("vary_origin", "/hand?acao=$origin", VARY_MISSING),
        ("vary_origin", "/hand?acao=$origin&vary=Accept-Encoding, origin", None),
        ("vary_origin", "/strict/", None),
        ("vary_origin", "/public/", None),
    ],
)
def test_holes(cors: UvicornServer, hole: str, path: str, reason: Reason | None) -> None:
    verdict = hole_check(cors.url(path), hole)
    assert verdict.reason == reason, verdict.message
    assert verdict.passed is (reason is None)
    if reason is not None:
        assert verdict.layer is Layer.CORS and not verdict.transient
    assert verdict.details["hole"] == hole and verdict.details["exchanges"]


def test_hole_probe_follows_the_declared_request(cors: UvicornServer) -> None:
    """With a non-simple request the reflection shows in the preflight too."""
    verdict = hole_check(cors.url("/any-credentials/"), "reflect_any_origin", methods=("PUT",))
    assert verdict.reason is Reason.REFLECTS_ANY_ORIGIN and "preflight" in verdict.message


def test_bypass_derivation(cors: UvicornServer) -> None:
    verdict = hole_check(cors.url("/suffix/"), "suffix_bypass")
    assert verdict.details["probe_origins"] == ["https://app.example.com.evil.test"]
    verdict = hole_check(cors.url("/prefix/"), "prefix_bypass")
    assert verdict.details["probe_origins"] == ["https://evilapp.example.com"]


def test_bypass_without_allowed_origins_is_not_applicable(cors: UvicornServer) -> None:
    verdict = hole_check(cors.url("/suffix/"), "suffix_bypass", allowed=("null",))
    assert verdict.passed and verdict.details["not_applicable"] is True


def test_hole_vocabulary() -> None:
    assert set(CORS_HOLE_SEVERITY) == set(CORS_HOLES) and CORS_HOLE_SEVERITY["vary_origin"] == "warning"
    assert str(VARY_MISSING) == "vary_missing"
    with pytest.raises(ValueError, match="unknown CORS hole"):
        hole_check("http://127.0.0.1:1/", "nope")


# --------------------------------------------------------------------------- network, TLS, secrets


def test_refused_is_tcp() -> None:
    verdict = origin_check(f"http://127.0.0.1:{unused_port()}/", methods=("PUT",))
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.TCP, Reason.REFUSED, True)


def test_silent_server_is_bounded() -> None:
    with RawHttpServer() as raw:
        watch = Stopwatch().start()
        verdict = origin_check(raw.url("/silent"), timeout=1.0)
        assert watch.now() < 1.5
    assert (verdict.layer, verdict.reason) == (Layer.HTTP, Reason.TIMEOUT)


def test_https_by_address_with_the_test_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with UvicornServer(cors_app(), cert=ca.issue_cert("api.test")) as server:
        url = f"https://api.test:{server.port}/strict/"
        verdict = origin_check(url, methods=("PUT",), address="127.0.0.1", ca_bundle=tmp_path / "ca.pem")
        assert verdict.passed, verdict.message
        assert verdict.address == "127.0.0.1"
        untrusted = origin_check(url, address="127.0.0.1")
    assert (untrusted.layer, untrusted.reason) == (Layer.TLS, Reason.UNTRUSTED)


def test_secrets_in_the_url_are_redacted(cors: UvicornServer) -> None:
    verdict = origin_check(
        cors.url(f"/strict/?token={SECRET_TOKEN}"), EVIL, redact=lambda s: s.replace(SECRET_TOKEN, "***")
    )
    assert verdict.reason is Reason.NOT_ALLOWED
    assert SECRET_TOKEN not in repr(verdict) and "***" in verdict.message


def test_a_2xx_preflight_without_cors_headers_means_the_origin_is_not_allowed(cors: UvicornServer) -> None:
    """Servers answer an origin outside their policy with a bare 2xx: the origin is the cause, not the preflight."""
    verdict = origin_check(cors.url("/hand"), methods=("PUT",))
    assert (verdict.layer, verdict.reason) == (Layer.CORS, Reason.NOT_ALLOWED)
    assert "not in the server's CORS policy" in verdict.message


def test_a_method_the_resource_does_not_serve_is_learned_without_sending_it() -> None:
    """A real server that routes GET/OPTIONS/PUT only: the probe never sends PATCH (or PUT) itself."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def handle_one_request(self) -> None:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or not self.parse_request():
                return
            seen.append(self.command)
            served = self.command in ("GET", "OPTIONS", "PUT")
            self.send_response(204 if self.command == "OPTIONS" else 200 if served else 405)
            if served:
                self.send_header("Access-Control-Allow-Origin", ALLOWED_ORIGIN)
                self.send_header("Access-Control-Allow-Methods", "PATCH, PUT")
            else:
                self.send_header("Allow", "GET, OPTIONS, PUT")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/r"
        patch = origin_check(url, methods=("PATCH",))
        put = origin_check(url, methods=("PUT",))
    finally:
        server.shutdown()
        server.server_close()
    assert not patch.passed and patch.reason is Reason.NOT_ALLOWED, patch.message
    assert "does not serve PATCH here (405, Allow: GET, OPTIONS, PUT)" in patch.message
    assert put.passed, put.message  # PUT is served: the GET stands in for it as before
    assert "PATCH" not in seen and "PUT" not in seen, seen
