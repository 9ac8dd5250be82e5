"""One root cause once: a real server that echoes any Origin fails ``reflect_any_origin``; the holes it
implies and the entry's deny origins are its consequences (``upstream``), not failures of their own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_autoglm.core.vocabulary import Outcome, Reason
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.inventory.plan import build_plan
from pytest_autoglm.inventory.validate import load_inventory


def _handler(reflect: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            origin = self.headers.get("Origin")
            self.send_response(200)
            if origin and (reflect or origin == "https://app.test"):
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Vary", "Origin")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_OPTIONS = do_HEAD = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def _server(reflect: bool) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reflect))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _run(tmp_path: Path, port: int) -> dict[str, tuple[Outcome, Reason | None, str]]:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "version: 1\n"
        "defaults: {timeout: 2s, retries: 0}\n"
        "targets:\n"
        "  - name: web\n"
        "    host: 127.0.0.1\n"
        f"    cors: {{url: 'http://127.0.0.1:{port}/', allow: ['https://app.test'], deny: ['https://evil.test']}}\n"
    )
    checks = build_plan(load_inventory(inventory))
    engine = Engine()
    try:
        engine.schedule(checks)
        return {c.subject: (r.outcome, r.reason, r.message) for c in checks for r in [engine.result(c)]}
    finally:
        engine.close()


@pytest.mark.parametrize("reflect", [True, False])
def test_a_reflecting_server_is_one_root_cause(tmp_path: Path, reflect: bool) -> None:
    with _server(reflect) as port:
        results = _run(tmp_path, port)
    consequences = ("https://evil.test", "misconfig/null_origin", "misconfig/suffix_bypass", "misconfig/prefix_bypass")
    assert results["https://app.test"][0] is Outcome.PASSED
    if not reflect:  # the negative control: nothing fails, nothing is blocked
        assert all(outcome is Outcome.PASSED for outcome, _, _ in results.values()), results
        return
    assert results["misconfig/reflect_any_origin"][:2] == (Outcome.FAILED, Reason.REFLECTS_ANY_ORIGIN)
    for subject in consequences:
        outcome, reason, message = results[subject]
        assert (outcome, reason) == (Outcome.FAILED, Reason.UPSTREAM), (subject, message)
        assert "misconfig/reflect_any_origin" in message and "reflects_any_origin" in message
    failed_on_their_own = [s for s, (o, r, _) in results.items() if o is Outcome.FAILED and r is not Reason.UPSTREAM]
    assert failed_on_their_own == ["misconfig/reflect_any_origin"]
