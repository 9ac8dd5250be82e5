"""Real HTTP servers on loopback for the http and cors probe tests.

- ``UvicornServer``: a Starlette app under uvicorn (optionally HTTPS with a trustme
  certificate, optionally requiring a client certificate); ``basic_app`` and
  ``cors_app`` are the apps the tests use.
- ``RawHttpServer``: a hand-written asyncio server that misbehaves on purpose (silent,
  trickling, huge bodies, garbage, resets), and acts as a tiny forward proxy.
- ``unused_port`` and ``filtered_port``: a port that refuses and one that drops SYNs.

Everything listens on loopback, on port 0 (the kernel picks), in daemon threads, and
stops with bounded joins. Needs ``starlette`` and ``uvicorn``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

JOIN_TIMEOUT = 5.0
ALLOWED_ORIGIN = "https://app.example.com"
SECRET_TOKEN = "s3cret-token-value"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _listen(host: str, backlog: int = 128) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(backlog)
    return sock


# --------------------------------------------------------------------------- uvicorn


class UvicornServer:
    """An ASGI app served by uvicorn in a thread; a context manager."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        cert: trustme.LeafCert | None = None,
        client_ca: trustme.CA | None = None,
    ) -> None:
        self.host = host
        self._sock = _listen(host)
        self.port: int = self._sock.getsockname()[1]
        self.scheme = "https" if cert else "http"
        self._tmp = tempfile.TemporaryDirectory(prefix="autoglm-uvicorn-")
        ssl_kwargs: dict[str, Any] = {}
        if cert is not None:
            chain = Path(self._tmp.name) / "server.pem"
            cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
            ssl_kwargs["ssl_certfile"] = str(chain)
        if client_ca is not None:
            ca_file = Path(self._tmp.name) / "client-ca.pem"
            client_ca.cert_pem.write_to_path(str(ca_file))
            ssl_kwargs.update(ssl_ca_certs=str(ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            log_level="critical",
            access_log=False,
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=1,
            **ssl_kwargs,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"uvicorn-{self.port}", daemon=True
        )

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"{self.scheme}://{_url_host(host or self.host)}:{self.port}{path}"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(JOIN_TIMEOUT)
        if self._thread.is_alive():  # connections still open after the graceful timeout
            self._server.force_exit = True
            self._thread.join(JOIN_TIMEOUT)
        self._sock.close()
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- apps


async def _ok(request: Request) -> Response:
    return JSONResponse({"status": "ok", "service": {"name": "api", "version": 3}, "tags": ["a", "b"]})


async def _status(request: Request) -> Response:
    code = int(request.path_params["code"])
    return PlainTextResponse(f"status {code}", status_code=code)


async def _auth(request: Request) -> Response:
    if request.headers.get("authorization") == f"Bearer {SECRET_TOKEN}":
        return PlainTextResponse("welcome")
    return PlainTextResponse("who are you?", status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("delay", "0.5")))
    return PlainTextResponse("finally")


async def _redirect(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=int(request.query_params.get("code", "302")))


async def _loop(request: Request) -> Response:
    return RedirectResponse("/loop", status_code=302)


async def _echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "host": request.headers.get("host"),
            "authorization": request.headers.get("authorization"),
            "headers": dict(request.headers),
        }
    )


def basic_app() -> Starlette:
    """Plain endpoints: /ok (JSON), /status/{code}, /auth (Bearer SECRET_TOKEN), /slow?delay=,
    /redirect?to=&code=, /loop (redirects to itself), /echo (the request as JSON)."""
    return Starlette(
        routes=[
            Route("/ok", _ok),
            Route("/status/{code:int}", _status, methods=ALL_METHODS),
            Route("/auth", _auth),
            Route("/slow", _slow),
            Route("/redirect", _redirect, methods=ALL_METHODS),
            Route("/loop", _loop),
            Route("/echo", _echo, methods=ALL_METHODS),
        ]
    )


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("hello")(scope, receive, send)


async def _hand_written(request: Request) -> Response:
    """CORS headers taken from the query: acao ($origin echoes), acac, acam, acah, vary,
    pstatus (preflight status, default 204), status (actual status, default 200)."""
    q = request.query_params
    origin = request.headers.get("origin", "")
    preflight = request.method == "OPTIONS" and "access-control-request-method" in request.headers
    headers: dict[str, str] = {}
    if "acao" in q:
        headers["Access-Control-Allow-Origin"] = origin if q["acao"] == "$origin" else q["acao"]
    for key, name in (("acac", "Credentials"), ("vary", None)):
        if key in q:
            headers[f"Access-Control-Allow-{name}" if name else "Vary"] = q[key]
    if preflight:
        for key, name in (("acam", "Methods"), ("acah", "Headers")):
            if key in q:
                headers[f"Access-Control-Allow-{name}"] = q[key]
        return Response(status_code=int(q.get("pstatus", "204")), headers=headers)
    return PlainTextResponse("hand-written", status_code=int(q.get("status", "200")), headers=headers)


async def _plain(request: Request) -> Response:
    return PlainTextResponse("no CORS here")


