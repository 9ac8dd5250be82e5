"""No socket outlives an http attempt, whatever ends it: a regression test for sockets left to the
garbage collector (a ResourceWarning at some later, unrelated test) when the deadline cancels a TLS
handshake. Needs a raw loopback server that accepts TCP and never answers the ClientHello."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator

import httpx
import pytest

from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.http import HttpExpectation, check_http
from pytest_autoglm.probes.http.attempt import HttpAttempt
from tests.fakes.http_servers import RawHttpServer


@pytest.fixture(scope="module")
def raw() -> Iterator[RawHttpServer]:
    with RawHttpServer() as server:
        yield server


def _unclosed_after(scenario: object) -> list[str]:
    """The ResourceWarnings the garbage collector raises for what ``scenario`` (a coroutine) left open."""
    gc.collect()  # whatever earlier tests left is not this test's business
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(scenario)  # type: ignore[arg-type]
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_deadline_during_the_tls_handshake_closes_the_socket(raw: RawHttpServer) -> None:
    """The attempt's own deadline (shorter than httpx's timeout) cancels ``start_tls``."""

    async def scenario() -> None:
        attempt = HttpAttempt(raw.url("/", scheme="https"), timeout=30.0)
        assert attempt.prepare() is None
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await attempt.exchange(httpx.URL(raw.url("/", scheme="https")), "GET", {}, max_body=0)
        assert attempt.trace.phase == "tls"

    assert _unclosed_after(scenario()) == []


def test_handshake_timeout_through_check_http_leaves_nothing_open(raw: RawHttpServer) -> None:
    """The probe's public entry, where the deadline and httpx's timeout are equal and race."""

    async def scenario() -> None:
        verdict = await check_http(HttpExpectation(raw.url("/", scheme="https")), timeout=0.3)
        assert (verdict.layer, verdict.reason) == (Layer.TLS, Reason.TIMEOUT)

    assert _unclosed_after(scenario()) == []


def test_deadline_during_the_tls_handshake_through_a_proxy_tunnel_closes_the_socket(raw: RawHttpServer) -> None:
    """CONNECT succeeds, then the handshake with the target (the same raw server) never finishes.

    A guard: here the connection to the proxy holds the socket, so httpcore closes it itself."""
    target = httpx.URL(raw.url("/", scheme="https"))

    async def scenario() -> None:
        attempt = HttpAttempt(str(target), timeout=30.0, proxy=raw.proxy_url)
        assert attempt.prepare() is None
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await attempt.exchange(target, "GET", {}, max_body=0)
        assert attempt.trace.phase == "tls" and raw.requests[-1][0].startswith("CONNECT ")

    assert _unclosed_after(scenario()) == []
