"""The ``http`` probe: one attempt of one HTTP expectation, judged into a ``Verdict``.

Why it is built this way:

- **One deadline for everything.** httpx's timeouts apply per read, so a server that
  trickles a byte a second never trips them. The whole attempt (name lookup, connect,
  TLS, request, headers, body, every redirect hop) runs under one ``asyncio.timeout``.
- **The body read is capped** (``max_body_bytes``, 1 MiB by default): a 10 GB body costs
  1 MiB and is reported as ``truncated``.
- **Redirects are followed here**, hop by hop, so each hop stays inside the deadline and
  is pinned to the engine's address only while it stays on the URL's host; headers the
  user set are not forwarded to another origin (they may carry secrets).
- **Pinned addresses** (``address=``): the engine resolved the host itself, so we connect
  to that address but keep the URL's host in ``Host`` and in TLS SNI and certificate
  verification (httpcore's ``sni_hostname`` request extension). Through a proxy the
  proxy resolves the name, so ``address`` is only reported then.
- **Failures are classified by phase** (from httpcore's ``trace`` extension): a refused
  port is ``tcp/refused``, a dropped one ``tcp/filtered``, a bad chain ``tls/untrusted``,
  a silent server ``http/timeout``, garbage or a reset mid-body ``http/protocol``.

``details["timings_ms"]`` holds durations per phase in ms: ``dns`` (our own lookup just
before connecting, which also puts a name that does not resolve in the dns layer; None when
the address was given, the host is an IP literal or a proxy resolves; the connection then
resolves again through the same system resolver, which lets anyio try every address),
``connect``, ``tls``, ``first_byte`` (request sent -> response headers received), ``body``
when one was read, and ``total`` (the whole attempt, every hop and the body read; this is
what ``max_latency`` is compared with). A phase not gone through is None.

Secrets: every message and every string in ``details`` goes through ``redact``.
"""

from __future__ import annotations

import asyncio
import functools
import json as _json
import os
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Unpack

import httpcore  # noqa: F401  # httpx imports it on the first client: ~0.4 s inside a measured attempt
import httpx

from pytest_autoglm.core.records import Redact, Verdict, no_redaction
from pytest_autoglm.core.values import DEFAULT_STATUS, StatusSpec, format_duration, parse_status
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.dns import getaddrinfo_in_thread
from pytest_autoglm.probes.errmap import (
    V_IP_ADDRESS_MISMATCH,
    LocalSetupError,
    connect_reason,
    lookup_reason,
    verify_reason,
)
from pytest_autoglm.probes.tcp import is_ip_literal

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "HttpAttempt",
    "HttpExpectation",
    "check_http",
]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_REDIRECTS = 10
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "pytest-autoglm"
#: Response headers kept in ``details["headers"]``.
INTERESTING_HEADERS = (
    "server",
    "content-type",
    "content-length",
    "location",
    "www-authenticate",
    "proxy-authenticate",
    "retry-after",
)
#: User headers that may follow a redirect to another origin; everything else may be a secret.
_CROSS_ORIGIN_SAFE_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type", "user-agent"})
_SNIPPET_CHARS = 200

try:  # HTTP/2 is negotiated by ALPN when the h2 package is there (httpx[http2]).
    import h2  # noqa: F401

    _HTTP2 = True
except ImportError:  # pragma: no cover - depends on the environment
    _HTTP2 = False


# --------------------------------------------------------------------------- expectation


@dataclass(frozen=True)
class HttpExpectation:
    """One entry of a target's ``http`` list (inventory.md), already validated."""

    url: str
    method: str = "GET"
    status: StatusSpec = DEFAULT_STATUS
    body_contains: str | None = None
    json: dict[str, Any] | None = None
    max_latency: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    follow_redirects: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        # Convenience for hand-written expectations: ``status=200`` or ``status="2xx"``.
        if not isinstance(self.status, StatusSpec):
            object.__setattr__(self, "status", parse_status(self.status))
        object.__setattr__(self, "method", self.method.upper())


# --------------------------------------------------------------------------- plumbing


