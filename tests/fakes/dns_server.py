"""A real DNS responder on loopback for tests (UDP, TCP, and optionally DoT and DoH).

It answers from a zone dict the test defines, so the probe is exercised through
real sockets and real DNS wire format, never through mocks::

    with FakeDnsServer({"api.test.": {"A": ["192.0.2.10"]}}) as server:
        spec = parse_resolver(server.address)      # "127.0.0.1:PORT"

Behaviour knobs: ``mode`` ("normal", "servfail", "refused", "silent"),
``servfail_names`` (SERVFAIL for some names only), ``truncate_udp`` (every UDP
answer has TC set and no records, forcing the client over to TCP), ``tls``
(DNS over TLS on its own port, certificate from a trustme CA) and ``doh``
(DNS over HTTPS on its own port, POST and GET ``application/dns-message``).
Several servers with different zones make resolvers that disagree.
"""

from __future__ import annotations

import base64
import errno
import http.server
import socket
import ssl
import struct
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

MODES = ("normal", "servfail", "refused", "silent")
_JOIN_TIMEOUT = 5.0
_POLL = 0.05


def _txt(value: str) -> dns.rdata.Rdata:
    """A TXT record holding ``value``, split into 255-byte character-strings as a real zone would."""
    raw = value.encode()
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


