"""The TLS layer: trust, name, validity, protocol versions, OCSP stapling, mTLS.

One :func:`check_tls` call is ONE attempt against one resolved address; the
engine fans out over addresses and retries transient failures.

How a handshake is driven
    pyOpenSSL through memory BIOs over a non-blocking socket: the event loop
    moves bytes, OpenSSL never touches the socket, so nothing blocks and one
    ``asyncio`` deadline bounds everything (TCP connect, a server that never
    answers the ClientHello or stalls mid-handshake, the extra handshakes for
    version probing). Python's ``ssl`` is not used: it cannot show a stapled
    OCSP response nor the chain the server sent.

How the certificate is judged
    OpenSSL builds and verifies the chain against the system store plus
    ``ca_bundle`` (certificates there are anchors even when not self-signed:
    ``PARTIAL_CHAIN``), but its verify callback only *records* errors, so the
    handshake completes and everything can be reported at once. Time checks
    are switched off in OpenSSL (``NO_CHECK_TIME``) and done here against
    ``now``, so validity is judged with one clock. Names are matched here too
    (SAN DNS names, a wildcard only as the whole left-most label matching one
    label; IP SANs for IP literals; the subject CN only when there is no SAN).

Precedence when several problems apply (the first is the verdict's reason;
the others are listed in ``details["problems"]``):
    ``untrusted`` > ``hostname`` > ``revoked`` > ``expired`` >
    ``not_yet_valid`` > ``expiring`` > ``no_ocsp_staple`` > ``old_protocol`` >
    ``protocol_unsupported``.
    Trust comes first because facts about a certificate that cannot be
    trusted (an interception proxy's, a default vhost's) are facts about the
    wrong certificate: "expired" would send the on-call person to renew a
    certificate that is not the problem. For a trusted chain, expiry is
    reported as ``expired`` (as ``openssl s_client -verify_return_error``
    says "certificate has expired"), also when an intermediate expired.

Telling "self-signed", "unknown CA" and "incomplete chain" apart
    (all ``untrusted``): a self-signed leaf is one; a chain that ends in a
    self-signed root the server sent, or in an intermediate the server sent
    whose issuer is not an anchor, is an unknown CA; a leaf sent alone whose
    issuer is unknown is an incomplete chain when the leaf names its issuer's
    URL (Authority Information Access, present in every public CA's leaves);
    without that hint both are possible and the message says so. Nothing is
    fetched: a probe talks to the target only.

Client certificates
    An info callback notes whether the server asked for a certificate and
    which alert it sent, so "the server required a client certificate" is
    told apart from other handshake failures. In TLS 1.3 the server judges
    the client certificate after the client's handshake has finished, so when
    one was requested the probe reads briefly after the handshake for the
    server's verdict (its session tickets, or an alert).

No pytest here, and nothing raises for a verdict. A bad expectation raises
``ValueError`` (a bug of the caller); an unreadable CA bundle or client key
gives reason ``setup``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import socket
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL
from OpenSSL.crypto import X509StoreFlags

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.errmap import (
    CHAIN_ERRORS,
    TIME_ERRORS,
    V_DEPTH_ZERO_SELF_SIGNED,
    V_SELF_SIGNED_IN_CHAIN,
    V_UNABLE_TO_GET_ISSUER_CERT,
    V_UNABLE_TO_GET_ISSUER_LOCALLY,
    V_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    LocalSetupError,
    verify_text,
)
from pytest_autoglm.probes.tcp import (
    LocalSocketError,
    PortState,
    connect_socket,
    describe_target,
    is_ip_literal,
    parse_ip,
)

__all__ = [
    "TLS_VERSIONS",
    "TlsExpectation",
    "cert_covers_name",
    "check_tls",
    "clear_context_cache",
]

#: Version names of the inventory, oldest first, and OpenSSL's numbers for them.
TLS_VERSIONS: Final[tuple[str, ...]] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_VERSION_NUMBER: Final[dict[str, int]] = {
    "TLSv1": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}
#: OpenSSL 3+ refuses TLS 1.0/1.1 at its default security level (docs/tls-versions.md).
_LEGACY_CIPHERS: Final = b"DEFAULT:@SECLEVEL=0"
#: SSL_OP_LEGACY_SERVER_CONNECT (not exported by pyOpenSSL): old servers lack RFC 5746;
#: a version probe must measure the version, not secure-renegotiation support.
_OP_LEGACY_SERVER_CONNECT: Final = 1 << 2
#: X509_V_FLAG_NO_CHECK_TIME (not in pyOpenSSL's X509StoreFlags): validity is judged against ``now`` here.
_NO_CHECK_TIME: Final = 0x200000
_OCSP_CLOCK_SKEW: Final = timedelta(minutes=5)
_CONTEXT_CACHE_SIZE: Final = 64

#: The precedence of certificate and protocol failures (module docstring).
_PRECEDENCE: Final[tuple[Reason, ...]] = (
    Reason.UNTRUSTED,
    Reason.HOSTNAME,
    Reason.REVOKED,
    Reason.EXPIRED,
    Reason.NOT_YET_VALID,
    Reason.EXPIRING,
    Reason.NO_OCSP_STAPLE,
    Reason.OLD_PROTOCOL,
    Reason.PROTOCOL_UNSUPPORTED,
    Reason.TIMEOUT,  # a version probe that got no answer
    Reason.REFUSED,  # a version probe whose TCP connect failed
    Reason.FILTERED,
    Reason.UNREACHABLE,
)

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

# --------------------------------------------------------------------------- expectation


@dataclass(frozen=True)
class TlsExpectation:
    """One ``tls`` item of the inventory (inventory.md), with its defaults."""

    port: int = 443
    sni: str | None = None  # None: the host name; no SNI at all when the host is an IP literal
    verify: bool = True  # chain to an anchor AND name match; validity days are checked either way
    min_version: str | None = None  # every version below it must be refused
    accept: tuple[str, ...] = ()  # each of these must complete a handshake
    min_days_valid: int | None = None
    ocsp_stapling: str = "optional"  # "required" | "optional"
    client_cert: Path | None = None  # PEM; the key may be in the same file
    client_key: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "accept", tuple(self.accept))
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range 1..65535")
        for version in (self.min_version, *self.accept):
            if version is not None and version not in _VERSION_NUMBER:
                raise ValueError(f"unknown TLS version {version!r}; expected one of {', '.join(TLS_VERSIONS)}")
        if self.ocsp_stapling not in ("required", "optional"):
            raise ValueError(f"ocsp_stapling must be 'required' or 'optional', not {self.ocsp_stapling!r}")
        if self.min_days_valid is not None and self.min_days_valid < 0:
            raise ValueError(f"min_days_valid must be >= 0, not {self.min_days_valid}")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key given without client_cert")


# --------------------------------------------------------------------------- SSL contexts


@dataclass(frozen=True)
class _ContextKey:
    """Everything a cached SSL context depends on; files by path, mtime and size, so edits reload."""

    verify: bool
    ca_bundle: tuple[str, int, int] | None
    client_cert: tuple[str, int, int] | None
    client_key: tuple[str, int, int] | None
    lowest: int
    highest: int


_contexts: OrderedDict[_ContextKey, SSL.Context] = OrderedDict()


def clear_context_cache() -> None:
    """Forget cached SSL contexts (and their loaded trust stores)."""
    _contexts.clear()


def _file_key(path: Path | None, what: str) -> tuple[str, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise LocalSetupError(f"{what} {path}: {exc.strerror or exc}") from None
    return (os.fspath(path), st.st_mtime_ns, st.st_size)


def _context(key: _ContextKey) -> SSL.Context:
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


# --------------------------------------------------------------------------- one handshake


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
class _Attempt:
    """What one connection attempt saw. Exactly one of conn/tcp/timeout/error is set."""

    state: _ConnState
    conn: SSL.Connection | None = None  # the handshake completed
    tcp: tuple[Reason, str] | None = None  # the TCP connect failed
    timeout: str | None = None  # no (complete) answer within the deadline
    error: str | None = None  # the handshake failed
    kind: str = "other"  # of a failure: "version" (no version in common), "client_cert" or "other"


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
    names = [n for n in TLS_VERSIONS if lowest <= _VERSION_NUMBER[n] <= highest]
    return names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"


async def _handshake(
    address: str,
    port: int,
    ctx: SSL.Context,
    key: _ContextKey,
    sni: str | None,
    deadline: float,
    *,
    request_ocsp: bool,
) -> _Attempt:
    """Connect and complete one client handshake (plus the TLS 1.3 client-certificate verdict)."""
    state = _ConnState()
    connected = await _connect(address, port, deadline)
    if isinstance(connected, tuple):
        return _Attempt(state, tcp=connected)
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
                        return _Attempt(state, error=text, kind=kind)
                    outgoing = _drain(conn)
                    if outgoing:
                        await loop.sock_sendall(sock, outgoing)
                    if done:
                        break
                    data = await loop.sock_recv(sock, 65536)
                    if not data:
                        state.eof = True
                        text, kind = _explain_failure(state, "unexpected EOF", has_client_cert, offered)
                        return _Attempt(state, error=text, kind=kind)
                    state.bytes_received += len(data)
                    conn.bio_write(data)
        except TimeoutError:
            return _Attempt(state, timeout=_stage(conn, state))
        except OSError as exc:
            text = f"the connection broke during the handshake: {_describe_errno(exc)}"
            if state.cert_requested and not has_client_cert:
                text = "the server required a client certificate and none is configured (client_cert); " + text
            return _Attempt(state, error=text)
        if state.cert_requested and conn.get_protocol_version_name() == "TLSv1.3":
            rejection = await _client_cert_verdict(conn, sock, state, deadline, loop.time() - started, has_client_cert)
            if rejection:
                return _Attempt(state, error=rejection, kind="client_cert")
        with contextlib.suppress(SSL.Error):
            conn.shutdown()
        _send_nowait(sock, _drain(conn))
        return _Attempt(state, conn=conn)
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


def _idna(name: str) -> str:
    """The A-label form of a DNS name, lower case, without a trailing dot."""
    name = name.rstrip(".").lower()
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        try:
            return name.encode("idna").decode("ascii")
        except UnicodeError:
            return name  # not a valid IDN: it can match nothing, and check_tls refuses it as an SNI
    return name


# --------------------------------------------------------------------------- certificate facts


def _dns_pattern_matches(pattern: str, name: str) -> bool:
    """RFC 6125 as browsers apply it: ``*`` only as the whole left-most label, matching exactly one label."""
    pattern = pattern.rstrip(".").lower()
    if "*" not in pattern:
        return pattern == name
    labels = pattern.split(".")
    if labels[0] != "*" or any("*" in label for label in labels[1:]) or len(labels) < 3:
        return False  # partial (f*.x), deeper (a.*.x) or too broad (*.com) wildcards never match
    name_labels = name.split(".")
    return len(name_labels) == len(labels) and bool(name_labels[0]) and name_labels[1:] == labels[1:]


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a malformed extension: treat as absent rather than crash
        return None


def cert_covers_name(cert: x509.Certificate, name: str) -> bool:
    """Whether ``cert`` is valid for ``name`` (a DNS name or an IP literal).

    IP literals match IP SANs only. DNS names match SAN DNS names; the subject
    CN is consulted only when the certificate has no SAN extension at all.
    """
    san = _san(cert)
    ip = parse_ip(name)
    if ip is not None:
        return san is not None and ip in san.get_values_for_type(x509.IPAddress)
    wanted = _idna(name)
    if san is not None:
        patterns = san.get_values_for_type(x509.DNSName)
    else:
        patterns = [str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_pattern_matches(p, wanted) for p in patterns)


def _sans(cert: x509.Certificate) -> list[str]:
    san = _san(cert)
    if san is None:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _short_name(name: x509.Name) -> str:
    """``CN`` if there is one, else the full RFC 4514 string: what people recognise in a message."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _span(delta: timedelta) -> str:
    """``5 days``, ``3 hours``, ``1 minute``: how far a date is, in the largest whole unit."""
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