@dataclass
class Hop:
    """One request and its response (no redirects), body read up to a cap."""

    url: httpx.URL
    method: str
    status: int
    reason_phrase: str
    http_version: str
    headers: httpx.Headers
    body: bytes
    truncated: bool
    bytes_downloaded: int
    charset: str | None
    peer: str | None
    tls_version: str | None
    timings: dict[str, float]

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # an unknown charset from the server
            return self.body.decode("utf-8", errors="replace")


class _Trace:
    """Follows httpcore's trace events: the phase we are in (to classify a failure)
    and how long each phase took."""

    _PHASES: ClassVar[dict[str, str]] = {
        "connect_tcp": "connect",
        "start_tls": "tls",
        "send_request_headers": "request",
        "receive_response_headers": "wait",
        "receive_response_body": "body",
    }

    def __init__(self) -> None:
        self.phase = "start"
        self.peer: str | None = None
        self.tls_version: str | None = None
        self.ms: dict[str, float] = {}
        self._t: dict[str, float] = {}

    def begin(self, phase: str) -> None:
        self.phase = phase
        self._t[phase] = time.perf_counter()

    def end(self, phase: str, key: str | None = None, since: str | None = None) -> None:
        started = self._t.get(since or phase)
        if started is not None:
            self.ms[key or phase] = round((time.perf_counter() - started) * 1000, 1)

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        step, _, state = name.rpartition(".")
        phase = self._PHASES.get(step.rpartition(".")[2])
        if phase is None:
            return
        if state == "started":
            self.begin(phase)
        elif state == "complete":
            if phase in ("connect", "tls"):
                self.end(phase)
                self._note_stream(info.get("return_value"))
            elif phase == "wait":
                self.end(phase, "first_byte", since="request")

    def _note_stream(self, stream: Any) -> None:
        if stream is None:
            return
        addr = stream.get_extra_info("server_addr")
        if isinstance(addr, tuple) and addr:
            self.peer = str(addr[0])
        ssl_object = stream.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls_version = ssl_object.version()


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


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), port


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


