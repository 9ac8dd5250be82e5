"""History wired into real runs (issue 16): pytest subprocesses, one store, a server that goes down and comes back.

Everything is real: each run is a ``pytester.runpytest_subprocess`` against a TCP listener on a
fixed loopback port that the test opens and closes between runs, the store is an SQLite file,
and Apprise posts to a webhook receiver on loopback (``json://127.0.0.1:PORT/hook``).
"""

from __future__ import annotations

import itertools
import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.tcp_servers import free_port
from tests.history.servers import Webhook, webhook_receiver
from tests.reporting.htmldom import parse

pytest_plugins = ["pytester"]


class Service:
    """A TCP service on one fixed loopback port that the test takes down and brings back."""

    def __init__(self) -> None:
        self.port = free_port()
        self._sock: socket.socket | None = None

    def up(self) -> None:
        if self._sock is None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(16)  # the kernel completes the handshakes; nothing needs to accept them
            self._sock = sock

    def down(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    try:
        yield svc
    finally:
        svc.down()


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with webhook_receiver() as receiver:
        yield receiver


def inventory(port: int, notify: list[str], *, after: int = 3, extra: str = "") -> str:
    urls = ", ".join(json.dumps(u) for u in notify)
    return (
        "version: 1\nenvironment: lab\n"
        f"defaults: {{retries: 0, timeout: 1s, alerting: {{after: {after}, notify: [{urls}]}}}}\n"
        "targets:\n"
        f"  - name: db\n    host: 127.0.0.1\n    tcp: {{open: [{port}]}}\n{extra}"
    )


def write_inventory(pytester: pytest.Pytester, text: str, name: str = "lab.yaml") -> Path:
    path = pytester.path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", "-p", "no:cacheprovider", *args)


def document(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "reports" / "lab.json").read_text(encoding="utf-8"))


def kinds(hook: Webhook) -> list[str]:
    """``FIRING`` / ``RESOLVED`` per message received, in order."""
    return [m["title"].split()[1] for m in hook.messages()]


CHECK = "tcp[lab:db:{port}/open]"


def test_down_three_runs_then_back_one_firing_one_resolved(pytester, service, hook):
    check = CHECK.format(port=service.port)
    write_inventory(pytester, inventory(service.port, [hook.url]))
    story = [("up", "P"), ("down", "F"), ("down", "F"), ("down", "F"), ("up", "P"), ("up", "P")]
    documents = []
    for step, (state, _) in enumerate(story):
        service.up() if state == "up" else service.down()
        result = run(pytester)
        assert result.ret == (0 if state == "up" else 1), result.stdout.str()
        documents.append(document(pytester))
        if step == 3:  # the third failing run in a row fires, once
            assert kinds(hook) == ["FIRING"]
        if step < 3:
            assert kinds(hook) == []

    assert kinds(hook) == ["FIRING", "RESOLVED"]
    firing, resolved = hook.messages()
    assert check in firing["title"] and "lab" in firing["title"]
    body = firing["message"]
    assert f"check: {check}" in body and "layer/reason: tcp/refused" in body
    assert "3 failing runs in a row" in body and "report: reports/lab.html" in body
    assert "failing since: " + documents[1]["started_at"][:10] in body
    assert check in resolved["title"]

    histories = [d["results"][0]["history"] for d in documents]
    assert [h["state"] for h in histories] == ["ok", "pending", "pending", "firing", "resolved", "ok"]
    assert [h["consecutive_failures"] for h in histories] == [0, 1, 2, 3, 0, 0]
    assert [h["recent"] for h in histories] == ["P", "PF", "PFF", "PFFF", "PFFFP", "PFFFPP"]
    assert histories[3]["failing_since"] == documents[1]["started_at"]
    assert histories[4]["failing_since"] is None

    runs = [d["run"] for d in documents]
    assert runs[0] == {"id": runs[0]["id"], "previous_id": None}
    assert all(later["previous_id"] == earlier["id"] for earlier, later in itertools.pairwise(runs))
    changes = [d["changes"] for d in documents]
    assert changes[1]["new_failures"] == [check] and changes[2]["still_failing"] == [check]
    assert changes[4]["fixed"] == [check] and changes[5] == {
        "new_failures": [],
        "fixed": [],
        "still_failing": [],
        "facts": [],
    }
    page = parse((pytester.path / "reports" / "lab.html").read_text(encoding="utf-8"))
    strip = page.find("span", cls="recent")
    assert [next(iter(i.classes)) for i in strip.find_all("i")] == ["rs-P", "rs-F", "rs-F", "rs-F", "rs-P", "rs-P"]
    assert "Nothing changed" in page.find(id="changes").text

    terminal = run(pytester).stdout.str()  # a seventh run: nothing changed, nothing sent
    assert "autoglm history: 0 changes since the last run, 0 notifications sent" in terminal
    assert kinds(hook) == ["FIRING", "RESOLVED"]
    prom = (pytester.path / "reports" / "lab.prom").read_text(encoding="utf-8")
    assert f'probe_success{{env="lab",target="db",check="{check}",layer="tcp"}} 1' in prom


