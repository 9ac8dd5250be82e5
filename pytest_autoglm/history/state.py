"""The alerting state machine of one check: pure functions, no store, no clock.

::

    ok/resolved --fail--> pending --(after failing runs)--> firing --(resolve_after passes)--> resolved --pass--> ok
                 \\------(after == 1)------------------------/  ^
    pending --pass--> ok (it never fired: no message)           |  a failing run while firing keeps it firing

A skipped run (``S``) changes no counter and no state; it only enters ``recent``. Failing
means ``F``, ``W`` or ``E`` (models.FAILING). An *episode* is one stretch from the first
failing run to the run that ends it (ok or resolved); notifications are keyed by it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pytest_autoglm.history.models import (
    COMPARED_FACTS,
    FAILING,
    FLAP_SWITCHES,
    RECENT,
    AlertPolicy,
    CheckHistory,
    CheckRecord,
    FactChange,
    State,
)


@dataclass(slots=True)
class CheckState:
    """What the store keeps per (environment, vantage, check) between runs.

    Not frozen: it is internal, and 10,000 frozen inits per run cost a measurable share of the write.
    """

    check_id: str
    state: State = "ok"
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    episode: int = 0
    episode_started: str | None = None
    fired_at: str | None = None
    last_change: str | None = None
    last_letter: str | None = None
    recent: str = ""
    #: The last known compared facts (models.COMPARED_FACTS) as canonical JSON: compared as text first.
    facts_text: str = "{}"
    target: str = ""
    check: str = ""
    last_run_id: int | None = None


def switches(recent: str) -> int:
    """How often the judged outcomes in ``recent`` switch between passing and failing."""
    if "P" not in recent or not FAILING.intersection(recent):
        return 0  # the usual case, cheaply
    judged = [letter in FAILING for letter in recent if letter != "S"]
    return sum(1 for a, b in itertools.pairwise(judged) if a != b)


def advance(
    prior: CheckState | None, record: CheckRecord, policy: AlertPolicy, at: str, run_id: int
) -> tuple[CheckState, CheckHistory]:
    """The check's next state after one run, and its ``history`` for the report."""
    old = prior or CheckState(record.id)
    letter = record.letter
    recent = (old.recent + letter)[-RECENT:]
    state: State = old.state
    failures, passes = old.consecutive_failures, old.consecutive_passes
    episode, started, fired_at = old.episode, old.episode_started, old.fired_at
    last_change = old.last_change
    transition: Literal["firing", "resolved"] | None = None

    if letter != "S":
        failing = letter in FAILING
        if old.last_letter is None or (old.last_letter in FAILING) != failing:
            last_change = at
        if failing:
            failures, passes = failures + 1, 0
            if state in ("ok", "resolved"):
                episode, started, fired_at = episode + 1, at, None
                state = "pending"
            if state == "pending" and failures >= policy.after:
                state, fired_at, transition = "firing", at, "firing"
        else:
            failures, passes = 0, passes + 1
            if state == "pending":
                state, started = "ok", None
            elif state == "firing" and passes >= policy.resolve_after:
                state, transition = "resolved", "resolved"
            elif state == "resolved":
                state, started = "ok", None

    new = CheckState(
        check_id=record.id,
        state=state,
        consecutive_failures=failures,
        consecutive_passes=passes,
        episode=episode,
        episode_started=started,
        fired_at=fired_at,
        last_change=last_change or at,
        last_letter=letter if letter != "S" else old.last_letter,
        recent=recent,
        facts_text=old.facts_text,
        target=record.target or old.target,
        check=record.check or old.check,
        last_run_id=run_id,
    )
    history = CheckHistory(
        state=state,
        consecutive_failures=failures,
        failing_since=started if state in ("pending", "firing") else None,
        last_change=new.last_change,
        flapping=switches(recent) >= FLAP_SWITCHES,
        recent=recent,
        transition=transition,
        episode=episode,
        episode_started=started,
        fired_at=fired_at,
        letter=letter,
        reason=record.reason,
        layer=record.layer,
        message=record.message,
    )
    return new, history


def fact_changes(known: Mapping[str, Any], record: CheckRecord) -> list[FactChange]:
    """Compared facts (models.COMPARED_FACTS) known before and learnt in this run that differ."""
    return [
        FactChange(record.id, name, known[name], record.facts[name])
        for name in COMPARED_FACTS
        if name in known and name in record.facts and known[name] != record.facts[name]
    ]
