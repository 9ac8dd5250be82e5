"""TCP and TLS checks through a proxy: a tunnel by HTTP CONNECT (``http://``) or SOCKS5 (``socks5://``).

A relay between networks answers for the target, so its words are translated here: what the
proxy says of the *target* (SOCKS5 "connection refused", an HTTP 504) becomes the tcp state the
target would have shown; what is the *proxy's* own fault (down, refusing us, asking for
credentials, forbidding the destination, speaking another protocol) is reason ``proxy``, never
blamed on the target. The tunnel ends with a connected non-blocking socket, the same thing
``probes.tcp.connect_socket`` gives, so the tcp judgement and the TLS handshake run over it
unchanged: the TLS probe finds the route in :data:`current_route` (set around one attempt).

The engine resolves the target's name itself and the tunnel is opened to that address (as for
the direct checks, every address is checked). The proxy's own name, if it is one, is resolved
with the system resolver.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import struct
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pytest_autoglm.core.records import Redact, Verdict, no_redaction
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.tcp import (
    LocalSocketError,
    PortState,
    connect_socket,
    describe_target,
    expectation_reason,
    is_ip_literal,
)

_MAX_REPLY = 16 * 1024

#: SOCKS5 reply codes (RFC 1928 6): the target's state, or None for the proxy's own refusal.
_SOCKS_REPLIES: dict[int, tuple[PortState | None, str]] = {
    1: (None, "general SOCKS server failure"),
    2: (None, "connection not allowed by the proxy's ruleset"),
    3: (PortState.UNREACHABLE, "network unreachable (from the proxy)"),
    4: (PortState.UNREACHABLE, "host unreachable (from the proxy)"),
    5: (PortState.REFUSED, "connection refused (RST, seen by the proxy)"),
    6: (PortState.FILTERED, "no answer (TTL expired at the proxy)"),
    7: (None, "command not supported by the proxy"),
    8: (None, "address type not supported by the proxy"),
}


class ProxyFault(Exception):
    """The proxy itself failed us (down, refused, asked for credentials, spoke another protocol)."""


class TargetState(Exception):
    """The proxy answered for the target: it is refused, filtered or unreachable from there."""

    def __init__(self, state: PortState, text: str) -> None:
        super().__init__(text)
        self.state = state
        self.text = text


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """A parsed ``proxy`` setting: ``http://[user:pass@]host:port`` or ``socks5://...``."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> ProxyRoute:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "socks5", "socks5h") or not parts.hostname:
            raise ValueError(f"tcp and tls checks go through http:// or socks5:// proxies, not {scheme or url!r}")
        default = 1080 if scheme.startswith("socks") else 8080
        return cls(
            "socks5" if scheme.startswith("socks") else "http",
            parts.hostname,
            parts.port or default,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def open(self, address: str, port: int, timeout: float) -> socket.socket:
        """A socket tunnelled to ``address:port``; raises :class:`ProxyFault` or :class:`TargetState`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        proxy_address = await _proxy_address(self.host, timeout)
        result = await connect_socket(proxy_address, self.port, timeout)
        if not isinstance(result, socket.socket):
            _state, text = result
            raise ProxyFault(f"cannot reach the proxy {self.display}: {text}")
        sock = result
        try:
            async with asyncio.timeout(max(deadline - loop.time(), 0.0)):
                if self.scheme == "http":
                    await self._connect_http(sock, address, port)
                else:
                    await self._connect_socks5(sock, address, port)
        except TimeoutError:
            sock.close()
            raise TargetState(
                PortState.FILTERED,
                f"no answer through the proxy {self.display} within {timeout:g}s (the target drops, or the proxy is slow)",
            ) from None
        except BaseException:
            sock.close()
            raise
        return sock

    async def _connect_http(self, sock: socket.socket, address: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        authority = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            lines.append(f"Proxy-Authorization: Basic {token}")
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = await loop.sock_recv(sock, 4096)
            if not data:
                raise ProxyFault(f"the proxy {self.display} closed the connection without answering CONNECT")
            reply += data
            if len(reply) > _MAX_REPLY:
                raise ProxyFault(f"the proxy {self.display} sent an oversized answer to CONNECT")
        status_line = reply.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProxyFault(f"the proxy {self.display} did not answer in HTTP ({status_line[:60]!r})")
        status = int(parts[1])
        said = f"{self.display} answered {status_line[len(parts[0]) + 1 :][:80]}"
        if 200 <= status < 300:
            return
        if status == 504:
            raise TargetState(PortState.FILTERED, f"no answer from the target: the proxy {said}")
        if status in (500, 502, 503):
            raise TargetState(PortState.REFUSED, f"the proxy could not connect to the target: {said}")
        raise ProxyFault(f"the proxy refused the tunnel: {said}")  # 403, 405, 407 ...

    async def _connect_socks5(self, sock: socket.socket, address: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        methods = b"\x00\x02" if self.username is not None else b"\x00"
        await loop.sock_sendall(sock, b"\x05" + bytes([len(methods)]) + methods)
        version, method = await _read_exactly(sock, 2, self.display)
        if version != 5:
            raise ProxyFault(f"the proxy {self.display} does not speak SOCKS5")
        if method == 0x02 and self.username is not None:
            user, password = self.username.encode(), (self.password or "").encode()
            await loop.sock_sendall(sock, b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
            _, status = await _read_exactly(sock, 2, self.display)
            if status != 0:
                raise ProxyFault(f"the proxy {self.display} rejected the username and password")
        elif method != 0x00:
            raise ProxyFault(f"the proxy {self.display} accepts none of our authentication methods")
        ip = ipaddress.ip_address(address.split("%", 1)[0]) if is_ip_literal(address) else None
        if ip is None:
            name = address.encode("idna")
            target = b"\x03" + bytes([len(name)]) + name
        else:
            target = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
        await loop.sock_sendall(sock, b"\x05\x01\x00" + target + struct.pack("!H", port))
        head = await _read_exactly(sock, 4, self.display)
        if head[0] != 5:
            raise ProxyFault(f"the proxy {self.display} sent a malformed SOCKS5 reply")
        if head[1] != 0:
            state, text = _SOCKS_REPLIES.get(head[1], (None, f"SOCKS5 reply code {head[1]}"))
            if state is None:
                raise ProxyFault(f"the proxy {self.display} refused the tunnel: {text}")
            raise TargetState(state, f"{text} via {self.display}")
        size = {1: 4, 4: 16}.get(head[3])
        if size is None:
            (length,) = await _read_exactly(sock, 1, self.display)
            size = length
        await _read_exactly(sock, size + 2, self.display)  # the bound address and port


#: The proxy an attempt's connections go through (set by the engine around a tls attempt).
current_route: ContextVar[ProxyRoute | None] = ContextVar("autoglm_proxy_route", default=None)


async def _read_exactly(sock: socket.socket, count: int, display: str) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < count:
        chunk = await loop.sock_recv(sock, count - len(data))
        if not chunk:
            raise ProxyFault(f"the proxy {display} closed the connection during the SOCKS5 exchange")
        data += chunk
    return data


async def _proxy_address(host: str, timeout: float) -> str:
    if is_ip_literal(host):
        return host
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise ProxyFault(f"the proxy's name {host} does not resolve: {exc}") from None
    return str(infos[0][4][0])


async def tunnel(route: ProxyRoute, address: str, port: int, timeout: float) -> socket.socket | tuple[Reason, str]:
    """For the TLS handshake: a tunnelled socket, or the reason (``proxy``, or the target's tcp reason) and text."""
    try:
        sock = await route.open(address, port, timeout)
    except ProxyFault as exc:
        return Reason.PROXY, str(exc)
    except TargetState as exc:
        return _STATE_REASONS[exc.state], exc.text
    except LocalSocketError as exc:
        return Reason.SETUP, str(exc.strerror)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


_STATE_REASONS = {
    PortState.REFUSED: Reason.REFUSED,
    PortState.FILTERED: Reason.FILTERED,
    PortState.UNREACHABLE: Reason.UNREACHABLE,
}


async def check_tcp_via_proxy(
    route: ProxyRoute,
    address: str,
    port: int,
    expect: str,
    timeout: float,
    *,
    host: str | None = None,
    redact: Redact = no_redaction,
) -> Verdict:
    """A ``tcp`` expectation judged through the proxy: what the proxy says of the target counts;
    the proxy's own failure is reason ``proxy`` (outcome failed, retried), whatever was expected."""
    where = f"{describe_target(address, port, host)} via {route.display}"
    details: dict[str, object] = {"port": port, "proxy": route.display}
    try:
        sock = await route.open(address, port, timeout)
    except ProxyFault as exc:
        return Verdict.fail(Layer.TCP, Reason.PROXY, redact(f"{where}: {exc}"), address=address, details=details)
    except TargetState as exc:
        state, text = exc.state, exc.text
    except LocalSocketError as exc:
        return Verdict.fail(Layer.TCP, Reason.SETUP, f"{where}: could not probe: {exc.strerror}", address=address)
    else:
        sock.close()
        state, text = PortState.OPEN, "open (the proxy connected)"
    details["state"] = state.value
    reason = expectation_reason(expect, state)
    message = redact(f"{where}: {text}; expected {expect}")
    if reason is None:
        return Verdict.ok(message, address=address, details=details)
    return Verdict.fail(Layer.TCP, reason, message, address=address, details=details)
