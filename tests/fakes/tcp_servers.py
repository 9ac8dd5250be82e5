"""Loopback TCP peers for probe tests: open, refused, and accepts-but-never-speaks.

Real sockets on 127.0.0.1 / ::1 only. Each listener runs one background thread
that polls with a short timeout, so it stops promptly and a forgotten one cannot
outlive ``max_seconds``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "HAS_IPV6_LOOPBACK",
    "Listener",
    "free_port",
    "refused_port",
    "silent_listener",
    "tcp_listener",
]


def _ipv6_loopback_available() -> bool:
    """Whether ::1 can be bound here (containers often run with IPv6 disabled)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


#: True when tests can use ::1.
HAS_IPV6_LOOPBACK: bool = _ipv6_loopback_available()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, so a connect gets RST (``refused``).

    The kernel picks it and the socket is closed again; another process could
    take it in between. Use :func:`refused_port` when that race matters.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port held bound but not listening: connects get RST and nobody else can take it."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


@dataclass
class Listener:
    """A running loopback listener; ``accepted`` counts the connections it took."""

    host: str
    port: int
    accepted: int = 0
    _held: list[socket.socket] = field(default_factory=list, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


def _serve(server: socket.socket, listener: Listener, stop: threading.Event, hold: bool, max_seconds: float) -> None:
    """Accept until stopped; close each connection at once, or hold it open silently."""
    deadline = time.monotonic() + max_seconds
    with selectors.DefaultSelector() as sel:
        sel.register(server, selectors.EVENT_READ)
        while not stop.is_set() and time.monotonic() < deadline:
            if not sel.select(timeout=0.05):
                continue
            for _ in range(256):  # drain the backlog, bounded per wake-up
                try:
                    conn, _peer = server.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    return
                listener.accepted += 1
                if hold:
                    listener._held.append(conn)
                else:
                    conn.close()


@contextlib.contextmanager
def _listening(host: str, *, hold: bool, backlog: int, max_seconds: float) -> Iterator[Listener]:
    server = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, 0))
        server.listen(backlog)
        server.setblocking(False)
        listener = Listener(host, int(server.getsockname()[1]))
        stop = threading.Event()
        thread = threading.Thread(
            target=_serve, args=(server, listener, stop, hold, max_seconds), name=f"listener-{host}", daemon=True
        )
        thread.start()
        try:
            yield listener
        finally:
            stop.set()
            thread.join(timeout=2)
            for conn in listener._held:
                conn.close()
            listener._held.clear()
    finally:
        server.close()


def tcp_listener(
    host: str = "127.0.0.1", *, backlog: int = 1024, max_seconds: float = 600
) -> contextlib.AbstractContextManager[Listener]:
    """An ``open`` port on ``host`` (127.0.0.1 or ::1): accepts and closes each connection."""
    return _listening(host, hold=False, backlog=backlog, max_seconds=max_seconds)


def silent_listener(
    host: str = "127.0.0.1", *, backlog: int = 1024, max_seconds: float = 600
) -> contextlib.AbstractContextManager[Listener]:
    """Accepts and never speaks: the handshake completes, then nothing (for TLS/HTTP deadlines)."""
    return _listening(host, hold=True, backlog=backlog, max_seconds=max_seconds)
