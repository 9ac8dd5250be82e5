"""The state machine and record_run's history/changes, on both store backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoglm.history import AlertPolicy, CheckRecord, HistoryStore, RunRecord, key_facts, letter_of, record_run
from pytest_autoglm.history.models import FAILING, RECENT, Letter
from pytest_autoglm.history.state import CheckState, advance, switches
from tests.history.conftest import DAY, T0

TLS_DETAILS = {
    "address": "127.0.0.1",
    "issuer": "CN=Open-AutoGLM demo CA",
    "not_after": "2026-12-14T15:45:46Z",
    "days_left": 9,
    "serial": "51033e9b",
}


def run(day: int, *, partial: bool = False, env: str = "prod") -> RunRecord:
    return RunRecord(env, T0 + day * DAY, T0 + day * DAY + DAY / 1000, inventory_digest="abc", partial=partial)


def rec(check_id: str, letter: Letter, **facts: object) -> CheckRecord:
    return CheckRecord(check_id, letter, target="api", check=check_id.split("[", maxsplit=1)[0], facts=facts)


def test_three_failures_fire_then_one_pass_resolves(store: HistoryStore) -> None:
    states, transitions, since = [], [], []
    for day, letter in enumerate("PFFFPP"):
        history = record_run(store, run(day), [rec("tcp[prod:api:443/open]", letter)])  # type: ignore[arg-type]
        check = history.checks["tcp[prod:api:443/open]"]
        states.append(check.state)
        transitions.append(check.transition)
        since.append(check.failing_since)
    assert states == ["ok", "pending", "pending", "firing", "resolved", "ok"]
    assert transitions == [None, None, None, "firing", "resolved", None]
    day1 = "2026-11-02T02:00:00Z"
    assert since == [None, day1, day1, day1, None, None]
    assert history.history_json("tcp[prod:api:443/open]") == {
        "state": "ok",
        "consecutive_failures": 0,
        "failing_since": None,
        "last_change": "2026-11-05T02:00:00Z",
        "flapping": False,
        "recent": "PFFFPP",
    }
    assert history.run_json() == {"id": history.run_id, "previous_id": history.run_id - 1}


def test_changes_new_fixed_still_and_facts(store: HistoryStore) -> None:
    first = record_run(
        store,
        run(0),
        [
            rec("dns[prod:api:A]", "P", answers=["192.0.2.1"]),
            rec("tls[prod:api:443]", "P", serial="aa", days_left=30),
            rec("tcp[prod:db:5432/closed]", "F"),
        ],
    )
    assert first.previous_id is None
    assert first.changes.new_failures == ("tcp[prod:db:5432/closed]",)
    second = record_run(
        store,
        run(1),
        [
            rec("dns[prod:api:A]", "F", answers=["192.0.2.9"]),
            rec("tls[prod:api:443]", "P", serial="bb", days_left=29),
            rec("tcp[prod:db:5432/closed]", "F"),
        ],
    )
    assert second.previous_id == first.run_id
    assert second.changes.as_json() == {
        "new_failures": ["dns[prod:api:A]"],
        "fixed": [],
        "still_failing": ["tcp[prod:db:5432/closed]"],
        "facts": [
            {"id": "dns[prod:api:A]", "field": "answers", "before": ["192.0.2.1"], "after": ["192.0.2.9"]},
            {"id": "tls[prod:api:443]", "field": "serial", "before": "aa", "after": "bb"},
        ],
    }  # days_left changes every day: kept, not reported
    third = record_run(store, run(2), [rec("dns[prod:api:A]", "P"), rec("tcp[prod:db:5432/closed]", "P")])
    assert third.changes.fixed == ("dns[prod:api:A]", "tcp[prod:db:5432/closed]")
    assert third.changes.facts == ()  # a fact this run did not learn is no change


def test_partial_run_never_marks_unselected_checks_fixed(store: HistoryStore) -> None:
    record_run(store, run(0), [rec("tcp[a]", "F"), rec("tcp[b]", "F")])
    partial = record_run(store, run(1, partial=True), [rec("tcp[a]", "P")])
    assert partial.changes.fixed == ("tcp[a]",)
    assert set(partial.checks) == {"tcp[a]"}
    full = record_run(store, run(2), [rec("tcp[a]", "P"), rec("tcp[b]", "F")])
    assert full.checks["tcp[b]"].recent == "FF"  # the partial run left it untouched
    assert full.changes.still_failing == ("tcp[b]",)


def test_environments_and_vantages_are_separate(store: HistoryStore) -> None:
    record_run(store, run(0, env="prod"), [rec("tcp[a]", "F")])
    staging = record_run(store, run(0, env="staging"), [rec("tcp[a]", "P")])
    assert staging.previous_id is None and staging.checks["tcp[a]"].recent == "P"
    other = RunRecord("prod", T0 + DAY, T0 + DAY, vantage="eu-west")
    assert record_run(store, other, [rec("tcp[a]", "P")]).checks["tcp[a]"].recent == "P"


def test_policy_after_and_resolve_after(store: HistoryStore) -> None:
    policy = AlertPolicy(after=1, resolve_after=2)
    states = [
        record_run(store, run(day), [rec("tcp[a]", letter)], {"tcp[a]": policy}).checks["tcp[a]"].state  # type: ignore[arg-type]
        for day, letter in enumerate("FPFPPP")
    ]
    assert states == ["firing", "firing", "firing", "firing", "resolved", "ok"]


def test_skips_and_warnings(store: HistoryStore) -> None:
    states = [
        record_run(store, run(day), [rec("tcp[a]", letter)]).checks["tcp[a]"]  # type: ignore[arg-type]
        for day, letter in enumerate("WSEFS")
    ]
    assert [s.state for s in states] == ["pending", "pending", "pending", "firing", "firing"]
    assert states[-1].recent == "WSEFS" and states[-1].consecutive_failures == 3


def test_flapping() -> None:
    assert switches("PFPFP") == 4 and switches("PSFSP") == 2 and switches("FFFPPP") == 1
    state: CheckState | None = None
    for day, letter in enumerate("PFPFP"):
        state, history = advance(state, rec("tcp[a]", letter), AlertPolicy(), f"2026-11-0{day + 1}T00:00:00Z", day)  # type: ignore[arg-type]
    assert history.flapping and history.state == "ok"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("PFWES"), min_size=1, max_size=60), st.integers(1, 4), st.integers(1, 3))
def test_state_invariants(letters: list[str], after: int, resolve_after: int) -> None:
    """Whatever the sequence: counters match the letters, ``recent`` is the tail, states agree with counters."""
    policy = AlertPolicy(after=after, resolve_after=resolve_after)
    state: CheckState | None = None
    firing_transitions = resolved_transitions = 0
    for i, letter in enumerate(letters):
        state, history = advance(state, rec("tcp[a]", letter), policy, f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", i)  # type: ignore[arg-type]
        judged = [x for x in letters[: i + 1] if x != "S"]
        trailing = len(judged) - len("".join("x" if x in FAILING else "p" for x in judged).rstrip("x"))
        assert history.consecutive_failures == trailing
        assert history.recent == "".join(letters[max(0, i + 1 - RECENT) : i + 1])
        if history.state == "firing" and history.transition is None:
            assert history.failing_since is not None
        if history.state == "pending":
            assert 0 < trailing < after
        if trailing >= after:
            assert history.state == "firing"
        firing_transitions += history.transition == "firing"
        resolved_transitions += history.transition == "resolved"
    assert firing_transitions - resolved_transitions in (0, 1)  # alternate, starting with firing


def test_letters_and_key_facts_from_report_shapes() -> None:
    assert [letter_of(o) for o in ("passed", "failed", "error", "skipped")] == ["P", "F", "E", "S"]
    assert letter_of("failed", warned=True) == "W" and letter_of("failed", xfailed=True) == "S"
    dns = {"answers": {"127.0.0.1:53": ["192.0.2.2", "192.0.2.1"], "8.8.8.8:53": "servfail"}}
    assert key_facts("dns", dns) == {"answers": ["192.0.2.1", "192.0.2.2"]}
    assert key_facts("tls", TLS_DETAILS, "127.0.0.1") == {
        "addresses": ["127.0.0.1"],
        "serial": "51033e9b",
        "issuer": "CN=Open-AutoGLM demo CA",
        "not_after": "2026-12-14T15:45:46Z",
        "days_left": 9,
    }
    http = {"status": 200, "timings_ms": {"dns": 1.5, "total": 5.4}, "addresses": {"::1": {}, "127.0.0.1": {}}}
    assert key_facts("http", http, "127.0.0.1") == {
        "addresses": ["127.0.0.1", "::1"],
        "status": 200,
        "latency_ms": 5.4,
        "dns_ms": 1.5,
    }


def test_from_demo_report(store: HistoryStore) -> None:
    """A real report's results (shape of reports/demo.json) go in unchanged."""
    path = Path(__file__).with_name("demo_results.json")
    results = json.loads(path.read_text())
    history = record_run(store, run(0, env="demo"), [CheckRecord.from_result(r) for r in results])
    assert {r["id"] for r in results} == set(history.checks)
    tls = next(r for r in results if r["check"] == "tls")
    assert history.checks[tls["id"]].state == "pending" and history.checks[tls["id"]].recent == "F"


def test_duplicate_ids_are_refused(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="twice"):
        record_run(store, run(0), [rec("tcp[a]", "P"), rec("tcp[a]", "F")])
