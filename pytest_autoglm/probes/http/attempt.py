"""The connection settings of one attempt (TLS context, proxy, pinned address), shared by its hops."""

from __future__ import annotations

import functools
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict

import httpcore  # noqa: F401  # httpx imports it on the first client: ~0.4 s inside a measured attempt
import httpx

from pytest_autoglm.core.records import Redact, Verdict, no_redaction
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.dns import getaddrinfo_in_thread
from pytest_autoglm.probes.errmap import (
    LocalSetupError,
)
from pytest_autoglm.probes.http.classify import classify_error, describe_error, error_transient
from pytest_autoglm.probes.http.exchange import Hop, Trace, phase_timings, read_capped
from pytest_autoglm.probes.tcp import is_ip_literal

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


USER_AGENT = "pytest-autoglm"
#: Reads a response body instead of the capped read: (response, seconds from request to headers) -> (body, truncated).
BodyReader = Callable[[httpx.Response, float], Awaitable[tuple[bytes, bool]]]


try:  # HTTP/2 is negotiated by ALPN when the h2 package is there (httpx[http2]).
    import h2  # noqa: F401

    _HTTP2 = True
except ImportError:  # pragma: no cover - depends on the environment
    _HTTP2 = False


@functools.lru_cache(maxsize=32)
def _ssl_context(
    verify: bool, ca_bundle: str | None, client_cert: str | None, client_key: str | None, _stamp: tuple[float, ...]
) -> ssl.SSLContext:
    """Built once per settings (loading the default trust store costs milliseconds per check).

    ``_stamp`` (file mtimes) makes an edited file produce a new context.
    """
    # The operating system's trust store (as the tls probe uses), not certifi's: both layers must agree.
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if verify and ca_bundle:
        try:
            ctx.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise LocalSetupError(f"cannot load CA bundle {ca_bundle}: {exc}") from None
    if client_cert:
        try:
            ctx.load_cert_chain(client_cert, client_key)
        except (OSError, ssl.SSLError) as exc:
            raise LocalSetupError(f"cannot load client certificate {client_cert}: {exc}") from None
    return ctx


def _mtime(path: str | None) -> float:
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return -1.0


