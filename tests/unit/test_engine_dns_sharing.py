"""The engine's DNS economy, against a real DNS server on loopback: questions asked once per run,
and a burst of answers read in time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import Outcome
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.inventory.plan import Check, build_plan
from pytest_autoglm.inventory.validate import load_inventory
from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.tcp_servers import tcp_listener


def _plan(path: Path, resolver: str, targets: list[str], *, timeout: str = "2s") -> list[Check]:
    lines = [
        "version: 1",
        f'defaults: {{timeout: {timeout}, retries: 0, resolvers: ["{resolver}"]}}',
        "targets:",
        *targets,
    ]
    path.write_text("\n".join(lines) + "\n")
    return build_plan(load_inventory(path))


def _run(checks: list[Check]) -> list[CheckResult]:
    engine = Engine()
    try:
        engine.schedule(checks)
        return [engine.result(check) for check in checks]
    finally:
        engine.close()


def test_the_dns_item_and_the_lookup_of_the_tcp_items_ask_each_question_once(tmp_path: Path) -> None:
    with tcp_listener() as listener, FakeDnsServer({"svc.test": {"A": ["127.0.0.1"]}}) as server:
        port = listener.address[1]
        checks = _plan(
            tmp_path / "inv.yaml",
            server.address,
            [
                "  - name: svc",
                "    host: svc.test",
                "    dns: {A: [127.0.0.1]}",
                f"    tcp: {{open: [{port}], closed: [1]}}",
            ],
        )
        results = _run(checks)
        questions = Counter(qtype for _, _, qtype in server.questions)
    assert [r.outcome for r in results] == [Outcome.PASSED] * 3, [r.message for r in results]
    assert questions == Counter({"A": 1, "AAAA": 1})


def test_a_burst_of_answers_is_read_before_the_questions_time_out(tmp_path: Path) -> None:
    """1000 targets' A and AAAA questions leave at once over one socket; every answer counts."""
    names = [f"n{i}.burst.test" for i in range(1000)]
    zone = {name: {"A": ["127.0.0.1"]} for name in names}
    with tcp_listener() as listener, FakeDnsServer(zone, receive_buffer=8 * 1024 * 1024) as server:
        port = listener.address[1]
        targets = []
        for i, name in enumerate(names):
            targets += [
                f"  - name: t{i}",
                f"    host: {name}",
                "    dns: {A: [127.0.0.1]}",
                f"    tcp: {{open: [{port}]}}",
            ]
        checks = _plan(tmp_path / "inv.yaml", server.address, targets, timeout="5s")
        results = _run(checks)
        asked = len(server.questions)
    bad = Counter(
        (str(c.kind), r.outcome, r.reason)
        for c, r in zip(checks, results, strict=True)
        if r.outcome is not Outcome.PASSED
    )
    assert not bad
    assert asked == 2000  # A (shared by the dns item and the lookup) and AAAA per target, no retransmission
