"""Real daemons for the interop suite: nginx, nsd and unbound in the foreground, on loopback.

Each daemon is a child process of the test session, started with a config file
written into a temporary folder (pid file, logs and state there too, never under
/etc or /var), on free loopback ports picked at run time, and stopped by its
PID at the end. Nothing here binds port 53, 80 or 443 of the host, and no
daemon is configured to talk to anything but 127.0.0.1:

- nsd answers only from the zones written here (it is authoritative for the
  root zone too, so every name outside them is NXDOMAIN);
- unbound has stub zones for ``interop.test.`` and for ``.`` that both point at
  that nsd, so even the name server names it must look up on its own end
  there, and ``outgoing-interface: 127.0.0.1`` makes the kernel refuse any
  packet to another address; no root hints, no trust anchor, iterator only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

__all__ = [
    "Daemon",
    "DaemonFailed",
    "SlowUpstream",
    "free_ports",
    "missing_tool",
    "start_with_fresh_ports",
    "tcp_answers",
]

LOOPBACK = "127.0.0.1"
_FORBIDDEN_PORTS = frozenset({53, 80, 443, 853})


class DaemonFailed(RuntimeError):
    """A daemon did not start or did not become ready; the message carries its log tail."""


def missing_tool(*tools: str) -> str | None:
    """Why the daemons cannot run here (not root, a tool missing), or None."""
    if os.geteuid() != 0:
        return "the interop daemons need root (nginx/nsd/unbound as a child process with our own config)"
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        hint = "scripts/test.sh installs them: apt-get install -y nginx nsd unbound dnsutils curl"
        return f"{', '.join(missing)} not installed ({hint})"
    return None


def free_ports(count: int, *, udp_too: bool = False) -> list[int]:
    """``count`` distinct loopback ports that are free now (TCP, and UDP when asked).

    The sockets are held until all ports are chosen, so one call never returns a
    port twice; a race with another process remains possible, which is why
    :func:`start_with_fresh_ports` retries a start with new ports.
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(count * 20):  # bounded: enough tries to find `count` usable ports
            if len(ports) == count:
                break
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            tcp.bind((LOOPBACK, 0))
            port = tcp.getsockname()[1]
            if port in _FORBIDDEN_PORTS or port in ports:
                continue
            if udp_too:
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(udp)
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(ports) != count:
        raise DaemonFailed(f"could not find {count} free loopback ports")
    return ports


@dataclass
class Daemon:
    """One foreground daemon: ``argv`` run with its output in ``log``; stop() ends it by PID."""

    name: str
    argv: Sequence[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    _log_handle: object = field(default=None, repr=False)

    def start(self) -> Daemon:
        handle = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self._log_handle = handle
        self.proc = subprocess.Popen(
            list(self.argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``probe`` (bounded in count and time) until it is true; fail with the log if the daemon died."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        for _ in range(2000):
            code = self.proc.poll()
            if code is not None:
                raise DaemonFailed(f"{self.name} exited with {code} before it was ready:\n{self.log_tail()}")
            if probe():
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        raise DaemonFailed(f"{self.name} not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM to our own child (by PID), SIGKILL if it lingers; then reap it. Safe twice."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        handle, self._log_handle = self._log_handle, None
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]


def tcp_answers(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def start_with_fresh_ports(start: Callable[[], Daemon], attempts: int = 3) -> Daemon:
    """Run ``start`` (which picks its own free ports) up to ``attempts`` times: another process may win a port race."""
    last: DaemonFailed | None = None
    for _ in range(attempts):
        try:
            return start()
        except DaemonFailed as exc:
            last = exc
    assert last is not None
    raise last


# --------------------------------------------------------------------------- a slow upstream for nginx


class _SlowHandler(BaseHTTPRequestHandler):
    delay: float = 1.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        body = b"slow but fine\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that gave up (timeout cases)
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class SlowUpstream:
    """A tiny HTTP server on loopback that answers every GET after ``delay`` seconds (nginx proxies to it)."""

    def __init__(self, delay: float) -> None:
        handler = type("Handler", (_SlowHandler,), {"delay": delay})
        self.server = ThreadingHTTPServer((LOOPBACK, 0), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