def _days_left(cert: x509.Certificate, now: datetime) -> int:
    return math.floor((cert.not_valid_after_utc - now) / timedelta(days=1))


def _key_info(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    """Key type, size in bits, and curve name (EC only)."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return type(key).__name__, None, None


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return str(getattr(oid, "_name", "") or oid.dotted_string)


def _aia_issuer_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.CA_ISSUERS and isinstance(
            desc.access_location, x509.UniformResourceIdentifier
        ):
            return str(desc.access_location.value)
    return None


def _trust_problem(
    errors: Sequence[tuple[int, int]], sent: Sequence[x509.Certificate], built: Sequence[x509.Certificate]
) -> str | None:
    """Why the chain does not lead to an anchor, in the words an engineer acts on (None: it does)."""
    errors = [(code, depth) for code, depth in errors if code not in TIME_ERRORS]
    if not errors:
        return None
    code, depth = next(((c, d) for c, d in errors if c in CHAIN_ERRORS), errors[0])
    chain = list(built) or list(sent)
    leaf = chain[0] if chain else None
    if code == V_DEPTH_ZERO_SELF_SIGNED and leaf is not None:
        return f"self-signed certificate '{_short_name(leaf.subject)}' (not a trust anchor; add it to ca_bundle to trust it)"
    if code == V_SELF_SIGNED_IN_CHAIN and chain:
        root = chain[min(depth, len(chain) - 1)]
        return f"unknown CA: the chain ends in the self-signed root '{_short_name(root.subject)}', which is not a trust anchor"
    if (
        code in (V_UNABLE_TO_GET_ISSUER_LOCALLY, V_UNABLE_TO_GET_ISSUER_CERT, V_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
        and chain
    ):
        top = chain[min(depth, len(chain) - 1)]
        issuer = _short_name(top.issuer)
        if top is not chain[0] or depth > 0:
            return f"unknown CA: '{issuer}', the issuer of intermediate '{_short_name(top.subject)}', is not a trust anchor"
        if len(sent) > 1:
            return (
                f"incomplete chain: the certificates the server sent do not include the leaf's issuer '{issuer}'"
                " (wrong intermediate configured?)"
            )
        url = _aia_issuer_url(top)
        if url is not None:
            return f"incomplete chain: the server did not send the intermediate certificate '{issuer}' (published at {url})"
        return (
            f"unknown issuer '{issuer}': it is not a trust anchor and the server sent no intermediate certificate"
            " (an unknown CA, or an incomplete chain with the intermediate missing)"
        )
    return f"{verify_text(code)} (depth {depth})"


#: OpenSSL's default security level here (2): RSA/DSA keys of fewer bits, EC keys of fewer bits, are refused.
_MIN_RSA_BITS = 2048
_MIN_EC_BITS = 224


def _weak_key_problem(chain: Sequence[x509.Certificate]) -> str | None:
    for index, cert in enumerate(chain):
        kind, bits, _ = _key_info(cert)
        floor = {"RSA": _MIN_RSA_BITS, "DSA": _MIN_RSA_BITS, "EC": _MIN_EC_BITS}.get(kind)
        if bits is not None and floor is not None and bits < floor:
            whose = "the server certificate's" if index == 0 else f"CA certificate '{_short_name(cert.subject)}''s"
            return f"{whose} key is too weak ({kind} {bits} bits)"
    return None


def _validity_problems(chain: Sequence[x509.Certificate], now: datetime) -> list[tuple[Reason, str]]:
    """Expired / not yet valid certificates of the chain, leaf first."""
    problems: list[tuple[Reason, str]] = []
    for index, cert in enumerate(chain):
        what = (
            "certificate"
            if index == 0
            else f"{'intermediate' if index < len(chain) - 1 else 'CA'} certificate '{_short_name(cert.subject)}'"
        )
        if cert.not_valid_after_utc < now:
            when = cert.not_valid_after_utc
            problems.append((Reason.EXPIRED, f"{what} expired on {_day(when)} ({_span(now - when)} ago)"))
        elif cert.not_valid_before_utc > now:
            when = cert.not_valid_before_utc
            problems.append((Reason.NOT_YET_VALID, f"{what} is not valid before {_day(when)} (in {_span(when - now)})"))
    return problems


# --------------------------------------------------------------------------- OCSP


@dataclass
class _StapleVerdict:
    status: str | None  # "good" | "revoked" | "unknown" | None (no staple)
    note: str = ""  # why a staple was not usable, or what it said
    usable: bool = False


def _issuer_of(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject == cert.issuer and candidate is not cert:
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            return candidate
    return None


def _signature_ok(key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _key_hash(subject_cert: x509.Certificate, key_owner: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """The OCSP hash of ``key_owner``'s public key (computed by cryptography's request builder)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(subject_cert, key_owner, algorithm).build()
    return request.issuer_key_hash


