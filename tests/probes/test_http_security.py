"""HSTS and security headers on http items, and connect_to (a name in the URL, the target's address on the wire).

Real HTTPS servers (uvicorn, trustme certificates) on loopback; the response headers come from
the query string, so one server serves every case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.http import HstsExpectation, HttpExpectation, check_http
from pytest_autoglm.probes.http.security import parse_hsts
from tests.fakes.http_servers import UvicornServer

NAME = "www.example.test"


async def _echo_headers(request: Request) -> Response:
    """Every query parameter becomes a response header (``?Strict-Transport-Security=max-age%3D5``)."""
    return PlainTextResponse("ok", headers=dict(request.query_params))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[UvicornServer]:
    app = Starlette(routes=[Route("/", _echo_headers)])
    with UvicornServer(app, cert=ca.issue_cert(NAME, "127.0.0.1")) as running:
        yield running


@pytest.fixture(scope="module")
def bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _check(server: UvicornServer, bundle: Path, query: str = "", **expect: Any) -> Verdict:
    url = server.url(f"/?{query}")
    return asyncio.run(check_http(HttpExpectation(url=url, **expect), timeout=5.0, ca_bundle=bundle))


HSTS_GOOD = "Strict-Transport-Security=max-age%3D31536000%3B%20includeSubDomains"
WANT = HstsExpectation(min_max_age=15552000, include_subdomains=True)


def test_hsts_meets_the_expectation(server: UvicornServer, bundle: Path) -> None:
    verdict = _check(server, bundle, HSTS_GOOD, hsts=WANT)
    assert verdict.passed, verdict.message
    assert verdict.details["security_headers"]["strict-transport-security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "no Strict-Transport-Security header"),
        ("Strict-Transport-Security=max-age%3D300%3B%20includeSubDomains", "max-age=300 is below min_max_age 15552000"),
        ("Strict-Transport-Security=max-age%3D31536000", "includeSubDomains is missing"),
        ("Strict-Transport-Security=includeSubDomains", "no max-age directive"),
    ],
    ids=["missing", "short", "no-subdomains", "invalid"],
)
def test_hsts_failures(server: UvicornServer, bundle: Path, query: str, words: str) -> None:
    verdict = _check(server, bundle, query, hsts=WANT)
    assert verdict.reason == Reason.HSTS, verdict.message
    assert words in verdict.message


def test_headers_present_and_absent(server: UvicornServer, bundle: Path) -> None:
    verdict = _check(server, bundle, "X-Frame-Options=DENY", headers_present=("X-Frame-Options",))
    assert verdict.passed, verdict.message
    verdict = _check(server, bundle, "", headers_present=("X-Frame-Options", "Content-Security-Policy"))
    assert verdict.reason == Reason.HEADER
    assert "missing headers X-Frame-Options, Content-Security-Policy (headers_present)" in verdict.message
    verdict = _check(server, bundle, "X-Powered-By=PHP%2F5.6", headers_absent=("X-Powered-By",))
    assert verdict.reason == Reason.HEADER
    assert "X-Powered-By: PHP/5.6 must not be sent (headers_absent)" in verdict.message


def test_hsts_is_reported_before_headers(server: UvicornServer, bundle: Path) -> None:
    verdict = _check(server, bundle, "", hsts=WANT, headers_present=("X-Frame-Options",))
    assert verdict.reason == Reason.HSTS
    assert verdict.details["problems"][0]["reason"] == "header"


def test_parse_hsts_like_browsers() -> None:
    assert parse_hsts('max-age="600"; INCLUDESUBDOMAINS; preload') == {
        "max_age": 600,
        "include_subdomains": True,
        "preload": True,
    }
    assert "twice" in str(parse_hsts("max-age=1; max-age=2"))


def test_connect_to_keeps_the_name_for_host_and_sni(server: UvicornServer, bundle: Path, tmp_path: Path) -> None:
    """An http item of a target given by IP, with a name in the URL that does not resolve: like curl --resolve."""
    from pytest_autoglm.engine import dispatch
    from pytest_autoglm.inventory.plan import build_plan
    from pytest_autoglm.inventory.validate import load_inventory

    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"""
version: 1
defaults: {{ca_bundle: {bundle}}}
targets:
  - name: by-ip
    host: 127.0.0.1
    http:
      - url: https://{NAME}:{server.port}/?X-Frame-Options=DENY
        connect_to: host
        headers_present: [X-Frame-Options]
"""
    )
    (check,) = [c for c in build_plan(load_inventory(inventory)) if c.kind == "http"]
    assert dispatch.connect_host(check) == "127.0.0.1"
    verdict = asyncio.run(dispatch.attempt(check, "127.0.0.1"))
    assert verdict.passed, verdict.message
    assert NAME in verdict.message


def test_connect_to_needs_an_ip_target(tmp_path: Path) -> None:
    from pytest_autoglm.errors import InventoryError
    from pytest_autoglm.inventory.validate import load_inventory

    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "version: 1\ntargets:\n  - name: n\n    host: api.example.test\n    http:\n"
        "      - {url: 'https://www.example.test/', connect_to: host}\n"
    )
    with pytest.raises(InventoryError, match="connect_to: host needs the target's host to be an IP address"):
        load_inventory(inventory)