def test_overlapping_runs_notify_once(pytester, service, hook):
    """Two pytest runs writing one store at once, both reaching the third failure: one firing message."""
    service.down()
    write_inventory(pytester, inventory(service.port, [hook.url], after=1))
    results: list[pytest.RunResult] = []

    def one() -> None:
        results.append(run(pytester))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [r.ret for r in results] == [1, 1]
    assert kinds(hook) == ["FIRING"]
    with sqlite3.connect(pytester.path / "reports" / "history.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2  # both recorded


def test_history_none_writes_no_store(pytester, service):
    service.up()
    write_inventory(pytester, inventory(service.port, []))
    result = run(pytester, "--autoglm-history", "none")
    assert result.ret == 0
    assert not (pytester.path / "reports" / "history.sqlite").exists()
    doc = document(pytester)
    assert "run" not in doc and "changes" not in doc and "history" not in doc["results"][0]
    assert (pytester.path / "reports" / "lab.prom").is_file()
    result.stdout.fnmatch_lines(["autoglm: history off (--autoglm-history none)"])


@pytest.mark.parametrize("fault", ["corrupt", "readonly"])
def test_store_fault_is_one_warning_and_the_exit_code_is_unchanged(pytester, service, fault):
    service.up()
    write_inventory(pytester, inventory(service.port, []))
    store = pytester.path / "reports" / "history.sqlite"
    store.parent.mkdir()
    args: tuple[str, ...] = ()
    if fault == "corrupt":
        store.write_bytes(b"this is not an SQLite database, it only has the name of one" * 20)
    else:
        run(pytester)  # make a good store, then open it read-only
        args = ("--autoglm-history", f"sqlite:///{store}?mode=ro")
    result = run(pytester, *args)
    assert result.ret == 0, result.stdout.str()
    warnings = [line for line in result.stdout.lines if "autoglm history warning:" in line]
    assert len(warnings) == 1, result.stdout.str()
    assert "history store" in warnings[0] and "--autoglm-history none" in warnings[0]
    assert "history" not in document(pytester)["results"][0]  # the reports are written all the same
    assert (pytester.path / "reports" / "lab.html").is_file()

    required = run(pytester, *args, "--autoglm-history-required")
    assert required.ret != 0
    assert (pytester.path / "reports" / "lab.json").is_file()


def test_xdist_records_the_same_run_as_without(pytester, service):
    service.up()
    extra = f"  - name: web\n    host: 127.0.0.1\n    tcp: {{open: [{service.port}]}}\n"
    write_inventory(pytester, inventory(service.port, [], extra=extra))
    assert run(pytester).ret == 0
    plain = document(pytester)
    assert run(pytester, "-n", "2", "--autoglm-distribute").ret == 0
    spread = document(pytester)
    assert spread["run"]["previous_id"] == plain["run"]["id"]
    assert [r["history"] for r in spread["results"]] == [{**r["history"], "recent": "PP"} for r in plain["results"]]
    with sqlite3.connect(pytester.path / "reports" / "history.sqlite") as conn:
        counts = conn.execute("SELECT run_id, COUNT(*) FROM results GROUP BY run_id ORDER BY run_id").fetchall()
    assert [c for _, c in counts] == [2, 2]


def test_unknown_notify_scheme_is_an_inventory_error_with_its_place(pytester, service):
    write_inventory(pytester, inventory(service.port, ["nosuchscheme://hooks.example.test/x"]))
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*lab.yaml:3:*unknown notification scheme 'nosuchscheme'*"])


def test_secrets_in_notify_urls_are_masked(pytester, service, hook, monkeypatch):
    """A notify URL from ${AUTOGLM_HOOK_TOKEN}: never shown, even when the notifier is down."""
    monkeypatch.setenv("AUTOGLM_HOOK_TOKEN", "s3cr3t-token-value")
    service.down()
    hook.down = True
    url = hook.url.replace("/hook", "/hook/${AUTOGLM_HOOK_TOKEN}")
    write_inventory(pytester, inventory(service.port, [url], after=1))
    result = run(pytester)
    assert result.ret == 1
    text = result.stdout.str()
    warnings = [line for line in result.stdout.lines if "autoglm history warning:" in line]
    assert len(warnings) == 1 and "notifications not delivered" in warnings[0], text
    assert "s3cr3t-token-value" not in text
    for name in ("lab.json", "lab.html", "lab.prom"):
        assert "s3cr3t-token-value" not in (pytester.path / "reports" / name).read_text(encoding="utf-8")
    hook.down = False
    assert run(pytester).ret == 1  # the next run retries the failed firing message
    assert kinds(hook) == ["FIRING"]


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (
            ("--autoglm-history", "mysql://db/x"),
            "",
            "--autoglm-history: expected a path, sqlite:///path, postgresql://*",
        ),
        (("--autoglm-history", "sqlite://h.db"), "", "--autoglm-history: write sqlite:///relative/path*"),
        (("--autoglm-history", "."), "", "--autoglm-history: . is a directory*"),
        (("--autoglm-history-keep", "5x"), "", "--autoglm-history-keep: expected a retention like '90d'*"),
        ((), "autoglm_history_keep = soon", "ini key autoglm_history_keep: expected a retention like*"),
        ((), "autoglm_history_required = maybe", "ini key autoglm_history_required: expected true or false*"),
        (("--autoglm-pushgateway", "ftp://gw"), "", "--autoglm-pushgateway: expected an http:// or https:// URL*"),
    ],
)
def test_bad_history_options_are_usage_errors_naming_their_source(pytester, args, ini, expected):
    write_inventory(pytester, inventory(free_port(), []))
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--autoglm-target", "lab.yaml", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}"])