def cors_app() -> Starlette:
    """Starlette's CORSMiddleware in several configurations, plus hand-written answers.

    Allowed origin everywhere: ``ALLOWED_ORIGIN``. Mounts:
    /strict (list, credentials, GET/POST/PUT, Authorization + X-Api-Key),
    /nocreds (list, no credentials, GET/POST, X-Api-Key), /suffix and /prefix (regexes
    too loose), /public (``*`` everything), /any-credentials (``*`` + credentials:
    Starlette then reflects every origin), /null (allows ``null``). /hand answers with the
    CORS headers its query asks for; /plain has no CORS at all.
    """
    strict = CORSMiddleware(
        _hello,
        allow_origins=[ALLOWED_ORIGIN],
        allow_methods=["GET", "POST", "PUT"],
        allow_headers=["Authorization", "X-Api-Key"],
        allow_credentials=True,
    )
    nocreds = CORSMiddleware(
        _hello, allow_origins=[ALLOWED_ORIGIN], allow_methods=["GET", "POST"], allow_headers=["X-Api-Key"]
    )
    suffix = CORSMiddleware(_hello, allow_origin_regex=r"https://app\.example\.com.*", allow_methods=["GET", "PUT"])
    prefix = CORSMiddleware(_hello, allow_origin_regex=r"https://.*example\.com")
    public = CORSMiddleware(_hello, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    any_credentials = CORSMiddleware(_hello, allow_origins=["*"], allow_credentials=True)
    null = CORSMiddleware(_hello, allow_origins=[ALLOWED_ORIGIN, "null"])
    return Starlette(
        routes=[
            Mount("/strict", app=strict),
            Mount("/nocreds", app=nocreds),
            Mount("/suffix", app=suffix),
            Mount("/prefix", app=prefix),
            Mount("/public", app=public),
            Mount("/any-credentials", app=any_credentials),
            Mount("/null", app=null),
            Route("/hand", _hand_written, methods=ALL_METHODS),
            Route("/plain", _plain),
        ]
    )


# --------------------------------------------------------------------------- raw server


class RawHttpServer:
    """An asyncio server that breaks HTTP on purpose, chosen by the request path.

    /ok            a small, correct 200
    /silent        reads the request, never answers
    /close         reads the request, closes without answering
    /garbage       answers with bytes that are not HTTP
    /trickle-body  headers at once, then the body one byte a second
    /trickle-head  the status line and headers one byte a second
    /huge          Content-Length of 10 GB, streamed as fast as the client reads
    /reset         Content-Length 1000, 100 bytes, then a TCP RST

    A request in absolute form (``GET http://...``) or a ``CONNECT`` makes it a forward
    proxy: absolute-form requests are answered here ("proxied ..."), CONNECT tunnels to
    loopback targets only. With ``proxy_auth`` set, requests without that exact
    ``Proxy-Authorization`` get 407. A TLS ClientHello never completes a request head, so
    an ``https://`` URL to this server hangs in the TLS handshake. ``requests`` records
    each request line with its headers.
    """

    def __init__(self, host: str = "127.0.0.1", *, proxy_auth: str | None = None) -> None:
        self.host = host
        self.proxy_auth = proxy_auth
        self._sock = _listen(host)
        self.port: int = self._sock.getsockname()[1]
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self._run, name=f"raw-http-{self.port}", daemon=True)

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://{_url_host(self.host)}:{self.port}{path}"

    @property
    def proxy_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("raw HTTP server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(JOIN_TIMEOUT)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, sock=self._sock)
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except asyncio.CancelledError:  # stop(): end quietly (asyncio logs cancelled handler tasks)
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        self.requests.append((f"{method} {target}", headers))
        if method == "CONNECT" or target.startswith("http://"):
            await self._proxy(method, target, headers, reader, writer)
            return
        path = target.split("?", 1)[0]
        if path == "/silent":
            await asyncio.sleep(3600)
        elif path == "/close":
            return
        elif path == "/garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\nthis is not HTTP at all\r\n\r\n")
            await writer.drain()
        elif path == "/trickle-body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            await self._trickle(writer, b"x" * 100000)
        elif path == "/trickle-head":
            await self._trickle(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        elif path == "/huge":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000000000\r\n\r\n")
            chunk = b"x" * 65536
            while True:
                writer.write(chunk)
                await writer.drain()
        elif path == "/reset":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"y" * 100)
            await writer.drain()
            await asyncio.sleep(0.05)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nraw okay")
            await writer.drain()

    @staticmethod
    async def _trickle(writer: asyncio.StreamWriter, data: bytes) -> None:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(1)

    async def _proxy(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if self.proxy_auth is not None and headers.get("proxy-authorization") != self.proxy_auth:
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="lab"\r\nContent-Length: 0\r\n\r\n'
            )
            await writer.drain()
            return
        if method != "CONNECT":
            body = f"proxied {method} {target}".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nX-Proxied: raw\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            return
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if not ipaddress.ip_address(host).is_loopback:  # tests stay on loopback, whatever they ask
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()


# --------------------------------------------------------------------------- ports


def unused_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (the kernel answers RST): bound, then released."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.bind((host, 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@contextlib.contextmanager
def filtered_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port whose SYNs go unanswered, like a firewall drop, without a firewall.

    A listener with backlog 0 that never accepts: once its accept queue holds a
    connection, the kernel drops further SYNs.
    """
    listener = _listen(host, backlog=0)
    port: int = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket(_family(host), socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, port))
            fillers.append(filler)
        time.sleep(0.1)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