def _timings(ms: Mapping[str, float], total_s: float) -> dict[str, float | None]:
    """Every phase key present (None: phase not gone through), plus the total."""
    out: dict[str, float | None] = {k: ms.get(k) for k in ("dns", "connect", "tls", "first_byte")}
    if "body" in ms:
        out["body"] = ms["body"]
    out["total"] = round(total_s * 1000, 1)
    return out


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes or contexts (httpcore suppresses those, we want the
    root cause), and exceptions passed as arguments, breadth-first through groups."""
    seen: set[int] = set()
    queue = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        queue.extend(a for a in current.args if isinstance(a, BaseException))
        nxt = current.__cause__ or current.__context__
        if nxt is not None:
            queue.append(nxt)


def _first(exc: BaseException, kind: type[BaseException]) -> Any:
    return next((c for c in _causes(exc) if isinstance(c, kind)), None)


#: How a verification failure reads in an HTTP message, by its reason (the reason comes from ``errmap``).
_VERIFY_WORDS: dict[Reason, str] = {
    Reason.NOT_YET_VALID: "the certificate is not yet valid",
    Reason.EXPIRED: "the certificate has expired",
    Reason.REVOKED: "the certificate is revoked",
    Reason.UNTRUSTED: "the certificate chain is not trusted",
    Reason.HANDSHAKE: "certificate verification failed",
}
#: The words of a connect failure, by its reason.
_CONNECT_WORDS: dict[Reason, str] = {
    Reason.REFUSED: "connection refused (nothing listens)",
    Reason.FILTERED: "no answer to the TCP handshake (dropped?)",
}


def _classify(exc: BaseException, phase: str, timeout: float) -> tuple[Layer, Reason, str] | None:
    """Map an exception of one attempt to (layer, reason, what happened); None if unknown."""
    within = f"within {format_duration(timeout)}"
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return {
            "dns": (Layer.DNS, Reason.TIMEOUT, f"name lookup did not finish {within}"),
            "connect": (Layer.TCP, Reason.FILTERED, f"no answer to the TCP handshake {within} (dropped?)"),
            "tls": (Layer.TLS, Reason.TIMEOUT, f"TLS handshake did not finish {within}"),
            "body": (Layer.HTTP, Reason.TIMEOUT, f"response body not complete {within} (server too slow or trickling)"),
        }.get(phase, (Layer.HTTP, Reason.TIMEOUT, f"no response {within}"))
    if (gai := _first(exc, socket.gaierror)) is not None:
        reason = lookup_reason(gai.errno)
        if reason is Reason.SERVFAIL:
            return Layer.DNS, reason, f"name lookup failed (SERVFAIL or no answer): {gai.strerror}"
        return Layer.DNS, reason, f"name does not resolve: {gai.strerror}"
    if isinstance(exc, httpx.ProxyError):
        proxy_status = str(exc).split(" ", 1)[0]
        reason = Reason.AUTH if proxy_status == "407" else Reason.STATUS
        return Layer.HTTP, reason, f"the proxy refused the tunnel: {exc}"
    if (cert := _first(exc, ssl.SSLCertVerificationError)) is not None:
        code = getattr(cert, "verify_code", None)
        text = getattr(cert, "verify_message", None) or str(cert)
        reason = verify_reason(code)
        if reason is Reason.HOSTNAME:
            what = "the certificate does not cover the " + ("IP address" if code == V_IP_ADDRESS_MISMATCH else "name")
        else:
            what = _VERIFY_WORDS[reason]
        return Layer.TLS, reason, f"{what} ({text})"
    ssl_err = _first(exc, ssl.SSLError)
    # After the handshake only a TLS alert (e.g. TLS 1.3 "certificate required") is a TLS fault;
    # a TLS stream cut mid-body is the server breaking HTTP.
    if ssl_err is not None and (phase in ("start", "connect", "tls") or "ALERT" in str(ssl_err.reason)):
        return Layer.TLS, Reason.HANDSHAKE, f"TLS handshake failed: {ssl_err.reason or ssl_err}"
    if phase == "tls":
        return Layer.TLS, Reason.HANDSHAKE, f"TLS handshake failed: {_describe(exc)}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        return Layer.HTTP, Reason.SETUP, f"cannot send the request: {exc}"
    if phase in ("start", "connect") and isinstance(exc, httpx.ConnectError | OSError):
        os_err = next((c for c in _causes(exc) if isinstance(c, OSError) and c.errno), None)
        connect = connect_reason(os_err.errno if os_err is not None else None)
        if connect is None or os_err is None:
            return Layer.TCP, Reason.UNREACHABLE, f"cannot connect: {os_err or exc}"
        return Layer.TCP, connect, _CONNECT_WORDS.get(connect) or f"unreachable: {os_err.strerror}"
    if isinstance(exc, httpx.TransportError | httpx.DecodingError | OSError):
        return Layer.HTTP, Reason.PROTOCOL, f"the server broke HTTP: {_describe(exc)}"
    return None


def _describe(exc: BaseException) -> str:
    """The first non-empty message along the cause chain (httpx often wraps an empty one)."""
    for cause in _causes(exc):
        if str(cause):
            return str(cause)
    return type(exc).__name__


# --------------------------------------------------------------------------- attempt


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
        self.trace = _Trace()
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
        classified = _classify(exc, phase, self.timeout)
        if classified is None:
            return None
        layer, reason, what = classified
        method, url = self.current
        details = self.base_details()
        details.update(
            {
                "phase": phase,
                "request": f"{method} {url}",
                "error": f"{type(exc).__name__}: {_describe(exc)}",
                "timings_ms": _timings(self.trace.ms, self.elapsed()),
            }
        )
        details.update(extra or {})
        if self.proxy and layer is Layer.TCP:
            what += f" (connecting to the proxy {_hide_userinfo(self.proxy)})"
        tls_then_silence = self.trace.tls_version == "TLSv1.3" and isinstance(exc, httpx.RemoteProtocolError)
        if tls_then_silence and "without sending a response" in str(exc) and not self._paths[1]:
            what += " (under TLS 1.3 this is also how a server refuses a missing client certificate)"
        return self.verdict(layer, reason, f"{self.where()}: {what}", details=details)

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
    ) -> Hop:
        """Send one request, read at most ``max_body`` bytes of the answer, close it.

        ``skip_redirect_body``: a redirect about to be followed is not read.
        """
        assert self._ctx is not None, "prepare() first"
        self.current = (method, str(url))
        self.trace = trace = _Trace()
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
            request = client.build_request(method, request_url, headers=send_headers, extensions=extensions)
            response = await client.send(request, stream=True)
            try:
                body, truncated = b"", False
                redirect = response.status_code in REDIRECT_CODES and "location" in response.headers
                if max_body > 0 and method != "HEAD" and not (skip_redirect_body and redirect):
                    body, truncated = await _read_capped(response, max_body)
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


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the (decoded) body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    body = b"".join(chunks)
    return body[:cap], len(body) > cap


class _Stop(Exception):
    """A redirect chain that cannot go on; carries the Verdict."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict


