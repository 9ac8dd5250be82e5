"""The icmp probe in network namespaces: a router that forwards, drops or loses echo requests.

The probe runs inside the client namespace (a subprocess under ``ip netns exec``), whose
``ping_group_range`` the lab sets; the root namespace's setting is never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fakes.icmp_lab import DROPPED, FORWARDED, LOSSY, ROUTER_NEAR, IcmpLab, icmp_lab

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def lab() -> Iterator[IcmpLab]:
    with icmp_lab() as running:
        yield running


def probe(lab: IcmpLab, address: str, timeout: float = 2.0, **expect: object) -> dict:
    code = f"""
import asyncio, json
from pytest_autoglm.probes.icmp import IcmpExpectation, check_icmp
v = asyncio.run(check_icmp({address!r}, IcmpExpectation(**{expect!r}), timeout={timeout}))
print(json.dumps({{"passed": v.passed, "layer": v.layer, "reason": v.reason, "message": v.message, "details": v.details}}))
"""
    run = lab.run_python(code)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_an_answering_host_passes(lab):
    verdict = probe(lab, FORWARDED, count=3, interval=0.05, max_loss=0.0, max_rtt=1.0)
    assert verdict["passed"], verdict["message"]
    assert (verdict["details"]["sent"], verdict["details"]["received"]) == (3, 3)


def test_a_dropped_host_is_unreachable_and_the_trace_shows_where_the_path_stops(lab):
    verdict = probe(lab, DROPPED, count=2, interval=0.05, trace=True, max_hops=4)
    assert (verdict["passed"], verdict["layer"], verdict["reason"]) == (False, "icmp", "unreachable")
    assert verdict["details"]["last_hop"] == ROUTER_NEAR
    assert verdict["details"]["hops"][0]["address"] == ROUTER_NEAR
    assert f"stops after {ROUTER_NEAR}" in verdict["message"]
    control = probe(lab, FORWARDED, count=1, trace=True, max_hops=4)
    assert control["passed"], control["message"]
    assert [h["address"] for h in control["details"]["hops"]] == [ROUTER_NEAR, FORWARDED]


def test_lost_echoes_are_loss(lab):
    verdict = probe(lab, LOSSY, count=3, interval=0.05, max_loss=0.0)
    assert verdict["reason"] == "loss"
    assert verdict["details"]["received"] == 2
    tolerant = probe(lab, LOSSY, count=3, interval=0.05, max_loss=50.0)
    assert tolerant["passed"], tolerant["message"]


def test_a_round_trip_over_max_rtt_is_slow(lab):
    verdict = probe(lab, FORWARDED, count=2, interval=0.05, max_rtt=0.000001)
    assert verdict["reason"] == "slow"


def test_reachable_false_passes_when_blocked_and_fails_on_an_answer(lab):
    blocked = probe(lab, DROPPED, count=2, interval=0.05, reachable=False)
    assert blocked["passed"], blocked["message"]
    answered = probe(lab, FORWARDED, count=2, interval=0.05, reachable=False)
    assert answered["reason"] == "unexpected_reply"


def test_forbidden_unprivileged_icmp_is_an_error_saying_how_to_allow_it():
    with icmp_lab(allow_ping=False) as forbidden:
        verdict = probe(forbidden, FORWARDED, count=1)
    assert (verdict["passed"], verdict["reason"]) == (False, "setup")  # outcome error, never a false failure
    assert "ping_group_range" in verdict["message"] and "sysctl -w" in verdict["message"]


def test_icmp_items_through_the_plugin(lab, tmp_path):
    (tmp_path / "path.yaml").write_text(
        f"""\
version: 1
defaults: {{timeout: 2s, retries: 0}}
targets:
  - name: up
    host: {FORWARDED}
    icmp: {{reachable: true, count: 3, max_loss: 0%, max_rtt: 100ms}}
  - name: dropped
    host: {DROPPED}
    icmp: {{count: 2, trace: true, max_hops: 3}}
  - name: firewalled
    host: {DROPPED}
    icmp: {{reachable: false, count: 2}}
"""
    )
    run = lab.run_pytest("--autoglm-target", "path.yaml", "-q", cwd=tmp_path)
    doc = json.loads((tmp_path / "reports" / "path.json").read_text())
    by_id = {r["id"]: r for r in doc["results"]}
    assert by_id["icmp[path:up:reachable]"]["outcome"] == "passed", by_id
    assert by_id["icmp[path:dropped:reachable]"]["reason"] == "unreachable"
    assert by_id["icmp[path:dropped:reachable]"]["details"]["last_hop"] == ROUTER_NEAR
    assert by_id["icmp[path:firewalled:blocked]"]["outcome"] == "passed"
    assert "1 failed, 2 passed" in run.stdout, run.stdout + run.stderr
