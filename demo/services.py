"""The demo environment: a self-hosted "Open-AutoGLM" model service as an ops team runs it, on loopback.

- a DNS server for the zone ``autoglm.demo`` (dnspython, UDP and TCP) on 127.0.0.1:25353;
- the model API (plain HTTP) on 127.0.0.1:28000: ``/health``, ``/v1/models`` (needs the API
  key), ``/v1/chat/completions`` with a CORS policy for the web app's origin (a POST with
  ``"stream": true`` streams the answer as Server-Sent Events, ending with ``data: [DONE]``);
- a TLS front on 127.0.0.1:28443 with a certificate from a local test CA that expires in 10 days.

Everything binds 127.0.0.1 only: the "listens on all interfaces" check against 127.0.0.2 fails
on purpose. Certificates are made at start-up with ``cryptography``; nothing leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Fixed, so the inventory can name them; below Linux's ephemeral range (32768-60999), where an
# outgoing connection or UDP socket of any program could hold the port for a moment.
DNS_PORT = 25353
API_PORT = 28000
TLS_PORT = 28443
API_KEY_ENV = "AUTOGLM_DEMO_API_KEY"
WEB_APP_ORIGIN = "https://chat.autoglm.demo"

ZONE: dict[str, dict[str, list[str]]] = {
    "api.autoglm.demo.": {"A": ["127.0.0.1"], "TXT": ["service=open-autoglm"]},
    "chat.autoglm.demo.": {"A": ["127.0.0.1"]},
    "lan.autoglm.demo.": {"A": ["127.0.0.2"]},  # the host's LAN address in this lab
    "autoglm.demo.": {"MX": ["10 mail.autoglm.demo."], "NS": ["ns1.autoglm.demo."]},
}


# -- DNS ---------------------------------------------------------------------------------------------------------


def _answer(wire: bytes) -> bytes | None:
    try:
        query = dns.message.from_wire(wire)
    except Exception:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    records = ZONE.get(question.name.to_text().lower())
    if records is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    else:
        kind = dns.rdatatype.to_text(question.rdtype)
        values = records.get(kind, [])
        if values:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", kind, _quoted(kind, values)))
    return response.to_wire()


def _quoted(kind: str, values: list[str]) -> list[str]:
    return [f'"{v}"' for v in values] if kind == "TXT" else values


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = _answer(data)
        if reply:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.StreamRequestHandler):
    timeout = 5

    def handle(self) -> None:
        length = int.from_bytes(self.rfile.read(2), "big")
        reply = _answer(self.rfile.read(length))
        if reply:
            self.wfile.write(len(reply).to_bytes(2, "big") + reply)


class _ThreadingUdp(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True


class _ThreadingTcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


# -- HTTP --------------------------------------------------------------------------------------------------------


class _ApiHandler(BaseHTTPRequestHandler):
    """The model API. CORS: only the production web app may call it (the dev origin was forgotten)."""

    server_version = "open-autoglm/0.9"
    api_key = ""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, object], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _cors(self) -> dict[str, str]:
        origin = self.headers.get("Origin")
        if origin == WEB_APP_ORIGIN:
            return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
        return {"Vary": "Origin"}

    def do_OPTIONS(self) -> None:
        headers = self._cors()
        if "Access-Control-Allow-Origin" in headers:
            headers.update(
                {
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                    "Access-Control-Max-Age": "600",
                }
            )
        self.send_response(204)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"status": "ok", "model": "autoglm-phone-9b"}, self._cors())
        elif self.path in ("/v1/models", "/v1/chat/completions"):
            if self.headers.get("Authorization") != f"Bearer {self.api_key}":
                self._send(401, {"error": "missing or wrong API key"}, {**self._cors(), "WWW-Authenticate": "Bearer"})
            else:
                self._send(200, {"data": [{"id": "autoglm-phone-9b"}]}, self._cors())
        else:
            self._send(404, {"error": "not found"}, self._cors())

    def do_POST(self) -> None:
        """An OpenAI-compatible chat completion; streamed word by word when asked, as vLLM does."""
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": "not found"}, self._cors())
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            payload = None
        if self.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._send(401, {"error": "missing or wrong API key"}, {**self._cors(), "WWW-Authenticate": "Bearer"})
            return
        if not isinstance(payload, dict) or not payload.get("messages"):
            self._send(400, {"error": "messages is required"}, self._cors())
            return
        words = "Opening the settings app now.".split()
        if not payload.get("stream"):
            self._send(200, {"object": "chat.completion", "choices": [{"message": {"content": " ".join(words)}}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for key, value in self._cors().items():
            self.send_header(key, value)
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        for word in words:
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": word + " "}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.02)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


# -- certificates ------------------------------------------------------------------------------------------------


def make_certificates(folder: Path, *, days_left: int = 10) -> tuple[Path, Path]:
    """A local CA (written to ``folder/ca.pem``) and a server chain+key for api.autoglm.demo."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Open-AutoGLM demo CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.autoglm.demo")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=80))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("api.autoglm.demo")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_path = folder / "server.pem"
    server_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + leaf.public_bytes(serialization.Encoding.PEM)
    )
    return ca_path, server_path


# -- the environment ---------------------------------------------------------------------------------------------


class DemoEnvironment:
    """Starts every demo service in background threads; ``with DemoEnvironment(folder, key):``."""

    def __init__(self, cert_folder: Path, api_key: str) -> None:
        self.cert_folder = cert_folder
        self.api_key = api_key
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        _, server_pem = make_certificates(self.cert_folder)
        handler = type("DemoApiHandler", (_ApiHandler,), {"api_key": self.api_key})
        try:
            self._serve(_ThreadingUdp(("127.0.0.1", DNS_PORT), _UdpHandler))
            self._serve(_ThreadingTcp(("127.0.0.1", DNS_PORT), _TcpHandler))
            self._serve(ThreadingHTTPServer(("127.0.0.1", API_PORT), handler))
            tls_server = ThreadingHTTPServer(("127.0.0.1", TLS_PORT), handler)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(server_pem))
            tls_server.socket = context.wrap_socket(tls_server.socket, server_side=True)
            self._serve(tls_server)
        except OSError as exc:
            self.__exit__(None, None, None)
            raise SystemExit(
                f"demo: cannot bind a demo port ({exc.strerror}); ports {DNS_PORT}, {API_PORT} and {TLS_PORT} on 127.0.0.1 must be free"
            ) from None
        return self

    def _serve(self, server: socketserver.BaseServer) -> None:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0