def _responder_signed(resp: ocsp.OCSPResponse, leaf: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The response is signed by the issuer, or by a responder the issuer delegated (id-kp-OCSPSigning)."""
    candidates = [issuer, *resp.certificates]
    for responder in candidates:
        if resp.responder_name is not None and responder.subject != resp.responder_name:
            continue
        if resp.responder_key_hash is not None and _key_hash(leaf, responder, hashes.SHA1()) != resp.responder_key_hash:
            continue
        if responder is not issuer:
            try:
                responder.verify_directly_issued_by(issuer)
                eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, x509.ExtensionNotFound):
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                continue
        if _signature_ok(
            responder.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm
        ):
            return True
    return False


def _judge_staple(
    staple: bytes | None, leaf: x509.Certificate, issuer: x509.Certificate | None, now: datetime
) -> _StapleVerdict:
    """What the stapled OCSP response says about ``leaf``, if it can be believed."""
    if not staple:
        return _StapleVerdict(None, "no OCSP staple in the handshake")
    try:
        resp = ocsp.load_der_ocsp_response(staple)
    except ValueError:
        return _StapleVerdict("unknown", "the stapled OCSP response cannot be parsed")
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return _StapleVerdict("unknown", f"the stapled OCSP response has status {resp.response_status.name.lower()}")
    single = next((r for r in resp.responses if r.serial_number == leaf.serial_number), None)
    if single is None:
        return _StapleVerdict("unknown", "the stapled OCSP response is about another certificate (serial number)")
    if issuer is not None:
        if _key_hash(leaf, issuer, single.hash_algorithm) != single.issuer_key_hash:
            return _StapleVerdict("unknown", "the stapled OCSP response is about another issuer")
        if not _responder_signed(resp, leaf, issuer):
            return _StapleVerdict("unknown", "the stapled OCSP response's signature does not verify")
    if single.this_update_utc > now + _OCSP_CLOCK_SKEW:
        return _StapleVerdict(
            "unknown", f"the stapled OCSP response is from the future ({_iso(single.this_update_utc)})"
        )
    if single.next_update_utc is not None and single.next_update_utc < now - _OCSP_CLOCK_SKEW:
        return _StapleVerdict(
            "unknown", f"the stapled OCSP response is stale (next update was {_iso(single.next_update_utc)})"
        )
    status = single.certificate_status.name.lower()
    unverified = "" if issuer is not None else " (signature not checked: the issuer certificate is unknown)"
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        when = single.revocation_time_utc
        why = f", reason {single.revocation_reason.name}" if single.revocation_reason is not None else ""
        note = f"certificate revoked on {_day(when) if when else '?'} per the stapled OCSP response{why}{unverified}"
        return _StapleVerdict("revoked", note, usable=True)
    if single.certificate_status == ocsp.OCSPCertStatus.UNKNOWN:
        return _StapleVerdict("unknown", "the stapled OCSP response says the certificate is unknown to the responder")
    return _StapleVerdict(status, f"OCSP staple: good{unverified}", usable=True)


# --------------------------------------------------------------------------- the check


def _details_of(
    conn: SSL.Connection, address: str, port: int, sni: str | None, now: datetime
) -> tuple[dict[str, Any], x509.Certificate | None, list[x509.Certificate]]:
    """JSON-ready facts of a completed handshake, the leaf, and the chain as sent."""
    leaf = conn.get_peer_certificate(as_cryptography=True)
    sent = conn.get_peer_cert_chain(as_cryptography=True) or ([leaf] if leaf is not None else [])
    details: dict[str, Any] = {
        "address": address,
        "port": port,
        "sni": sni,
        "version": conn.get_protocol_version_name(),
        "cipher": conn.get_cipher_name(),
    }
    if leaf is not None:
        key_type, key_size, key_curve = _key_info(leaf)
        details.update(
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            sans=_sans(leaf),
            not_before=_iso(leaf.not_valid_before_utc),
            not_after=_iso(leaf.not_valid_after_utc),
            days_left=_days_left(leaf, now),
            serial=f"{leaf.serial_number:x}",
            key_type=key_type,
            key_size=key_size,
            key_curve=key_curve,
            signature_algorithm=_signature_algorithm(leaf),
        )
    details["chain"] = [{"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string()} for c in sent]
    details["ocsp_status"] = None
    return details, leaf, list(sent)


async def _probe_version(
    address: str, port: int, version: str, base: _ContextKey, sni: str | None, deadline: float
) -> tuple[str, str, Reason | None]:
    """Whether the server completes a handshake pinned to ``version``: (state, text, TCP reason).

    state: ``accepted`` | ``refused`` | ``timeout`` | ``no connection`` (then the TCP reason is set).
    """
    number = _VERSION_NUMBER[version]
    key = _ContextKey(False, None, base.client_cert, base.client_key, number, number)
    attempt = await _handshake(address, port, _context(key), key, sni, deadline, request_ocsp=False)
    if attempt.conn is not None:
        return "accepted", "", None
    if attempt.tcp is not None:
        return "no connection", attempt.tcp[1], attempt.tcp[0]
    if attempt.timeout is not None:
        return "timeout", attempt.timeout, None
    return "refused", attempt.error or "handshake failed", None


def _fail(
    layer: Layer, reason: Reason, where: str, text: str, address: str, details: dict[str, Any], **kw: Any
) -> Verdict:
    return Verdict.fail(layer, reason, f"{where}: {text}", address=address, details=details, **kw)


async def check_tls(
    host: str,
    address: str,
    expect: TlsExpectation,
    *,
    timeout: float,
    ca_bundle: Path | None = None,
    now: datetime | None = None,
) -> Verdict:
    """Judge ONE attempt of a ``tls`` expectation against one resolved ``address`` of ``host``.

    Everything (TCP connect, handshake, version probes) is bounded by ``timeout``
    in total. TCP connect failures are reported at layer ``tcp``; a silent or
    stalling server gives ``timeout`` at layer ``tls``. ``now`` (default: the
    clock) is the moment validity is judged at. Raises ``ValueError`` only for
    caller bugs: ``address`` not an IP literal, an invalid server name.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if not is_ip_literal(address.split("%", maxsplit=1)[0]):
        raise ValueError(f"not an IP address: {address!r} (resolve the name before probing)")
    port = expect.port
    where = describe_target(address, port, host)
    name = expect.sni or host  # the name the certificate must cover
    sni = None if is_ip_literal(name) else _idna(name)
    if sni is not None and not sni.isascii():
        raise ValueError(f"not a valid TLS server name: {name!r}")
    base_details: dict[str, Any] = {"address": address, "port": port, "sni": sni}

    lowest = min(
        [_VERSION_NUMBER["TLSv1.2"]]
        + [_VERSION_NUMBER[v] for v in expect.accept]
        + ([_VERSION_NUMBER[expect.min_version]] if expect.min_version else [])
    )
    try:
        key = _ContextKey(
            expect.verify,
            _file_key(ca_bundle, "ca_bundle") if expect.verify else None,
            _file_key(expect.client_cert, "client_cert"),
            _file_key(expect.client_key, "client_key"),
            lowest,
            SSL.TLS1_3_VERSION,
        )
        ctx = _context(key)
    except LocalSetupError as exc:
        return _fail(Layer.TLS, Reason.SETUP, where, f"cannot check: {exc}", address, base_details, transient=False)

    attempt = await _handshake(address, port, ctx, key, sni, deadline, request_ocsp=True)
    if attempt.tcp is not None:
        reason, text = attempt.tcp
        return _fail(Layer.TCP, reason, where, text, address, base_details)
    if attempt.timeout is not None:
        text = f"{attempt.timeout} within {format_duration(timeout)}"
        return _fail(Layer.TLS, Reason.TIMEOUT, where, text, address, base_details)
    if attempt.conn is None:
        return await _handshake_failed(attempt, expect, key, address, port, sni, deadline, where, base_details)

    details, leaf, sent = _details_of(attempt.conn, address, port, sni, now)
    details["client_cert_requested"] = attempt.state.cert_requested
    if leaf is None:
        return _fail(Layer.TLS, Reason.HANDSHAKE, where, "the server sent no certificate", address, details)
    problems: list[tuple[Reason, str]] = []

    # Trust and name.
    built: list[x509.Certificate] = []
    if expect.verify:
        built = list(attempt.conn.get_verified_chain(as_cryptography=True) or [])
        trust = _trust_problem(attempt.state.verify_errors, sent, built)
        if trust is None and key.lowest < SSL.TLS1_2_VERSION:
            # Offering TLS 1.0/1.1 needs @SECLEVEL=0, which also stops OpenSSL refusing weak keys
            # in the chain: apply the default level's key rule ourselves so `accept` never weakens trust.
            trust = _weak_key_problem(built or [leaf])
        if trust is not None:
            problems.append((Reason.UNTRUSTED, trust))
            details["verify_errors"] = [
                {"code": c, "depth": d, "text": verify_text(c)} for c, d in attempt.state.verify_errors
            ]
        if not cert_covers_name(leaf, name):
            problems.append((Reason.HOSTNAME, _hostname_text(leaf, name, expect.sni is not None)))

    # Validity: the whole verified chain when verifying, else the leaf alone.
    problems.extend(_validity_problems(built if expect.verify and built else [leaf], now))
    if expect.min_days_valid is not None and now <= leaf.not_valid_after_utc:
        left = leaf.not_valid_after_utc - now
        if left < timedelta(days=expect.min_days_valid):
            problems.append(
                (
                    Reason.EXPIRING,
                    (
                        f"certificate expires on {_day(leaf.not_valid_after_utc)} ({_span(left)} left,"
                        f" fewer than min_days_valid {expect.min_days_valid})"
                    ),
                )
            )

    # OCSP stapling.
    issuer = (built[1] if len(built) > 1 else None) or _issuer_of(leaf, sent)
    staple = _judge_staple(attempt.state.staple, leaf, issuer, now)
    details["ocsp_status"] = staple.status
    if staple.note and staple.status is not None:
        details["ocsp_note"] = staple.note
    if staple.status == "revoked":
        problems.append((Reason.REVOKED, staple.note))
    elif expect.ocsp_stapling == "required" and staple.status != "good":
        text = staple.note if staple.status is None else f"no usable OCSP staple: {staple.note}"
        problems.append((Reason.NO_OCSP_STAPLE, f"{text} (ocsp_stapling: required)"))

    # Protocol versions.
    problems.extend(await _version_problems(expect, key, address, port, sni, deadline, details))

    if problems:
        problems.sort(key=lambda p: _PRECEDENCE.index(p[0]))
        reason, text = problems[0]
        if len(problems) > 1:
            details["problems"] = [{"reason": r.value, "message": t} for r, t in problems[1:]]
        layer = Layer.TCP if reason in (Reason.REFUSED, Reason.FILTERED, Reason.UNREACHABLE) else Layer.TLS
        return _fail(layer, reason, where, text, address, details)
    left = leaf.not_valid_after_utc - now
    summary = (
        f"{details['version']} {details['cipher']}; certificate valid until {_day(leaf.not_valid_after_utc)}"
        f" ({_span(left)} left)"
    )
    if staple.status == "good":
        summary += "; OCSP staple good"
    if attempt.state.cert_requested and expect.client_cert is None:
        # nginx's "ssl_verify_client on" completes the handshake and rejects at HTTP (400): say so here.
        summary += "; the server asked for a client certificate (none configured)"
    return Verdict.ok(f"{where}: {summary}", address=address, details=details)


def _hostname_text(leaf: x509.Certificate, name: str, from_sni: bool) -> str:
    sans = _sans(leaf)
    shown = ", ".join(sans[:6]) + (f" and {len(sans) - 6} more" if len(sans) > 6 else "")
    subject = f"certificate does not cover {name}" + (" (the sni)" if from_sni else "")
    if not sans:
        return f"{subject}: it has no SAN, subject CN '{_short_name(leaf.subject)}'"
    if is_ip_literal(name):
        return f"{subject}: no IP address SAN matches (SANs: {shown})"
    return f"{subject} (SANs: {shown})"


async def _version_problems(
    expect: TlsExpectation,
    key: _ContextKey,
    address: str,
    port: int,
    sni: str | None,
    deadline: float,
    details: dict[str, Any],
) -> list[tuple[Reason, str]]:
    """Extra handshakes pinned to single versions, run at once, within the same deadline."""
    negotiated = str(details.get("version"))
    below = [
        v for v in TLS_VERSIONS if expect.min_version and TLS_VERSIONS.index(v) < TLS_VERSIONS.index(expect.min_version)
    ]
    wanted = list(dict.fromkeys([*below, *expect.accept]))
    if not wanted:
        return []
    states: dict[str, tuple[str, str, Reason | None]] = {}
    if negotiated in wanted:
        states[negotiated] = ("accepted", "", None)
    to_probe = [v for v in wanted if v not in states]
    results = await asyncio.gather(*(_probe_version(address, port, v, key, sni, deadline) for v in to_probe))
    states.update(zip(to_probe, results, strict=True))
    details["versions"] = {v: states[v][0] for v in TLS_VERSIONS if v in states}
    problems: list[tuple[Reason, str]] = []
    old = [v for v in below if states[v][0] == "accepted"]
    if old:
        problems.append((Reason.OLD_PROTOCOL, f"accepts {' and '.join(old)}, below min_version {expect.min_version}"))
    refused = [v for v in expect.accept if states[v][0] == "refused"]
    if refused:
        why = "; ".join(f"{v}: {states[v][1]}" for v in refused)
        problems.append((Reason.PROTOCOL_UNSUPPORTED, f"refuses {' and '.join(refused)} (listed in accept): {why}"))
    for version, (state, text, tcp_reason) in states.items():
        if state == "timeout" and version in below:
            # Silence to an old ClientHello is a refusal (some servers and firewalls drop them):
            # the main handshake worked, so the server is up and the old version did not get through.
            details["versions"][version] = "refused (no answer)"
        elif state == "timeout":
            problems.append((Reason.TIMEOUT, f"no answer to a {version} handshake: {text}"))
        elif tcp_reason is not None:
            problems.append((tcp_reason, f"while probing {version}: {text}"))
    return problems


async def _handshake_failed(
    attempt: _Attempt,
    expect: TlsExpectation,
    key: _ContextKey,
    address: str,
    port: int,
    sni: str | None,
    deadline: float,
    where: str,
    details: dict[str, Any],
) -> Verdict:
    """The main handshake failed. If for want of a common version, find out which old one the server speaks."""
    text = attempt.error or "the handshake failed"
    if attempt.kind == "version" and key.lowest > SSL.TLS1_VERSION:
        older = [v for v in TLS_VERSIONS if _VERSION_NUMBER[v] < key.lowest]
        results = await asyncio.gather(*(_probe_version(address, port, v, key, sni, deadline) for v in older))
        spoken = [v for v, result in zip(older, results, strict=True) if result[0] == "accepted"]
        details["versions"] = {v: result[0] for v, result in zip(older, results, strict=True)}
        if spoken and expect.min_version is not None:
            return _fail(
                Layer.TLS,
                Reason.OLD_PROTOCOL,
                where,
                f"accepts only {' and '.join(spoken)}, below min_version {expect.min_version}; {text}",
                address,
                details,
            )
        if spoken:
            text += f"; it speaks only {' and '.join(spoken)} (allow it with accept or min_version)"
        return _fail(Layer.TLS, Reason.HANDSHAKE, where, text, address, details, transient=False)
    definite = attempt.kind != "other"
    return _fail(Layer.TLS, Reason.HANDSHAKE, where, text, address, details, transient=not definite)