def test_the_header_names_the_store_and_masks_a_password(pytester, service):
    service.up()
    write_inventory(pytester, inventory(service.port, []))
    result = run(
        pytester,
        "--autoglm-history",
        "sqlite:///nightly.sqlite",
        "--autoglm-history-keep",
        "2w",
        "--autoglm-history-required",
        "--autoglm-pushgateway",
        "http://user:pushpass@127.0.0.1:9",  # nothing listens: one warning line, and required fails the run
    )
    result.stdout.fnmatch_lines(
        ["autoglm: history sqlite:///nightly.sqlite (keep 14d, required), pushgateway http://user:***@127.0.0.1:9"]
    )
    assert (pytester.path / "nightly.sqlite").is_file() and not (pytester.path / "reports" / "history.sqlite").exists()
    warnings = [line for line in result.stdout.lines if "autoglm history warning:" in line]
    assert len(warnings) == 1 and "pushgateway http://127.0.0.1:9" in warnings[0], result.stdout.str()
    assert "pushpass" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_history_none_imports_neither_sqlite3_nor_apprise(pytester, service):
    service.up()
    write_inventory(pytester, inventory(service.port, []))
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            loaded = sorted(m for m in ("sqlite3", "apprise", "pytest_autoglm.history.store") if m in sys.modules)
            print("HEAVY-IMPORTS:", ",".join(loaded) or "none")
        """
    )
    result = run(pytester, "--autoglm-history", "none", "-s")
    result.stdout.fnmatch_lines(["HEAVY-IMPORTS: none"])
    with_store = run(pytester, "-s")
    with_store.stdout.fnmatch_lines(["HEAVY-IMPORTS: pytest_autoglm.history.store,sqlite3"])  # no notify: no apprise
