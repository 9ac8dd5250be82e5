"""Real local servers for the history tests: PostgreSQL, a webhook receiver, SMTP, a Pushgateway.

Each binds a free loopback port, is started by a fixture and stopped by its own handle (PID,
pg_ctl, server object): nothing here touches a system service.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- PostgreSQL


def postgres_unavailable() -> str | None:
    """Why a throwaway PostgreSQL server cannot be started here (None: it can)."""
    if os.geteuid() != 0:
        return "starting PostgreSQL as the postgres user needs root (runuser)"
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres system user (apt-get install postgresql)"
    if not shutil.which("runuser"):
        return "runuser not found"
    return None


@contextmanager
def postgres_server() -> Iterator[str]:
    """initdb in a temp dir as ``postgres``, started on a free loopback port; yields the admin URL."""
    user = pwd.getpwnam("postgres")
    base = Path(tempfile.mkdtemp(prefix="autoglm-pg-"))
    os.chown(base, user.pw_uid, user.pw_gid)
    data, log = base / "data", base / "server.log"
    port = free_port()

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120)

    try:
        as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=40"
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


# --------------------------------------------------------------------------- webhook receiver


@dataclass
class Webhook:
    """A JSON webhook on loopback that keeps what it receives; ``down`` makes it answer 503."""

    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if hook.down:
                self.send_response(503)
                self.end_headers()
                return
            with hook.lock:
                hook.received.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --------------------------------------------------------------------------- SMTP


@dataclass
class Mailbox:
    port: int
    messages: list[str] = field(default_factory=list)

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=autoglm@example.test&to=oncall@example.test&mode=insecure"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# --------------------------------------------------------------------------- Pushgateway


def pushgateway_unavailable() -> str | None:
    if not Path(PUSHGATEWAY).exists():
        return "prometheus-pushgateway not installed (apt-get install prometheus-pushgateway)"
    return None


@contextmanager
def pushgateway() -> Iterator[str]:
    """The Debian pushgateway binary on a free loopback port with its own storage; yields its URL."""
    base = Path(tempfile.mkdtemp(prefix="autoglm-pgw-"))
    port = free_port()
    log = (base / "log").open("wb")
    proc = subprocess.Popen(
        [
            PUSHGATEWAY,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={base / 'metrics.data'}",
            "--persistence.interval=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pushgateway did not start: {(base / 'log').read_text()[-500:]}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
