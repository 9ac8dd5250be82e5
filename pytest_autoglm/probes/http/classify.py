"""The httpx boundary: an exception of one attempt becomes (layer, reason, what happened), in one place."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import httpx

from pytest_autoglm.core.sanitize import without_internals
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.errmap import (
    V_IP_ADDRESS_MISMATCH,
    connect_reason,
    handshake_transient,
    lookup_reason,
    verify_reason,
)


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


def classify_error(exc: BaseException, phase: str, timeout: float) -> tuple[Layer, Reason, str] | None:
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
        return Layer.TLS, Reason.HANDSHAKE, f"TLS handshake failed: {describe_error(exc)}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        return Layer.HTTP, Reason.SETUP, f"cannot send the request: {exc}"
    if phase in ("start", "connect") and isinstance(exc, httpx.ConnectError | OSError):
        os_err = next((c for c in _causes(exc) if isinstance(c, OSError) and c.errno), None)
        connect = connect_reason(os_err.errno if os_err is not None else None)
        if connect is None or os_err is None:
            return Layer.TCP, Reason.UNREACHABLE, f"cannot connect: {os_err or exc}"
        return Layer.TCP, connect, _CONNECT_WORDS.get(connect) or f"unreachable: {os_err.strerror}"
    if isinstance(exc, httpx.TransportError | httpx.DecodingError | OSError):
        return Layer.HTTP, Reason.PROTOCOL, f"the server broke HTTP: {describe_error(exc)}"
    return None


def error_transient(exc: BaseException, reason: Reason) -> bool | None:
    """Whether a classified failure may be transient, where its reason alone does not say (None: the
    reason's default). A TLS handshake is retried only when it was cut, never for an alert or a
    local refusal (``errmap.handshake_transient``); a certificate verdict is definite."""
    if reason is not Reason.HANDSHAKE:
        return None
    if _first(exc, ssl.SSLCertVerificationError) is not None:
        return False
    cut = _first(exc, ConnectionError) is not None or isinstance(exc, httpx.RemoteProtocolError)
    ssl_err = _first(exc, ssl.SSLError)
    text = str(ssl_err.reason or ssl_err) if ssl_err is not None else describe_error(exc)
    return handshake_transient(text, eof=cut or isinstance(ssl_err, ssl.SSLEOFError))


def describe_error(exc: BaseException) -> str:
    """The first non-empty message along the cause chain (httpx often wraps an empty one), without
    interpreter internals (anyio's "Cancelled via cancel scope 7f... by <Task ...>")."""
    for cause in _causes(exc):
        if str(cause):
            return without_internals(str(cause))
    return type(exc).__name__