async def _follow(attempt: HttpAttempt, expect: HttpExpectation) -> list[Hop]:
    """Send the request and, when asked, follow redirects as a browser would."""
    url = httpx.URL(expect.url)
    first = _origin(url)
    method = expect.method
    headers = dict(expect.headers)
    hops: list[Hop] = []
    while True:
        following = expect.follow_redirects and len(hops) < MAX_REDIRECTS
        hop = await attempt.exchange(url, method, headers, max_body=expect.max_body_bytes, skip_redirect_body=following)
        hops.append(hop)
        location = hop.headers.get("location")
        if not expect.follow_redirects or hop.status not in REDIRECT_CODES or location is None:
            return hops
        if len(hops) > MAX_REDIRECTS:
            raise _Stop(
                attempt.verdict(
                    Layer.HTTP,
                    Reason.STATUS,
                    f"{attempt.where()}: more than {MAX_REDIRECTS} redirects",
                    details={**attempt.base_details(), "redirects": [str(h.url) for h in hops]},
                )
            )
        try:
            nxt = url.join(location)
        except httpx.InvalidURL as exc:
            nxt = None
            problem = f"invalid Location {location!r}: {exc}"
        else:
            problem = f"redirect to unsupported URL {location!r}"
        if nxt is None or nxt.scheme not in ("http", "https") or not nxt.host:
            raise _Stop(
                attempt.verdict(
                    Layer.HTTP,
                    Reason.PROTOCOL,
                    f"{attempt.where()}: {problem}",
                    details={**attempt.base_details(), "status": hop.status},
                    transient=False,
                )
            )
        if (hop.status == 303 and method != "HEAD") or (hop.status in (301, 302) and method == "POST"):
            method = "GET"
        if _origin(nxt) != first:
            headers = {k: v for k, v in headers.items() if k.lower() in _CROSS_ORIGIN_SAFE_HEADERS}
        url = nxt


# --------------------------------------------------------------------------- judgement


