"""One TLS handshake through memory BIOs over a non-blocking socket, bounded by one deadline.

The SSL contexts (built once per settings), the callbacks that record what happened (verify
errors, client-certificate requests, alerts, the OCSP staple) and the handshake loop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from OpenSSL import SSL
from OpenSSL.crypto import X509StoreFlags

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes import proxy
from pytest_autoglm.probes.errmap import (
    LocalSetupError,
)
from pytest_autoglm.probes.tcp import (
    LocalSocketError,
    PortState,
    connect_socket,
)
from pytest_autoglm.probes.tls.expectation import TLS_VERSIONS, VERSION_NUMBER

#: OpenSSL 3+ refuses TLS 1.0/1.1 at its default security level (docs/tls-versions.md).
_LEGACY_CIPHERS: Final = b"DEFAULT:@SECLEVEL=0"


#: SSL_OP_LEGACY_SERVER_CONNECT (not exported by pyOpenSSL): old servers lack RFC 5746;
#: a version probe must measure the version, not secure-renegotiation support.
_OP_LEGACY_SERVER_CONNECT: Final = 1 << 2


#: X509_V_FLAG_NO_CHECK_TIME (not in pyOpenSSL's X509StoreFlags): validity is judged against ``now`` here.
_NO_CHECK_TIME: Final = 0x200000


_CONTEXT_CACHE_SIZE: Final = 64


#: TLS alert descriptions (RFC 8446 section 6, RFC 5246), for messages.
_ALERTS: Final[dict[int, str]] = {
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    116: "certificate_required",
    120: "no_application_protocol",
}


_ALERT_PROTOCOL_VERSION: Final = 70


_ALERT_CERTIFICATE_REQUIRED: Final = 116


#: Alerts a server sends when it does not like the client certificate it got (or the lack of one).
_CLIENT_CERT_ALERTS: Final = frozenset({40, 42, 43, 44, 45, 46, 48, 49, 51, 116})


@dataclass(frozen=True)
class ContextKey:
    """Everything a cached SSL context depends on; files by path, mtime and size, so edits reload."""

    verify: bool
    ca_bundle: tuple[str, int, int] | None
    client_cert: tuple[str, int, int] | None
    client_key: tuple[str, int, int] | None
    lowest: int
    highest: int


_contexts: OrderedDict[ContextKey, SSL.Context] = OrderedDict()


def clear_context_cache() -> None:
    """Forget cached SSL contexts (and their loaded trust stores)."""
    _contexts.clear()


def file_key(path: Path | None, what: str) -> tuple[str, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise LocalSetupError(f"{what} {path}: {exc.strerror or exc}") from None
    return (os.fspath(path), st.st_mtime_ns, st.st_size)


def context(key: ContextKey) -> SSL.Context:
    """A client context for ``key``, built once: loading the system trust store costs milliseconds."""
    ctx = _contexts.get(key)
    if ctx is not None:
        _contexts.move_to_end(key)
        return ctx
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(key.lowest)
    ctx.set_max_proto_version(key.highest)
    if key.lowest < SSL.TLS1_2_VERSION:
        ctx.set_cipher_list(_LEGACY_CIPHERS)
        ctx.set_options(_OP_LEGACY_SERVER_CONNECT)
    if key.verify:
        ctx.set_default_verify_paths()
        if key.ca_bundle is not None:
            try:
                ctx.load_verify_locations(key.ca_bundle[0])
            except SSL.Error as exc:
                raise LocalSetupError(
                    f"ca_bundle {key.ca_bundle[0]}: no usable certificate ({_ssl_error_text(exc)})"
                ) from None
        store = ctx.get_cert_store()
        assert store is not None
        store.set_flags(X509StoreFlags.PARTIAL_CHAIN | _NO_CHECK_TIME)
        ctx.set_verify(SSL.VERIFY_PEER, _on_verify)
    else:
        ctx.set_verify(SSL.VERIFY_NONE)
    if key.client_cert is not None:
        cert_path = key.client_cert[0]
        key_path = key.client_key[0] if key.client_key is not None else cert_path
        try:
            ctx.use_certificate_chain_file(cert_path)
        except SSL.Error as exc:
            raise LocalSetupError(f"client_cert {cert_path}: no usable certificate ({_ssl_error_text(exc)})") from None
        try:
            ctx.use_privatekey_file(key_path)
            ctx.check_privatekey()
        except SSL.Error as exc:
            where = "client_key" if key.client_key is not None else "client_cert (no client_key given)"
            raise LocalSetupError(
                f"{where} {key_path}: no private key matching the certificate ({_ssl_error_text(exc)})"
            ) from None
    ctx.set_info_callback(_on_info)
    ctx.set_ocsp_client_callback(_on_ocsp)
    _contexts[key] = ctx
    while len(_contexts) > _CONTEXT_CACHE_SIZE:
        _contexts.popitem(last=False)
    return ctx


@dataclass
class _ConnState:
    """Per-connection notes written by OpenSSL callbacks (found through the connection's app data)."""

    verify_errors: list[tuple[int, int]] = field(default_factory=list)  # (X509_V_ERR code, depth)
    staple: bytes | None = None  # None: status not requested / not answered; b"": no staple
    cert_requested: bool = False
    alert_received: int | None = None
    bytes_received: int = 0
    eof: bool = False


def _state_of(conn: SSL.Connection) -> _ConnState | None:
    state = conn.get_app_data()
    return state if isinstance(state, _ConnState) else None


def _on_verify(conn: SSL.Connection, _cert: Any, errnum: int, depth: int, ok: int) -> bool:
    """Record, never reject: the handshake completes and every problem is reported at once."""
    state = _state_of(conn)
    if not ok and state is not None:
        state.verify_errors.append((errnum, depth))
    return True


def _on_info(conn: SSL.Connection, where: int, ret: int) -> None:
    state = _state_of(conn)
    if state is None:
        return
    if where & SSL.SSL_CB_ALERT:
        if where & SSL.SSL_CB_READ and ret & 0xFF and state.alert_received is None:
            state.alert_received = ret & 0xFF
    elif where & SSL.SSL_CB_LOOP and b"certificate request" in conn.get_state_string():
        state.cert_requested = True


def _on_ocsp(conn: SSL.Connection, data: bytes, _userdata: object) -> bool:
    state = _state_of(conn)
    if state is not None:
        state.staple = data
    return True  # judged after the handshake, with the chain at hand


@dataclass
class Attempt:
    """What one connection attempt saw. Exactly one of conn/tcp/timeout/error is set."""

    state: _ConnState
    conn: SSL.Connection | None = None  # the handshake completed
    tcp: tuple[Reason, str] | None = None  # the TCP connect failed
    timeout: str | None = None  # no (complete) answer within the deadline
    error: str | None = None  # the handshake failed
    kind: str = "other"  # of a failure: "version" (no version in common), "client_cert", "oversized" or "other"


def _ssl_error_text(exc: BaseException) -> str:
    """The reason strings of an OpenSSL error queue, e.g. ``tlsv1 alert protocol version``."""
    if isinstance(exc, SSL.SysCallError):
        return str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if exc.args and isinstance(exc.args[0], list):
        reasons = [str(item[2]) for item in exc.args[0] if isinstance(item, tuple) and len(item) > 2 and item[2]]
        if reasons:
            return "; ".join(reasons)
    return str(exc) or type(exc).__name__


def _drain(conn: SSL.Connection) -> bytes:
    """Everything OpenSSL wants to send right now."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = conn.bio_read(65536)
        except SSL.WantReadError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _send_nowait(sock: socket.socket, data: bytes) -> None:
    """Best effort (an alert, a close_notify) without waiting: never worth a deadline."""
    if data:
        with contextlib.suppress(OSError):
            sock.send(data)


def _describe_errno(exc: OSError) -> str:
    if exc.errno is None:
        return str(exc) or type(exc).__name__
    return f"{os.strerror(exc.errno).lower()} ({errno.errorcode.get(exc.errno, exc.errno)})"


async def _connect(address: str, port: int, deadline: float) -> socket.socket | tuple[Reason, str]:
    """A connected non-blocking socket, or the TCP-layer reason and text (the tcp probe's connect)."""
    remaining = deadline - asyncio.get_running_loop().time()
    route = proxy.current_route.get()
    if route is not None:  # through a proxy (issue 19): a tunnel, or reason proxy for the proxy's own fault
        return await proxy.tunnel(route, address, port, max(remaining, 0.0))
    try:
        result = await connect_socket(address, port, max(remaining, 0.0))
    except LocalSocketError as exc:  # this machine's fault (out of fds, ports): not the target's
        return Reason.SETUP, str(exc.strerror)
    if isinstance(result, socket.socket):
        try:
            result.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            result.close()
            raise
        return result
    state, text = result
    if state is PortState.REFUSED:
        return Reason.REFUSED, text
    if state is PortState.FILTERED:
        if "ETIMEDOUT" in text:  # the kernel gave up on its SYN retries before our deadline
            return Reason.FILTERED, "no answer to the TCP connect " + text.removeprefix("no answer ")
        return Reason.FILTERED, "no answer to the TCP connect (SYN) in time"
    return Reason.UNREACHABLE, text


def _stage(conn: SSL.Connection, state: _ConnState) -> str:
    """Where a handshake stopped, for a timeout message."""
    if state.bytes_received == 0:
        return "the server accepted the TCP connection but did not answer the ClientHello"
    step = conn.get_state_string().decode("ascii", "replace").removeprefix("SSLv3/TLS ")
    return f"the handshake stalled after {state.bytes_received} bytes from the server (last step: {step})"


def _explain_failure(state: _ConnState, text: str, has_client_cert: bool, offered: str) -> tuple[str, str]:
    """A human reason for a failed handshake, and its kind: ``version``, ``client_cert`` or ``other``.

    The first two are definite answers (not worth a retry); ``other`` may be transient (a reset).
    """
    alert = state.alert_received
    alert_name = _ALERTS.get(alert, str(alert)) if alert is not None else ""
    suffix = f" (alert {alert_name})" if alert is not None else ""
    client_cert_alert = alert in _CLIENT_CERT_ALERTS or (alert is None and state.eof)
    if alert == _ALERT_CERTIFICATE_REQUIRED or (state.cert_requested and not has_client_cert and client_cert_alert):
        return f"the server required a client certificate and none is configured (client_cert){suffix}", "client_cert"
    if state.cert_requested and has_client_cert and client_cert_alert and alert != 40:
        return f"the server rejected the client certificate{suffix}", "client_cert"
    lowered = text.lower()
    if "excessive message size" in lowered:
        return "the server's certificate list exceeds OpenSSL's 100 KiB limit (excessive message size)", "oversized"
    if alert == _ALERT_PROTOCOL_VERSION or "unsupported protocol" in lowered or "no protocols available" in lowered:
        return f"no protocol version in common: the server refused {offered}", "version"
    if alert == 112:
        return "the server does not know the requested name (alert unrecognized_name; check sni)", "other"
    if alert == 40:
        detail = "no cipher suite, group or signature algorithm in common?"
        return f"the server aborted the handshake (alert handshake_failure: {detail})", "other"
    if alert is not None:
        return f"the server aborted the handshake{suffix}", "other"
    if "wrong version number" in lowered or "packet length too long" in lowered or "record layer failure" in lowered:
        return "the server did not answer in TLS (plain HTTP or another protocol on this port?)", "other"
    if state.eof:
        return "the server closed the connection during the handshake", "other"
    return f"the handshake failed: {text}", "other"


def _offered(lowest: int, highest: int) -> str:
    names = [n for n in TLS_VERSIONS if lowest <= VERSION_NUMBER[n] <= highest]
    return names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"


async def handshake(
    address: str,
    port: int,
    ctx: SSL.Context,
    key: ContextKey,
    sni: str | None,
    deadline: float,
    *,
    request_ocsp: bool,
) -> Attempt:
    """Connect and complete one client handshake (plus the TLS 1.3 client-certificate verdict)."""
    state = _ConnState()
    connected = await _connect(address, port, deadline)
    if isinstance(connected, tuple):
        return Attempt(state, tcp=connected)
    sock = connected
    loop = asyncio.get_running_loop()
    started = loop.time()
    offered = _offered(key.lowest, key.highest)
    has_client_cert = key.client_cert is not None
    try:
        conn = SSL.Connection(ctx, None)
        conn.set_app_data(state)
        conn.set_connect_state()
        if sni:
            conn.set_tlsext_host_name(sni.encode("ascii"))
        if request_ocsp:
            conn.request_ocsp()
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    try:
                        conn.do_handshake()
                        done = True
                    except SSL.WantReadError:
                        done = False
                    except SSL.Error as exc:
                        _send_nowait(sock, _drain(conn))
                        text, kind = _explain_failure(state, _ssl_error_text(exc), has_client_cert, offered)
                        return Attempt(state, error=text, kind=kind)
                    outgoing = _drain(conn)
                    if outgoing:
                        await loop.sock_sendall(sock, outgoing)
                    if done:
                        break
                    data = await loop.sock_recv(sock, 65536)
                    if not data:
                        state.eof = True
                        text, kind = _explain_failure(state, "unexpected EOF", has_client_cert, offered)
                        return Attempt(state, error=text, kind=kind)
                    state.bytes_received += len(data)
                    conn.bio_write(data)
        except TimeoutError:
            return Attempt(state, timeout=_stage(conn, state))
        except OSError as exc:
            text = f"the connection broke during the handshake: {_describe_errno(exc)}"
            if state.cert_requested and not has_client_cert:
                text = "the server required a client certificate and none is configured (client_cert); " + text
            return Attempt(state, error=text)
        if state.cert_requested and conn.get_protocol_version_name() == "TLSv1.3":
            rejection = await _client_cert_verdict(conn, sock, state, deadline, loop.time() - started, has_client_cert)
            if rejection:
                return Attempt(state, error=rejection, kind="client_cert")
        with contextlib.suppress(SSL.Error):
            conn.shutdown()
        _send_nowait(sock, _drain(conn))
        return Attempt(state, conn=conn)
    finally:
        sock.close()


async def _client_cert_verdict(
    conn: SSL.Connection, sock: socket.socket, state: _ConnState, deadline: float, rtt: float, has_client_cert: bool
) -> str | None:
    """TLS 1.3: wait briefly for the server's answer to our certificate (tickets: fine; an alert: rejected).

    Silence within the grace period counts as accepted (some servers send no tickets).
    """
    loop = asyncio.get_running_loop()
    grace = min(deadline - loop.time(), max(0.2, 4 * rtt))
    if grace <= 0:
        return None
    try:
        async with asyncio.timeout(grace):
            while True:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    state.eof = True
                    break
                conn.bio_write(data)
                try:
                    conn.recv(65536)
                except SSL.WantReadError:
                    return None  # post-handshake messages (tickets) processed, no alert: accepted
                except SSL.ZeroReturnError:
                    break
                except SSL.Error:
                    break
                return None  # application data: accepted
    except TimeoutError:
        return None
    except OSError:
        state.eof = True
    alert = state.alert_received
    if not has_client_cert:
        suffix = f" (alert {_ALERTS.get(alert, str(alert))})" if alert else ""
        return f"the server required a client certificate and none is configured (client_cert){suffix}"
    if alert:
        return f"the server rejected the client certificate (alert {_ALERTS.get(alert, str(alert))})"
    return "the server closed the connection after the handshake (client certificate rejected?)"
