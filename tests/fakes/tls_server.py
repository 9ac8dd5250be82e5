"""Real TLS servers on loopback, and the certificates they serve, made at test time.

:class:`TlsServer` runs pyOpenSSL on 127.0.0.1 (or ::1), port 0, in background
threads: one accept loop plus one thread per connection. Each connection is
driven through memory BIOs over a socket with a timeout, so every thread ends
on its own, and :meth:`TlsServer.close` shuts all sockets down and joins with
a bound. What it can be told to do: serve a chain, accept a range of versions
(down to TLS 1.0), require client certificates signed by a CA, staple an OCSP
response, or misbehave (``silent``: accept TCP, never answer; ``stall``: send
the first record of the handshake, then nothing; ``close``: hang up after the
ClientHello; ``plain``: answer in plain HTTP).

Certificates: trustme makes the ordinary ones; the builders here make what
trustme cannot (a self-signed leaf, a leaf naming its issuer's URL, a leaf
without SAN, a delegated OCSP responder) and OCSP responses. Nothing is
checked in: every key is generated per test session or test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import selectors
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

__all__ = [
    "Issued",
    "Mode",
    "ServerStats",
    "TlsServer",
    "make_ca",
    "make_leaf",
    "make_ocsp_response",
    "pem",
    "tls_server",
]

Mode = Literal["normal", "silent", "stall", "close", "plain"]

_VERSIONS = {
    "TLSv1": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @classmethod
    def from_trustme(cls, item: trustme.CA | trustme.LeafCert) -> Issued:
        """A trustme CA or leaf as cryptography objects (a leaf's own certificate, without its chain)."""
        if isinstance(item, trustme.CA):
            cert_pem, key_pem = item.cert_pem.bytes(), item.private_key_pem.bytes()
        else:
            cert_pem, key_pem = item.cert_chain_pems[0].bytes(), item.private_key_pem.bytes()
        key = serialization.load_pem_private_key(key_pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(x509.load_pem_x509_certificate(cert_pem), key)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def pem(*items: Issued | x509.Certificate) -> bytes:
    """Concatenated PEM certificates (for a CA bundle or a chain file)."""
    certs = [item.cert if isinstance(item, Issued) else item for item in items]
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-autoglm tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _general_name(text: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        return x509.DNSName(text)


def _validity(not_before: dt.datetime | None, not_after: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    now = _utcnow()
    end = not_after or now + dt.timedelta(days=365)
    return (not_before or min(now - dt.timedelta(days=1), end - dt.timedelta(days=90)), end)


def make_ca(
    common_name: str,
    *,
    issuer: Issued | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A root CA (``issuer`` None) or an intermediate signed by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(not_before, not_after)
    signer = issuer.key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer is not None else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_leaf(
    names: Sequence[str],
    *,
    issuer: Issued | None = None,
    common_name: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    san: bool = True,
    aia_ca_issuers: str | None = None,
    ocsp_signing: bool = False,
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> Issued:
    """A server (and client) certificate; self-signed when ``issuer`` is None.

    ``san=False`` puts the first name in the subject CN only (legacy);
    ``aia_ca_issuers`` adds the issuer's URL as public CAs do; ``ocsp_signing``
    makes a delegated OCSP responder.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(not_before, not_after)
    subject = _name(common_name or (names[0] if names else "leaf"))
    usages = (
        [ExtendedKeyUsageOID.OCSP_SIGNING]
        if ocsp_signing
        else [
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if san and names:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if aia_ca_issuers:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_ca_issuers)
                    )
                ]
            ),
            critical=False,
        )
    return Issued(builder.sign(issuer.key if issuer is not None else key, hashes.SHA256()), key)


def make_ocsp_response(
    leaf: Issued | x509.Certificate,
    issuer: Issued,
    status: Literal["good", "revoked", "unknown"] = "good",
    *,
    responder: Issued | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    revocation_time: dt.datetime | None = None,
) -> bytes:
    """A DER OCSP response about ``leaf``, signed by ``issuer`` or a delegated ``responder``."""
    cert = leaf.cert if isinstance(leaf, Issued) else leaf
    now = _utcnow()
    cert_status = {
        "good": ocsp.OCSPCertStatus.GOOD,
        "revoked": ocsp.OCSPCertStatus.REVOKED,
        "unknown": ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    signer = responder or issuer
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA1(),
            cert_status=cert_status,
            this_update=this_update or now - dt.timedelta(hours=1),
            next_update=next_update or now + dt.timedelta(days=3),
            revocation_time=(revocation_time or now - dt.timedelta(days=2)) if status == "revoked" else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == "revoked" else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    )
    if responder is not None:
        builder = builder.certificates([responder.cert])
    response = builder.sign(signer.key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------- the server


@dataclass
class ServerStats:
    """What the server saw (read under the server's lock, or after close)."""

    connections: int = 0
    handshakes: int = 0
    versions: list[str] = field(default_factory=list)  # negotiated, per completed handshake
    client_certs: list[str] = field(default_factory=list)  # subjects of client certificates received
    ocsp_requests: int = 0
    errors: list[str] = field(default_factory=list)


class TlsServer:
    """A loopback TLS server in background threads; use as a context manager."""

    def __init__(
        self,
        chain: Sequence[Issued | x509.Certificate],
        key: CertificateIssuerPrivateKeyTypes | None = None,
        *,
        host: str = "127.0.0.1",
        min_version: str = "TLSv1.2",
        max_version: str = "TLSv1.3",
        client_ca: Issued | x509.Certificate | None = None,
        require_client_cert: bool = True,
        ocsp_response: bytes | None = None,
        mode: Mode = "normal",
        io_timeout: float = 5.0,
    ) -> None:
        """``chain`` is leaf first, then intermediates; ``key`` defaults to the leaf's (an Issued).

        With ``client_ca``, the server asks for a client certificate signed by it, and
        refuses the handshake without one unless ``require_client_cert`` is false.
        """
        certs = [c.cert if isinstance(c, Issued) else c for c in chain]
        if key is None:
            first = chain[0]
            if not isinstance(first, Issued):
                raise ValueError("give key= when the leaf is a bare certificate")
            key = first.key
        self.host = host
        self.mode: Mode = mode
        self.ocsp_response = ocsp_response
        self.io_timeout = io_timeout
        self.stats = ServerStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="tls-server-")
        self._require_client_cert = require_client_cert
        self._ctx = self._make_context(certs, key, min_version, max_version, client_ca)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.port: int = int(self._listener.getsockname()[1])
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"tls-server-{self.port}", daemon=True)

    def _make_context(
        self,
        certs: list[x509.Certificate],
        key: CertificateIssuerPrivateKeyTypes,
        min_version: str,
        max_version: str,
        client_ca: Issued | x509.Certificate | None,
    ) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(_VERSIONS[min_version])
        ctx.set_max_proto_version(_VERSIONS[max_version])
        if _VERSIONS[min_version] < SSL.TLS1_2_VERSION:
            ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")  # OpenSSL 3+ accepts TLS 1.0/1.1 only at level 0
        ctx.use_certificate(certs[0])
        for extra in certs[1:]:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(key)  # type: ignore[arg-type]
        ctx.check_privatekey()
        if client_ca is not None:
            ca_cert = client_ca.cert if isinstance(client_ca, Issued) else client_ca
            ca_file = Path(self._tmp.name) / "client-ca.pem"
            ca_file.write_bytes(pem(ca_cert))
            ctx.load_verify_locations(str(ca_file))
            ctx.add_client_ca(ca_cert)
            required = SSL.VERIFY_FAIL_IF_NO_PEER_CERT if self._require_client_cert else 0
            ctx.set_verify(SSL.VERIFY_PEER | required)
        ctx.set_ocsp_server_callback(self._staple)
        return ctx

    # -- lifecycle

    @property
    def address(self) -> str:
        return self.host

    def start(self) -> Self:
        self._accept_thread.start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, join_timeout: float = 3.0) -> None:
        """Stop accepting, shut every connection down, join all threads within ``join_timeout`` in total."""
        self._stop.set()
        with self._lock:
            live = list(self._sockets)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        end = time.monotonic() + join_timeout
        if self._accept_thread.is_alive():
            self._accept_thread.join(max(0.0, end - time.monotonic()))
        for thread in list(self._threads):
            thread.join(max(0.0, end - time.monotonic()))
        for sock in live:
            with contextlib.suppress(OSError):
                sock.close()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._tmp.cleanup()

    def wait_until(self, predicate: Callable[[ServerStats], bool], timeout: float = 2.0) -> bool:
        """Whether ``predicate(stats)`` holds within ``timeout``: the server thread may lag the client."""
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                if predicate(self.stats):
                    return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)

    # -- serving

    def _staple(self, _conn: SSL.Connection, _data: object) -> bytes:
        with self._lock:
            self.stats.ocsp_requests += 1
        return self.ocsp_response or b""

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not sel.select(timeout=0.05):
                    continue
                try:
                    sock, _peer = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                with self._lock:
                    self.stats.connections += 1
                    self._sockets.add(sock)
                if self.mode == "silent":
                    continue  # held open, never read, closed by close()
                thread = threading.Thread(target=self._handle, args=(sock,), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(self.io_timeout)
        try:
            if self.mode == "close":
                sock.recv(65536)
            elif self.mode == "plain":
                sock.recv(65536)
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                self._serve_tls(sock)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _note_error(self, text: str) -> None:
        with self._lock:
            self.stats.errors.append(text)

    def _serve_tls(self, sock: socket.socket) -> None:
        conn = SSL.Connection(self._ctx, None)
        conn.set_accept_state()
        while True:
            try:
                conn.do_handshake()
                done = True
            except SSL.WantReadError:
                done = False
            except SSL.Error as exc:
                self._note_error(repr(exc))
                with contextlib.suppress(OSError):
                    sock.sendall(_drain(conn))  # the alert
                return
            out = _drain(conn)
            if out and self.mode == "stall":
                record_end = 5 + int.from_bytes(out[3:5], "big")
                sock.sendall(out[:record_end])  # the ServerHello record, then silence
                self._stop.wait(self.io_timeout)
                return
            if out:
                sock.sendall(out)
            if done:
                break
            data = sock.recv(65536)
            if not data:
                return
            conn.bio_write(data)
        peer = conn.get_peer_certificate(as_cryptography=True)
        with self._lock:
            self.stats.handshakes += 1
            self.stats.versions.append(conn.get_protocol_version_name())
            if peer is not None:
                self.stats.client_certs.append(peer.subject.rfc4514_string())
        self._serve_data(conn, sock)

    def _serve_data(self, conn: SSL.Connection, sock: socket.socket) -> None:
        """Answer any request with a tiny HTTP response until the client goes away."""
        while not self._stop.is_set():
            data = sock.recv(65536)
            if not data:
                return
            conn.bio_write(data)
            try:
                request = conn.recv(65536)
            except SSL.WantReadError:
                continue
            except SSL.ZeroReturnError:
                with contextlib.suppress(SSL.Error):
                    conn.shutdown()
                sock.sendall(_drain(conn))
                return
            except SSL.Error as exc:
                self._note_error(repr(exc))
                sock.sendall(_drain(conn))
                return
            if request:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                sock.sendall(_drain(conn))


def _drain(conn: SSL.Connection) -> bytes:
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


@contextlib.contextmanager
def tls_server(*args: object, **kwargs: object) -> Iterator[TlsServer]:
    """``with tls_server(chain, ...) as server:`` - the same as ``with TlsServer(...)``."""
    server = TlsServer(*args, **kwargs)  # type: ignore[arg-type]
    with server:
        yield server