def _json_mismatch(expected: Any, actual: Any, path: str) -> str | None:
    """Where ``expected`` is not a subset of ``actual`` (None if it is).

    Objects: every expected key present and matching, recursively. Lists: every
    expected element matches some element of the actual list (order ignored).
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {_short(actual)}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing"
            if (found := _json_mismatch(value, actual[key], f"{path}.{key}")) is not None:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected a list, got {_short(actual)}"
        for i, item in enumerate(expected):
            if not any(_json_mismatch(item, a, path) is None for a in actual):
                return f"{path}[{i}]: no element matches {_short(item)}"
        return None
    same = (
        expected == actual and isinstance(actual, bool)
        if isinstance(expected, bool) or isinstance(actual, bool)
        else expected == actual
    )
    return None if same else f"{path}: expected {_short(expected)}, got {_short(actual)}"


def _short(value: Any) -> str:
    text = _json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _hop_details(attempt: HttpAttempt, hops: list[Hop], total: float) -> dict[str, Any]:
    final = hops[-1]
    details = attempt.base_details()
    details.update(
        {
            "method": final.method,
            "status": final.status,
            "http_version": final.http_version,
            "headers": {k: ", ".join(final.headers.get_list(k)) for k in INTERESTING_HEADERS if k in final.headers},
            "timings_ms": _timings(final.timings, total),
            "bytes_read": len(final.body),
            "bytes_downloaded": final.bytes_downloaded,
            "truncated": final.truncated,
        }
    )
    if final.tls_version:
        details["tls_version"] = final.tls_version
    if len(hops) > 1:
        details["final_url"] = str(final.url)
        details["redirects"] = [f"{h.status} {h.url}" for h in hops[:-1]]
    return details


def _judge(attempt: HttpAttempt, expect: HttpExpectation, hops: list[Hop], total: float) -> Verdict:
    final = hops[-1]
    details = _hop_details(attempt, hops, total)
    where = attempt.where(expect.method, expect.url)
    status = final.status
    if not expect.status.matches(status):
        got = f"status {status} {final.reason_phrase}".rstrip()
        if len(hops) > 1:
            got += f" (after redirects, at {final.url})"
        if status in (401, 407):
            who = "the proxy" if status == 407 else "the server"
            msg = f"{where}: {got}: {who} requires authentication; expected {expect.status.describe()}"
            return attempt.verdict(Layer.HTTP, Reason.AUTH, msg, details=details)
        msg = f"{where}: {got}, expected {expect.status.describe()}"
        if status in REDIRECT_CODES and "location" in final.headers and not expect.follow_redirects:
            msg += f" (redirect to {final.headers['location']} not followed: follow_redirects is false)"
        return attempt.verdict(Layer.HTTP, Reason.STATUS, msg, details=details, transient=status >= 500)
    cap_note = f" (only the first {len(final.body)} bytes were read)" if final.truncated else ""
    if expect.body_contains is not None and expect.body_contains not in final.text():
        details["body_snippet"] = final.text()[:_SNIPPET_CHARS]
        msg = f"{where}: the body does not contain {expect.body_contains!r}{cap_note}"
        return attempt.verdict(Layer.HTTP, Reason.BODY, msg, details=details)
    if expect.json is not None:
        problem = _json_problem(expect.json, final)
        if problem is not None:
            details["body_snippet"] = final.text()[:_SNIPPET_CHARS]
            return attempt.verdict(Layer.HTTP, Reason.BODY, f"{where}: {problem}{cap_note}", details=details)
    if expect.max_latency is not None and total > expect.max_latency:
        msg = f"{where}: took {format_duration(total)}, more than max_latency {format_duration(expect.max_latency)}"
        return attempt.verdict(Layer.HTTP, Reason.SLOW, msg, details=details)
    return attempt.ok(f"{where}: status {status} in {format_duration(total)}", details)


def _json_problem(expected: dict[str, Any], hop: Hop) -> str | None:
    if hop.truncated:
        return "the body is larger than the read cap, so its JSON cannot be checked"
    try:
        document = _json.loads(hop.text())
    except ValueError as exc:
        return f"the body is not JSON ({exc})"
    mismatch = _json_mismatch(expected, document, "$")
    return None if mismatch is None else f"JSON body does not match: {mismatch}"


async def check_http(
    expect: HttpExpectation,
    *,
    timeout: float,
    **connection: Unpack[ConnectionOptions],
) -> Verdict:
    """One attempt of ``expect``, bounded by ``timeout`` as a whole. Never raises for a verdict."""
    attempt = HttpAttempt(expect.url, timeout=timeout, **connection)
    attempt.current = (expect.method, expect.url)
    if (setup := attempt.prepare()) is not None:
        return setup
    try:
        async with asyncio.timeout(timeout):
            hops = await _follow(attempt, expect)
    except _Stop as stop:
        return stop.verdict
    except Exception as exc:  # classified by phase; anything unknown is a bug and re-raised
        verdict = attempt.failure(exc)
        if verdict is None:
            raise
        return verdict
    return _judge(attempt, expect, hops, attempt.elapsed())
