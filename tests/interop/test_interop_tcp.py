"""TCP verdicts of the plugin against a network namespace with nft rules, cross-checked with curl.

The lab is the shared standard one (``tests/fakes/netns.py``, fixture
``netns_lab``): inside its namespace port 8080 accepts and closes, 8081 accepts
and never speaks, 9000 is dropped, 9001 rejected with a TCP reset, 9002
rejected with ICMP host-unreachable, and 9003 has nothing listening. The
plugin (and curl) talk to it from the root namespace over the veth pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.netns import STANDARD_PORTS as P
from tests.fakes.netns import NetnsLab
from tests.interop.plugin_run import (
    Case,
    PluginRun,
    check_case,
    failed,
    inventory_yaml,
    params,
    passed,
    run_plugin,
    tool,
    uncovered,
)

# (case, expectation, port)
TABLE: list[tuple[Case, str, int]] = [
    (passed("open", "tcp"), "open", P.open),
    (passed("open-silent", "tcp", note="accepts, never speaks"), "open", P.silent),
    (passed("refused-by-rule", "tcp", note="nft reject with tcp reset"), "refused", P.reset),
    (passed("refused-nothing-listens", "tcp"), "refused", P.refused),
    (passed("filtered-dropped", "tcp", note="nft drop"), "filtered", P.dropped),
    (passed("closed-dropped", "tcp"), "closed", P.dropped),
    (passed("closed-reset", "tcp"), "closed", P.reset),
    (passed("closed-unreachable", "tcp"), "closed", P.unreachable),
    (failed("open-but-dropped", "tcp", "tcp", "filtered"), "open", P.dropped),
    (failed("open-but-reset", "tcp", "tcp", "refused"), "open", P.reset),
    (failed("open-but-nothing-listens", "tcp", "tcp", "refused"), "open", P.refused),
    (failed("open-but-unreachable", "tcp", "tcp", "unreachable", note="ICMP host-unreachable"), "open", P.unreachable),
    (failed("filtered-but-reset", "tcp", "tcp", "unexpected_refused"), "filtered", P.reset),
    (failed("closed-but-open", "tcp", "tcp", "unexpected_open"), "closed", P.open),
    (failed("refused-but-dropped", "tcp", "tcp", "filtered"), "refused", P.dropped),
    (failed("refused-but-open", "tcp", "tcp", "unexpected_open"), "refused", P.open),
]
CASES = [case for case, _, _ in TABLE]


@pytest.fixture(scope="session")
def tcp_run(netns_lab: NetnsLab, interop_dir: Path) -> PluginRun:
    targets = [
        {"name": case.target, "host": netns_lab.address, "tcp": {expect: [port]}} for case, expect, port in TABLE
    ]
    # 1s per attempt, no retries: the dropped ports cost one second, all at once.
    inventory = inventory_yaml("tcp", {"timeout": "1s", "retries": 0}, targets)
    return run_plugin(interop_dir / "tcp-run", "tcp", inventory)


@pytest.mark.parametrize("case", params(CASES))
def test_tcp_verdict(tcp_run: PluginRun, case: Case) -> None:
    check_case(tcp_run, case)
    assert tcp_run.find(case)["attempts"] == 1


def test_tcp_run_is_complete(tcp_run: PluginRun) -> None:
    assert uncovered(tcp_run, CASES) == []
    assert tcp_run.returncode == 1, tcp_run.output[-2000:]


@dataclass(frozen=True)
class CurlSees:
    port: int
    exit_code: int  # curl's: 7 could not connect, 28 timed out, 52 empty reply, 56 recv failure
    says: str
    case: str


CURL = [
    CurlSees(P.open, 52, "Empty reply from server", "closed-but-open"),
    CurlSees(P.silent, 28, "Operation timed out", "open-silent"),
    CurlSees(P.dropped, 28, "Connection timed out", "open-but-dropped"),
    CurlSees(P.reset, 7, "Connection refused", "open-but-reset"),
    CurlSees(P.refused, 7, "Connection refused", "open-but-nothing-listens"),
    CurlSees(P.unreachable, 7, "No route to host", "open-but-unreachable"),
]


@pytest.mark.parametrize("seen", CURL, ids=[f"{c.port}-{c.case}" for c in CURL])
def test_curl_sees_the_same_port_state(netns_lab: NetnsLab, tcp_run: PluginRun, seen: CurlSees) -> None:
    argv = [
        "curl", "-v", "--noproxy", "*", "--connect-timeout", "1", "--max-time", "1",
        f"http://{netns_lab.address}:{seen.port}/",
    ]  # fmt: skip
    code, out = tool(argv, timeout=10)
    case = next(c for c in CASES if c.id == seen.case)
    verdict = tcp_run.find(case)
    plugin = f"plugin: {verdict['outcome']}/{verdict['layer']}/{verdict['reason']}: {verdict['message']}"
    accepted = {seen.exit_code, 56} if seen.port == P.open else {seen.exit_code}  # a close may come as a reset
    assert code in accepted, f"{' '.join(argv)} exited {code}; {plugin}\n{out[-1500:]}"
    if seen.port != P.open or code == 52:
        assert seen.says.lower() in out.lower(), f"{' '.join(argv)}: no {seen.says!r}; {plugin}\n{out[-1500:]}"
    check_case(tcp_run, case)
