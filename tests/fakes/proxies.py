"""Real proxies on loopback for the proxy tests: Debian's tinyproxy (HTTP CONNECT) and dante (SOCKS5).

Each runs in the foreground from a config file written per test into a temporary folder, on a
free loopback port, in its own session; it is stopped by the process group of the PID we started
(dante forks helpers) and waited for. A test skips when the binary is missing
(``apt-get install tinyproxy dante-server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.tcp_servers import free_port


@dataclass(frozen=True)
class RunningProxy:
    url: str
    port: int
    log: Path


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
        )
        if found:
            return found
    pytest.skip(f"{names[0]} is not installed (apt-get install tinyproxy dante-server)")


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the proxy exited with {process.returncode}: {log.read_text(errors='replace')[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the proxy did not listen on 127.0.0.1:{port}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # our own session: the PID we started leads the group
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextmanager
def _run(argv: list[str], port: int, folder: Path, log: Path) -> Iterator[None]:
    with open(folder / "stdout.log", "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
    try:
        _wait_listening(port, process, log)
        yield
    finally:
        _stop(process)


@contextmanager
def tinyproxy(*, allow: str = "127.0.0.1") -> Iterator[RunningProxy]:
    """tinyproxy answering CONNECT for clients from ``allow`` (another address: it refuses us, 403)."""
    binary = _binary("tinyproxy")
    with tempfile.TemporaryDirectory(prefix="autoglm-tinyproxy-") as tmp:
        folder = Path(tmp)
        port = free_port()
        log = folder / "tinyproxy.log"
        (folder / "tinyproxy.conf").write_text(
            f'Port {port}\nListen 127.0.0.1\nTimeout 10\nMaxClients 50\nLogLevel Info\nLogFile "{log}"\n'
            f'PidFile "{folder / "tinyproxy.pid"}"\nAllow {allow}\n'
        )
        with _run([binary, "-d", "-c", str(folder / "tinyproxy.conf")], port, folder, log):
            yield RunningProxy(f"http://127.0.0.1:{port}", port, log)


@contextmanager
def dante() -> Iterator[RunningProxy]:
    """dante's danted as a SOCKS5 server without authentication, connecting only to loopback."""
    binary = _binary("danted", "sockd")
    with tempfile.TemporaryDirectory(prefix="autoglm-dante-") as tmp:
        folder = Path(tmp)
        port = free_port()
        log = folder / "danted.log"
        (folder / "danted.conf").write_text(
            f"logoutput: {log}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n"
            "socksmethod: none\nclientmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n"
            "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
            "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }\n"
            "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n"
        )
        with _run([binary, "-f", str(folder / "danted.conf"), "-p", str(folder / "danted.pid")], port, folder, log):
            yield RunningProxy(f"socks5://127.0.0.1:{port}", port, log)
