"""The end-of-run terminal summary, from known documents."""

from __future__ import annotations

from fnmatch import fnmatch

from pytest_autoglm.reporting.terminal import plain_summary
from tests.reporting.sample import fact, known_document


def assert_lines(lines: list[str], patterns: list[str]) -> None:
    """Each pattern matches a line, in order (like pytester's fnmatch_lines)."""
    position = 0
    for pattern in patterns:
        while position < len(lines) and not fnmatch(lines[position], pattern):
            position += 1
        assert position < len(lines), f"{pattern!r} not found in order in:\n" + "\n".join(lines)
        position += 1


def test_summary_of_the_known_document():
    lines = plain_summary(known_document(), width=None)
    assert lines[0] == "FAIL: 6 failing (3 root causes, 3 blocked), 1 warned, 6 passed (1 after retries) in 6.50s"
    assert lines[1:5] == [
        "api     dns ok   tcp ok   tls ok   http ok*  cors WARN",
        "db      dns ok   tcp FAIL tls up   http -    cors -",
        "ghost   dns FAIL tcp up   tls -    http up   cors -",
        "legacy  dns -    tcp -    tls FAIL http -    cors -",
    ]
    assert_lines(
        lines,
        [
            "(ok* passed only after retries; up blocked: a lower layer failed)",
            "tcp[[]prod:db:5432/open[]]  *tcp/filtered  *10.0.0.5  *db.internal (10.0.0.5) port 5432: no answer within 2s (3 attempts); expected open",
            "    + 1 blocked by it: tls[[]prod:db:5432[]]",
            "dns[[]prod:ghost:A[]]  *dns/nxdomain  *-  *ghost.example.com A: NXDOMAIN from 192.0.2.53",
            "    + 2 blocked by it: tcp[[]prod:ghost:443/open[]], http[[]prod:ghost:GET https://ghost.example.com/[]]",
            "tls[[]prod:legacy:443[]]  *tls/expired  *198.51.100.7  *198.51.100.7:443 (SNI legacy.example.com): certificate expired on 2026-10-01",
            "cors[[]prod:api:https://app.example.com[]]  *cors/not_allowed  *203.0.113.10  *(warning) https://app.example.com: *",
        ],
    )
    # upstream items get no line of their own
    assert not any(line.startswith(("tls[prod:db:5432]", "tcp[prod:ghost", "http[prod:ghost")) for line in lines)


def test_messages_are_one_line_and_truncated_to_the_width():
    long = "first line\n" + "x" * 300
    doc = known_document(
        results=[fact("tcp", "a", "1/open", "failed", layer="tcp", reason="refused", address="127.0.0.1", message=long)]
    )
    lines = plain_summary(doc, width=100)
    cause = next(line for line in lines if line.startswith("tcp["))
    assert "\n" not in cause and "first line xxx" in cause
    assert len(cause) <= 100 and cause.endswith("...")
    assert plain_summary(doc, width=None)[-1].endswith("x" * 300)


def test_all_passed_and_partial():
    doc = known_document(results=[fact("tcp", "a", "1/open"), fact("dns", "a", "A")], partial=True)
    lines = plain_summary(doc)
    assert lines == [
        "PASS: 2 passed in 6.50s",
        "PARTIAL RUN: stopped early (-x, --maxfail or an interrupt), 0 not run",
        "a       dns ok   tcp ok   tls -    http -    cors -",
    ]


def test_a_message_is_not_cut_to_a_stub_when_the_ids_are_long():
    long_id_subject = "GET https://" + "a" * 60 + ".example.com/health"
    doc = known_document(
        results=[
            fact(
                "http",
                "a",
                long_id_subject,
                "failed",
                layer="tcp",
                reason="refused",
                address="127.0.0.1",
                message="m" * 120,
            )
        ]
    )
    cause = next(line for line in plain_summary(doc, width=80) if line.startswith("http["))
    assert cause.endswith("m" * 120)
