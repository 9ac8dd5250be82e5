"""The demo's second vantage: the model server inside a network namespace, seen from the server itself
and from this machine, to show the guide's most common mistake (issue 17).

The namespace ``autoglm-demo`` stands for the model server's host. A veth pair joins it to this
machine (``198.19.255.253`` here, ``198.19.255.254`` there: the last /30 of the RFC 2544
benchmarking range, which the test labs fill from the bottom). Inside it run two real HTTP
servers: the API bound to ``127.0.0.1:28100`` (the mistake: ``SERVER_HOST=127.0.0.1``) and the
same API bound to ``0.0.0.0:28101`` (the fix). The namespace has no default route, so nothing in
it reaches anything but its loopback and the pair.

Seen from ``server`` (a Python in the namespace, an execnet gateway) both ports are open on
127.0.0.1; seen from ``local`` (this process) the loopback-bound one is refused, and the report
says why. Needs root, ``ip`` and Linux; otherwise :func:`prerequisites` says why the demo skips it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

NAMESPACE = "autoglm-demo"
HOST_SIDE = "198.19.255.253"
SERVER_SIDE = "198.19.255.254"
LOOPBACK_PORT = 28100  # the mistake: bound to 127.0.0.1
ALL_PORT = 28101  # the fix: bound to 0.0.0.0
_VETH = ("agdemo0", "agdemo1")
_CMD_TIMEOUT = 10.0
_READY_TIMEOUT = 10.0

#: One tiny HTTP server per port, run inside the namespace (``python -c``); answers /health.
_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
HTTPServer((sys.argv[1], int(sys.argv[2])), Health).serve_forever()
"""


def prerequisites() -> str | None:
    """Why the second vantage cannot be built here, or None when it can."""
    if sys.platform != "linux":
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "building a network namespace needs root (run the demo as root to see it)"
    if shutil.which("ip") is None:
        return "the 'ip' command is missing (apt-get install -y iproute2)"
    return None


class LabUnavailable(RuntimeError):
    """A command that builds the namespace failed: the demo says so and skips this part."""


def _run(*argv: str, check: bool = True) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_CMD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabUnavailable(f"{' '.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise LabUnavailable(f"{' '.join(argv)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")


class ServerNamespace:
    """``with ServerNamespace() as lab:`` the namespace, its veth pair and its two servers; all undone on exit."""

    def __init__(self) -> None:
        self._servers: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Self:
        self._remove()  # a namespace of this name left by a demo that was killed
        try:
            _run("ip", "netns", "add", NAMESPACE)
            _run("ip", "link", "add", _VETH[0], "type", "veth", "peer", "name", _VETH[1])
            _run("ip", "link", "set", _VETH[1], "netns", NAMESPACE)
            _run("ip", "addr", "add", f"{HOST_SIDE}/30", "dev", _VETH[0])
            _run("ip", "link", "set", _VETH[0], "up")
            inside = ("ip", "netns", "exec", NAMESPACE)
            _run(*inside, "ip", "addr", "add", f"{SERVER_SIDE}/30", "dev", _VETH[1])
            _run(*inside, "ip", "link", "set", _VETH[1], "up")
            _run(*inside, "ip", "link", "set", "lo", "up")
            for bind, port in (("127.0.0.1", LOOPBACK_PORT), ("0.0.0.0", ALL_PORT)):
                self._servers.append(
                    subprocess.Popen(
                        [*inside, sys.executable, "-c", _SERVER, bind, str(port)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        """Until both servers listen (``ss`` inside the namespace), bounded."""
        deadline = time.monotonic() + _READY_TIMEOUT
        wanted = {f"127.0.0.1:{LOOPBACK_PORT}", f"0.0.0.0:{ALL_PORT}"}
        while time.monotonic() < deadline:
            if any(server.poll() is not None for server in self._servers):
                raise LabUnavailable("a demo server in the namespace exited at start")
            proc = subprocess.run(
                ["ip", "netns", "exec", NAMESPACE, "ss", "-ltnH"],
                check=False,
                capture_output=True,
                text=True,
                timeout=_CMD_TIMEOUT,
            )
            listening = {line.split()[3] for line in proc.stdout.splitlines() if len(line.split()) > 3}
            if wanted <= listening:
                return
            time.sleep(0.05)
        raise LabUnavailable(f"the demo servers in the namespace did not listen within {_READY_TIMEOUT:.0f}s")

    def vantage_spec(self, python: str = sys.executable) -> str:
        """The execnet gateway spec of a Python inside the namespace (the ``server`` vantage)."""
        return f"popen//python=ip netns exec {NAMESPACE} {python}"

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for server in self._servers:  # only the processes this lab started, by their handle
            server.terminate()
        for server in self._servers:
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
        self._servers.clear()
        self._remove()

    @staticmethod
    def _remove() -> None:
        _run("ip", "link", "del", _VETH[0], check=False)
        if Path(f"/run/netns/{NAMESPACE}").exists():
            _run("ip", "netns", "del", NAMESPACE, check=False)