def _hide_userinfo(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid proxy URL>"
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


def redact_tree(value: Any, redact: Redact) -> Any:
    """Every string inside ``value`` (keys included) passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_tree(k, redact): redact_tree(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v, redact) for v in value]
    return value


class ConnectionOptions(TypedDict, total=False):
    """How http and cors probes connect (everything but the timeout, which every call gives)."""

    address: str | None  # connect here, keeping the URL's host for Host, SNI and verification
    ca_bundle: Path | None
    client_cert: Path | None
    client_key: Path | None
    proxy: str | None
    verify: bool
    redact: Redact


class HttpAttempt:
    """The connection settings of one attempt, shared by its hops (http and cors).

    ``exchange`` sends one request (no redirects) and may raise; ``failure`` turns
    whatever it raised into a Verdict at the right layer, using the phase reached.
    """

    def __init__(
        self,
        url: str,
        *,
        address: str | None = None,
        timeout: float,
        ca_bundle: Path | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        proxy: str | None = None,
        verify: bool = True,
        redact: Redact = no_redaction,
    ) -> None:
        self.url = url
        self.address = address
        self.timeout = timeout
        self.proxy = proxy
        self.redact = redact
        self.started = time.perf_counter()
        self.trace = Trace()
        self.current: tuple[str, str] = ("GET", url)
        self._pin_host = self._host_of(url)
        self._attempted: str | None = None  # the IP we are connecting to, when known up front
        self._dns: dict[str, float] = {}
        self._paths = tuple(str(p) if p else None for p in (ca_bundle, client_cert, client_key))
        self._verify = verify
        self._ctx: ssl.SSLContext | None = None

    @staticmethod
    def _host_of(url: str) -> str | None:
        try:
            return httpx.URL(url).host.lower() or None
        except (httpx.InvalidURL, TypeError):
            return None

    def prepare(self) -> Verdict | None:
        """Load trust anchors and client certificate; a Verdict (reason setup) if that fails."""
        ca, cert, key = self._paths
        try:
            self._ctx = _ssl_context(self._verify, ca, cert, key, tuple(_mtime(p) for p in self._paths))
        except LocalSetupError as exc:
            return self.verdict(Layer.TLS, Reason.SETUP, f"{self.where()}: {exc}", details=self.base_details())
        if self.proxy:
            try:
                httpx.Proxy(self.proxy)
            except (ValueError, TypeError, httpx.InvalidURL) as exc:
                msg = f"{self.where()}: unusable proxy {_hide_userinfo(self.proxy)}: {exc}"
                return self.verdict(Layer.HTTP, Reason.SETUP, msg, details=self.base_details())
        self.started = time.perf_counter()  # local setup is not part of the measured time
        return None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def where(self, method: str | None = None, url: str | None = None) -> str:
        m, u = self.current
        at = f" via {self.address}" if self.address else ""
        return f"{method or m} {url or u}{at}"

    def verdict(
        self,
        layer: Layer,
        reason: Reason,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        transient: bool | None = None,
    ) -> Verdict:
        """A failed Verdict, redacted."""
        return Verdict.fail(
            layer,
            reason,
            self.redact(message),
            address=self.peer(),
            details=redact_tree(details or {}, self.redact),
            transient=transient,
        )

    def ok(self, message: str, details: dict[str, Any]) -> Verdict:
        return Verdict.ok(self.redact(message), address=self.peer(), details=redact_tree(details, self.redact))

    def peer(self) -> str | None:
        """The target address: the engine's, else the one connected to (None behind a proxy)."""
        if self.address:
            return self.address
        return None if self.proxy else self.trace.peer or self._attempted

    def base_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"url": self.url, "address": self.peer()}
        if self.proxy:
            details["proxy"] = _hide_userinfo(self.proxy)
        return details

    def failure(self, exc: BaseException, extra: dict[str, Any] | None = None) -> Verdict | None:
        """The Verdict for an exception raised during the attempt (None: a bug, re-raise)."""
        phase = self.trace.phase
        classified = classify_error(exc, phase, self.timeout)
        if classified is None:
            return None
        layer, reason, what = classified
        method, url = self.current
        details = self.base_details()
        details.update(
            {
                "phase": phase,
                "request": f"{method} {url}",
                "error": f"{type(exc).__name__}: {describe_error(exc)}",
                "timings_ms": phase_timings(self.trace.ms, self.elapsed()),
            }
        )
        details.update(extra or {})
        if self.proxy and layer is Layer.TCP:
            what += f" (connecting to the proxy {_hide_userinfo(self.proxy)})"
            reason = Reason.PROXY  # the proxy is down or refuses us: not the target's fault (issue 19)
        tls_then_silence = self.trace.tls_version == "TLSv1.3" and isinstance(exc, httpx.RemoteProtocolError)
        if tls_then_silence and "without sending a response" in str(exc) and not self._paths[1]:
            what += " (under TLS 1.3 this is also how a server refuses a missing client certificate)"
        transient = error_transient(exc, reason)
        return self.verdict(layer, reason, f"{self.where()}: {what}", details=details, transient=transient)

    async def _lookup(self, host: str, port: int) -> None:
        """Our own lookup before connecting: DNS failures and time land in the dns layer."""
        pinned = self.address is not None and host == self._pin_host
        if host in self._dns or self.proxy or pinned or is_ip_literal(host):
            return
        self.trace.begin("dns")
        await getaddrinfo_in_thread(host)  # not the loop's executor: a hung lookup must not hold the exit
        self.trace.end("dns")
        self._dns[host] = self.trace.ms["dns"]

    async def exchange(
        self,
        url: httpx.URL,
        method: str,
        headers: Mapping[str, str],
        *,
        max_body: int,
        skip_redirect_body: bool = False,
        content: bytes | None = None,
        reader: BodyReader | None = None,
    ) -> Hop:
        """Send one request, read at most ``max_body`` bytes of the answer, close it.

        ``skip_redirect_body``: a redirect about to be followed is not read. ``content``: the
        request body; ``reader`` reads the answer's body instead of the capped read (streams).
        """
        assert self._ctx is not None, "prepare() first"
        self.current = (method, str(url))
        self.trace = trace = Trace()
        host = url.host.lower()
        await self._lookup(host, url.port or (443 if url.scheme == "https" else 80))
        send_headers = httpx.Headers({"User-Agent": USER_AGENT, "Accept": "*/*"})
        send_headers.update(dict(headers))
        extensions: dict[str, Any] = {"trace": trace}
        request_url = url
        self._attempted = host if is_ip_literal(host) else None
        if self.address and host == self._pin_host and not self.proxy:
            request_url = url.copy_with(host=self.address)
            if "host" not in send_headers:
                send_headers["Host"] = url.netloc.decode("ascii")
            if url.scheme == "https":
                extensions["sni_hostname"] = url.raw_host.decode("ascii")
        async with httpx.AsyncClient(
            verify=self._ctx,
            proxy=self.proxy,
            timeout=httpx.Timeout(self.timeout),
            http2=_HTTP2,
            trust_env=False,
            follow_redirects=False,
        ) as client:
            request = client.build_request(
                method, request_url, headers=send_headers, extensions=extensions, content=content
            )
            async with trace.orphans_closed():  # httpcore's leak on cancellation: see there
                response = await client.send(request, stream=True)
            try:
                body, truncated = b"", False
                redirect = response.status_code in REDIRECT_CODES and "location" in response.headers
                if max_body > 0 and method != "HEAD" and not (skip_redirect_body and redirect):
                    if reader is not None and not redirect:
                        body, truncated = await reader(response, trace.ms.get("first_byte", 0.0) / 1000)
                    else:
                        body, truncated = await read_capped(response, max_body)
                trace.end("body")
            finally:
                await response.aclose()
        return Hop(
            url=url,
            method=method,
            status=response.status_code,
            reason_phrase=response.reason_phrase,
            http_version=response.http_version,
            headers=response.headers,
            body=body,
            truncated=truncated,
            bytes_downloaded=response.num_bytes_downloaded,
            charset=response.charset_encoding,
            peer=trace.peer,
            tls_version=trace.tls_version,
            timings={**({"dns": self._dns[host]} if host in self._dns else {}), **trace.ms},
        )
