"""Polite concurrency per destination, against a real small server: Python's ThreadingHTTPServer with
its listen backlog of 5, behind a CORS check with its misconfiguration probes and several origins."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pytest_autoglm.core.vocabulary import Outcome
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.inventory.plan import build_plan
from pytest_autoglm.inventory.validate import load_inventory

ALLOWED = "https://app.test"


class _Cors(BaseHTTPRequestHandler):
    """Allows ALLOWED only, answers after a short pause (so connections pile up at a careless client)."""

    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()

    def _answer(self) -> None:
        with _Cors.lock:
            _Cors.in_flight += 1
            _Cors.most_in_flight = max(_Cors.most_in_flight, _Cors.in_flight)
        try:
            time.sleep(0.05)
            origin = self.headers.get("Origin")
            self.send_response(204 if self.command == "OPTIONS" else 200)
            if origin == ALLOWED:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Methods", "GET, POST")
                self.send_header("Vary", "Origin")
            self.send_header("Content-Length", "0")
            self.end_headers()
        finally:
            with _Cors.lock:
                _Cors.in_flight -= 1

    do_GET = do_OPTIONS = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _small_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Cors)  # request_queue_size 5: the listen backlog
    assert server.request_queue_size == 5
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _listen_overflows() -> int | None:
    """The kernel's TcpExt ListenOverflows of this network namespace (None if unreadable)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(fields["ListenOverflows"]) if "ListenOverflows" in fields else None
    return None


def test_a_backlog_5_server_sees_at_most_4_connections_and_nothing_is_retried(tmp_path: Path) -> None:
    with _small_server() as port:
        url = f"http://127.0.0.1:{port}/api"
        deny = ", ".join(f"'https://evil{i}.test'" for i in range(6))
        inventory = tmp_path / "small.yaml"
        inventory.write_text(
            "version: 1\n"
            "defaults: {timeout: 1s, retries: 2, backoff: 10ms}\n"
            "targets:\n"
            "  - name: small\n"
            "    host: 127.0.0.1\n"
            f"    http: [{{url: '{url}'}}, {{url: '{url}?a'}}, {{url: '{url}?b'}}]\n"
            f"    cors: [{{url: '{url}', allow: ['{ALLOWED}'], deny: [{deny}, 'null'], methods: [POST]}}]\n"
        )
        checks = build_plan(load_inventory(inventory))
        assert len(checks) >= 15 and all(c.per_host_concurrency == 4 for c in checks)
        before = _listen_overflows()
        _Cors.most_in_flight = 0
        engine = Engine()
        try:
            engine.schedule(checks)
            results = [engine.result(c) for c in checks]
        finally:
            engine.close()
        after = _listen_overflows()
    assert [(r.outcome, r.attempts) for r in results] == [(Outcome.PASSED, 1)] * len(checks), [
        r.message for r in results if not r.passed or r.attempts > 1
    ]
    assert 1 <= _Cors.most_in_flight <= 4
    # The kernel's counter is per network namespace: other processes' small servers count too. It
    # is evidence only when this test runs alone (not in an xdist worker beside other tests).
    if before is not None and after is not None and "PYTEST_XDIST_WORKER" not in os.environ:
        assert after == before, f"{after - before} SYNs dropped by a full listen queue"


def test_the_limit_comes_from_the_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "one.yaml"
    inventory.write_text(
        "version: 1\n"
        "defaults: {per_host_concurrency: 2}\n"
        "targets:\n"
        "  - {name: a, host: 127.0.0.1, tcp: {open: [1]}}\n"
        "  - {name: b, host: 127.0.0.1, per_host_concurrency: 1, tcp: {open: [1]}}\n"
    )
    assert [c.per_host_concurrency for c in build_plan(load_inventory(inventory))] == [2, 1]
