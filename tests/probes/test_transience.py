"""Definite answers are never retried: TLS servers that refuse a handshake for good, run through the
engine with retries, against real sockets on loopback (and the one retry table's rule)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import (
    RETRY_RULES,
    TRANSIENT_REASONS,
    Layer,
    Outcome,
    Reason,
    Retry,
    worth_retrying,
)
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.inventory.plan import build_plan
from pytest_autoglm.inventory.validate import load_inventory
from pytest_autoglm.probes.errmap import handshake_transient


@contextmanager
def _serve(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback listener that runs ``handle`` on every connection in a thread; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_guard, args=(handle, conn), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=3)
        listener.close()


def _guard(handle: Callable[[socket.socket], None], conn: socket.socket) -> None:
    conn.settimeout(5)
    try:
        handle(conn)
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def _tls_server(ciphers: str) -> Callable[[socket.socket], None]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "api.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the cipher list decides
    ctx.set_ciphers(ciphers)
    leaf.configure_cert(ctx)

    def handle(conn: socket.socket) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    return handle


def _oversized_server_hello(conn: socket.socket) -> None:
    """Reads the ClientHello, answers with a handshake message announcing 16 MiB: "excessive message size"."""
    conn.recv(65536)
    conn.sendall(bytes([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0xFF, 0xFF, 0xFF]))
    conn.recv(1)  # until the client gives up


def _cases() -> dict[str, Callable[[socket.socket], None]]:
    return {
        "handshake_failure alert": _tls_server("ADH-AES128-GCM-SHA256:@SECLEVEL=0"),
        "excessive message size": _oversized_server_hello,
    }


@pytest.mark.parametrize("case", ["handshake_failure alert", "excessive message size"])
def _run(tmp_path: Path, port: int, section: str, kind: Layer) -> CheckResult:
    inventory = tmp_path / f"{kind}.yaml"
    inventory.write_text(
        "version: 1\n"
        "defaults: {timeout: 3s, retries: 2, backoff: 10ms}\n"
        "targets:\n"
        "  - name: t\n"
        "    host: 127.0.0.1\n"
        f"    {section}\n"
    )
    checks = [c for c in build_plan(load_inventory(inventory)) if c.kind is kind]
    engine = Engine()
    try:
        engine.schedule(checks)
        return engine.result(checks[0])
    finally:
        engine.close()


@pytest.mark.parametrize("case", ["handshake_failure alert", "excessive message size"])
def test_a_refused_handshake_is_tried_once_by_tls_and_http_items(tmp_path: Path, case: str) -> None:
    """Each layer's own probe (pyOpenSSL for tls, Python's ssl via httpx for http) calls it definite."""
    with _serve(_cases()[case]) as port:
        tls = _run(tmp_path, port, f"tls: {{port: {port}, verify: false}}", Layer.TLS)
        http = _run(tmp_path, port, f"http: [{{url: 'https://127.0.0.1:{port}/'}}]", Layer.HTTP)
    for result in (tls, http):
        assert (result.outcome, result.reason, result.attempts) == (Outcome.FAILED, Reason.HANDSHAKE, 1), result


def test_a_handshake_cut_without_an_answer_is_retried(tmp_path: Path) -> None:
    """The positive control: a server that closes at once may be restarting, so it is tried again."""
    with _serve(lambda conn: conn.recv(65536)) as port:
        result = _run(tmp_path, port, f"tls: {{port: {port}, verify: false}}", Layer.TLS)
    assert (result.reason, result.attempts) == (Reason.HANDSHAKE, 3), result.message


@pytest.mark.parametrize(
    ("text", "alert", "eof", "transient"),
    [
        ("dh key too small", False, False, False),
        ("DH_KEY_TOO_SMALL", False, False, False),
        ("excessive message size", False, False, False),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", False, False, False),
        ("sslv3 alert handshake failure", False, True, False),
        ("wrong version number", False, False, False),
        ("the server closed the connection during the handshake", False, True, True),
        ("UNEXPECTED_EOF_WHILE_READING", False, False, True),
        ("Connection reset by peer", False, False, True),
        ("anything", True, True, False),
    ],
)
def test_handshake_transience(text: str, alert: bool, eof: bool, transient: bool) -> None:
    assert handshake_transient(text, alert=alert, eof=eof) is transient


def test_the_table_decides_over_a_probe() -> None:
    """A probe cannot make a definite reason retried; a transient reason is retried unless the probe says no."""
    assert not worth_retrying(Reason.MISMATCH, True)
    assert not worth_retrying(Reason.HANDSHAKE, False)
    assert worth_retrying(Reason.HANDSHAKE, True)
    assert worth_retrying(Reason.TIMEOUT, True)
    assert TRANSIENT_REASONS == {r for r, rule in RETRY_RULES.items() if rule is Retry.TRANSIENT}
    assert Reason.HANDSHAKE not in TRANSIENT_REASONS