class FakeDnsServer:
    """A threaded DNS server on 127.0.0.1; UDP and TCP share one port number."""

    def __init__(
        self,
        zone: Mapping[str, Mapping[str, Sequence[str]]],
        *,
        mode: str = "normal",
        servfail_names: Iterable[str] = (),
        truncate_udp: bool = False,
        tls: bool = False,
        doh: bool = False,
        ttl: int = 300,
        receive_buffer: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.truncate_udp = truncate_udp
        self.servfail_names = {dns.name.from_text(n) for n in servfail_names}
        self.ttl = ttl
        self.receive_buffer = receive_buffer  # bytes of UDP receive buffer, for bursts of questions
        self.zone = self._load_zone(zone)
        self._want_tls = tls
        self._want_doh = doh
        self.counts: Counter[str] = Counter()  # "udp", "tcp", "tls", "doh" -> queries received
        self.questions: list[tuple[str, str, str]] = []  # (transport, qname, qtype)
        self.port = 0
        self.tls_port = 0
        self.doh_port = 0
        self.ca: Any = None  # trustme.CA when tls or doh
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._httpd: http.server.ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ public helpers

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: a resolver spec for UDP with TCP fallback."""
        return f"127.0.0.1:{self.port}"

    @property
    def tcp_address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def tls_address(self) -> str:
        return f"tls://127.0.0.1:{self.tls_port}"

    @property
    def doh_url(self) -> str:
        return f"https://127.0.0.1:{self.doh_port}/dns-query"

    @property
    def queries(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    @property
    def tcp_queries(self) -> int:
        with self._lock:
            return self.counts["tcp"]

    @property
    def udp_queries(self) -> int:
        with self._lock:
            return self.counts["udp"]

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA only (for tls:// and https://)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and hostname
        self.ca.configure_trust(ctx)
        return ctx

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        try:
            self._bind_udp_tcp()
            if self._want_tls or self._want_doh:
                import trustme

                self.ca = trustme.CA()
                self._server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._server_ctx)
            if self._want_tls:
                tls_sock = socket.create_server(("127.0.0.1", 0))
                tls_sock.settimeout(_POLL)
                self._sockets.append(tls_sock)
                self.tls_port = tls_sock.getsockname()[1]
                self._spawn(self._accept_loop, tls_sock, "tls")
            if self._want_doh:
                self._start_doh()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop every thread (they poll the stop event), then close the sockets they used."""
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
        for _ in range(2):  # the second pass joins connection threads the accept loops started last
            with self._lock:
                threads = list(self._threads)
            for thread in threads:
                thread.join(_JOIN_TIMEOUT)
        for sock in self._sockets:
            sock.close()
        if self._httpd is not None:
            self._httpd.server_close()
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"FakeDnsServer threads did not stop: {alive}"

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"fake-dns-{target.__name__}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _bind_udp_tcp(self) -> None:
        """Bind TCP on an ephemeral port, then UDP on the same number (retry if UDP's is taken)."""
        for _ in range(50):
            tcp = socket.create_server(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind(("127.0.0.1", port))
            except OSError as exc:
                tcp.close()
                udp.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            if self.receive_buffer:
                # FORCE passes net.core.rmem_max (we run as root); plain RCVBUF is capped by it
                option = getattr(socket, "SO_RCVBUFFORCE", socket.SO_RCVBUF)
                try:
                    udp.setsockopt(socket.SOL_SOCKET, option, self.receive_buffer)
                except PermissionError:
                    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            udp.settimeout(_POLL)
            tcp.settimeout(_POLL)
            self._sockets += [tcp, udp]
            self.port = port
            self._spawn(self._udp_loop, udp)
            self._spawn(self._accept_loop, tcp, "tcp")
            return
        raise RuntimeError("no free port for both UDP and TCP")

    # ------------------------------------------------------------------ transports

    def _udp_loop(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self.handle(wire, "udp")
            if answer is not None:
                try:
                    sock.sendto(answer, peer)
                except OSError:
                    pass

    def _accept_loop(self, listener: socket.socket, transport: str) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._stream_conn, conn, transport)

    def _stream_conn(self, conn: socket.socket, transport: str) -> None:
        """Serve length-prefixed queries on one TCP (or TLS) connection until it closes."""
        conn.settimeout(_POLL)
        try:
            if transport == "tls":
                conn = self._tls_handshake(conn)
            while not self._stop.is_set():
                header = self._recv_exact(conn, 2)
                if header is None:
                    return
                wire = self._recv_exact(conn, struct.unpack("!H", header)[0])
                if wire is None:
                    return
                answer = self.handle(wire, transport)
                if answer is not None:
                    conn.settimeout(_JOIN_TIMEOUT)
                    conn.sendall(struct.pack("!H", len(answer)) + answer)
                    conn.settimeout(_POLL)
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def _tls_handshake(self, conn: socket.socket) -> ssl.SSLSocket:
        tls = self._server_ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        try:
            tls.settimeout(_JOIN_TIMEOUT)
            tls.do_handshake()
            tls.settimeout(_POLL)
        except BaseException:
            tls.close()
            raise
        return tls

    def _recv_exact(self, conn: socket.socket, size: int) -> bytes | None:
        """Read ``size`` bytes, polling so a stop request ends the thread; None on EOF or stop."""
        data = b""
        while len(data) < size:
            if self._stop.is_set():
                return None
            try:
                chunk = conn.recv(size - len(data))
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            if not chunk:
                return None
            data += chunk
        return data

    def _start_doh(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = _JOIN_TIMEOUT

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if urllib.parse.urlsplit(self.path).path != "/dns-query":
                    self.send_error(404)
                    return
                self._answer(body)

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                raw = query.get("dns", [""])[0]
                self._answer(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))

            def _answer(self, wire: bytes) -> None:
                answer = server.handle(wire, "doh")
                if answer is None and server.mode == "silent":  # hold the request until the server stops
                    server._stop.wait(_JOIN_TIMEOUT)
                    return
                if answer is None:
                    self.send_error(400, "not a DNS query")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/dns-message")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        class TlsHTTPServer(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                """Handshake in the request's own thread, so a stalled client blocks nobody else."""
                request.settimeout(_JOIN_TIMEOUT)
                try:
                    tls = server._server_ctx.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    return
                try:
                    super().finish_request(tls, client_address)
                finally:
                    tls.close()

        httpd = TlsHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd = httpd
        self.doh_port = httpd.server_address[1]
        self._spawn(httpd.serve_forever, _POLL)

    # ------------------------------------------------------------------ answering

    def _load_zone(
        self, zone: Mapping[str, Mapping[str, Sequence[str]]]
    ) -> dict[dns.name.Name, dict[str, list[dns.rdata.Rdata]]]:
        loaded: dict[dns.name.Name, dict[str, list[dns.rdata.Rdata]]] = {}
        for name, types in zone.items():
            owner = dns.name.from_text(name).canonicalize()
            loaded[owner] = {}
            for rdtype, values in types.items():
                kind = rdtype.upper()
                loaded[owner][kind] = [
                    _txt(v)
                    if kind == "TXT"
                    else dns.rdata.from_text(dns.rdataclass.IN, kind, v, origin=dns.name.root, relativize=False)
                    for v in values
                ]
        return loaded

    def _soa(self, qname: dns.name.Name) -> dns.rrset.RRset:
        """A made-up SOA at the name's top-level domain, for negative answers."""
        apex = dns.name.Name(qname.labels[-2:]) if len(qname.labels) >= 2 else dns.name.root
        return dns.rrset.from_text(
            apex, self.ttl, "IN", "SOA", f"ns.{apex.to_text()} hostmaster.{apex.to_text()} 1 3600 600 86400 60"
        )

    def handle(self, wire: bytes, transport: str) -> bytes | None:
        """Answer one query in wire format; None means stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        question = query.question[0] if query.question else None
        with self._lock:
            self.counts[transport] += 1
            if question is not None:
                self.questions.append((transport, question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        if self.mode == "silent" or question is None:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if self.mode == "refused":
            response.set_rcode(dns.rcode.REFUSED)
        elif self.mode == "servfail" or question.name.canonicalize() in self.servfail_names:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif transport == "udp" and self.truncate_udp:
            response.flags |= dns.flags.TC
        else:
            self._fill(response, question.name, dns.rdatatype.to_text(question.rdtype))
        return response.to_wire()

    def _fill(self, response: dns.message.Message, qname: dns.name.Name, qtype: str) -> None:
        """Answer from the zone, following CNAMEs inside it as an authoritative server would."""
        name = qname
        for _ in range(8):
            node = self.zone.get(name.canonicalize())
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                response.authority.append(self._soa(name))
                return
            if qtype in node:
                response.answer.append(dns.rrset.from_rdata_list(name, self.ttl, node[qtype]))
                return
            if "CNAME" in node:
                response.answer.append(dns.rrset.from_rdata_list(name, self.ttl, node["CNAME"]))
                name = node["CNAME"][0].target  # type: ignore[attr-defined]
                continue
            response.authority.append(self._soa(name))  # NODATA
            return
