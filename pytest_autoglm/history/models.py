"""Typed records in and out of the history store: plain frozen dataclasses, no pytest, no I/O.

``RunRecord`` and ``CheckRecord`` are what a run hands over; ``RunHistory`` (with a
``CheckHistory`` per check) is what comes back, shaped for the JSON report's ``run``,
``changes`` and per-result ``history`` keys (results.md, version 1.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

#: One letter per outcome, in ``recent``: passed, failed, warned, error, skipped.
Letter = Literal["P", "F", "W", "E", "S"]
State = Literal["ok", "pending", "firing", "resolved"]
Transition = Literal["firing", "resolved", "reminder"]

#: Letters that count as a failing run of a check (``after`` counts them). ``S`` counts as nothing.
FAILING: frozenset[str] = frozenset("FWE")
#: How many outcomes ``recent`` keeps.
RECENT = 20
#: ``flapping`` is true when the last ``RECENT`` judged outcomes switch between passing and
#: failing at least this many times (4 of 19 possible switches, about Nagios' 20 % threshold).
FLAP_SWITCHES = 4
#: Facts compared between runs for ``changes.facts``. ``days_left`` and ``latency_ms`` are kept
#: (trend page, metrics) but change every run, so they are not reported as changes.
COMPARED_FACTS = ("answers", "addresses", "serial", "issuer", "not_after", "status")
#: Measurements kept with every run's result (trend page), never compared.
VOLATILE_FACTS = ("latency_ms", "dns_ms", "days_left")
DEFAULT_VANTAGE = "local"


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """The store's and the report's timestamp text: sortable, UTC, second precision."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def letter_of(outcome: str, *, warned: bool = False, xfailed: bool = False) -> Letter:
    """The ``recent`` letter of a result; an expected failure (xfail) is not judged, like a skip."""
    if outcome == "passed":
        return "P"
    if outcome == "failed":
        return "S" if xfailed else "W" if warned else "F"
    if outcome == "error":
        return "E"
    return "S"


def inventory_digest(source: str | bytes | Path) -> str:
    """sha256 of the inventory's bytes: tells runs of one inventory version apart."""
    data = source.read_bytes() if isinstance(source, Path) else source
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The inventory's ``alerting:`` block of one target (or of ``defaults``).

    ``after`` consecutive failing runs make a check fire; ``resolve_after`` consecutive passing
    runs resolve it; while firing, a reminder goes out every ``remind_every`` (None: never).
    ``notify`` holds Apprise URLs with secrets already interpolated: never log them as they are.
    """

    after: int = 3
    resolve_after: int = 1
    remind_every: timedelta | None = timedelta(hours=24)
    notify: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.after < 1 or self.resolve_after < 1:
            raise ValueError("after and resolve_after must be at least 1")
        if self.remind_every is not None and self.remind_every <= timedelta(0):
            raise ValueError("remind_every must be positive")


#: The policy of a check without an ``alerting:`` block: fire after 3, no one notified.
DEFAULT_POLICY = AlertPolicy()


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of one environment, as the report sink knows it at session end."""

    environment: str
    started_at: datetime
    ended_at: datetime
    inventory_digest: str = ""
    partial: bool = False
    selection: Mapping[str, Any] | None = None
    vantage: str = DEFAULT_VANTAGE


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One check's result in one run, reduced to what history keeps."""

    id: str
    letter: Letter
    target: str = ""
    check: str = ""
    reason: str | None = None
    layer: str | None = None
    message: str = ""
    attempts: int = 1
    duration_ms: float = 0.0
    address: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        return self.letter in FAILING

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> CheckRecord:
        """From one entry of the JSON report's ``results`` (results.md)."""
        details = result.get("details") or {}
        return cls(
            id=str(result["id"]),
            letter=letter_of(
                str(result.get("outcome")), warned=bool(result.get("warned")), xfailed=bool(result.get("xfailed"))
            ),
            target=str(result.get("target") or ""),
            check=str(result.get("check") or ""),
            reason=result.get("reason"),
            layer=result.get("layer"),
            message=str(result.get("message") or ""),
            attempts=int(result.get("attempts") or 0),
            duration_ms=float(result.get("duration_ms") or 0.0),
            address=result.get("address"),
            facts=key_facts(str(result.get("check") or ""), details, result.get("address")),
        )


def key_facts(check: str, details: Mapping[str, Any], address: str | None = None) -> dict[str, Any]:
    """The facts worth comparing between runs, from a result's ``details`` (probes/*.py shapes).

    ``answers``: the DNS answer set (records of every resolver that answered, sorted);
    ``addresses``: the addresses the check went to; ``serial``/``issuer``/``not_after``/
    ``days_left``: the leaf certificate; ``status``/``latency_ms``/``dns_ms``: HTTP.
    A fact the run did not learn (a timeout) is absent, not null.
    """
    facts: dict[str, Any] = {}
    answers = details.get("answers")
    if check == "dns" and isinstance(answers, Mapping):
        records = {str(r) for rs in answers.values() if isinstance(rs, list) for r in rs}
        if records or any(isinstance(rs, list) for rs in answers.values()):
            facts["answers"] = sorted(records)
    per_address = details.get("addresses")
    if isinstance(per_address, Mapping) and per_address:
        facts["addresses"] = sorted(str(a) for a in per_address)
    elif address:
        facts["addresses"] = [str(address)]
    for key in ("serial", "issuer", "not_after", "days_left"):
        if details.get(key) is not None:
            facts[key] = details[key]
    if check in ("http", "cors") and isinstance(details.get("status"), int):
        facts["status"] = details["status"]
    timings = details.get("timings_ms")
    if isinstance(timings, Mapping):
        if isinstance(timings.get("total"), int | float):
            facts["latency_ms"] = float(timings["total"])
        if isinstance(timings.get("dns"), int | float):
            facts["dns_ms"] = float(timings["dns"])
    return facts


@dataclass(frozen=True, slots=True)
class CheckHistory:
    """A check's ``history`` in the JSON report, plus what alerting needs (not in ``as_json``)."""

    state: State
    consecutive_failures: int
    failing_since: str | None
    last_change: str | None
    flapping: bool
    recent: str
    # for notify_transitions
    transition: Literal["firing", "resolved"] | None = None
    episode: int = 0
    episode_started: str | None = None
    fired_at: str | None = None
    letter: Letter = "S"
    reason: str | None = None
    layer: str | None = None
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "failing_since": self.failing_since,
            "last_change": self.last_change,
            "flapping": self.flapping,
            "recent": self.recent,
        }


@dataclass(frozen=True, slots=True)
class FactChange:
    id: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed since the environment's previous run (only checks this run judged)."""

    new_failures: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    still_failing: tuple[str, ...] = ()
    facts: tuple[FactChange, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "new_failures": list(self.new_failures),
            "fixed": list(self.fixed),
            "still_failing": list(self.still_failing),
            "facts": [{"id": f.id, "field": f.field, "before": f.before, "after": f.after} for f in self.facts],
        }


@dataclass(frozen=True, slots=True)
class RunHistory:
    """What ``record_run`` returns: the run's ids, its changes and each judged check's history."""

    run_id: int
    previous_id: int | None
    environment: str
    vantage: str
    started_at: str
    checks: Mapping[str, CheckHistory]
    changes: Changes

    def run_json(self) -> dict[str, Any]:
        """The JSON report's top-level ``run``."""
        return {"id": self.run_id, "previous_id": self.previous_id}

    def history_json(self, check_id: str) -> dict[str, Any] | None:
        """A result's ``history`` (None: the check was not in this run)."""
        found = self.checks.get(check_id)
        return None if found is None else found.as_json()


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one state change (or reminder) of one check."""

    environment: str
    vantage: str
    check_id: str
    kind: Transition
    episode: int
    seq: int
    title: str
    body: str
    urls: tuple[str, ...] = field(repr=False, default=())
    sent: bool = False
    error: str | None = None

    def with_result(self, sent: bool, error: str | None) -> Notification:
        return Notification(
            self.environment,
            self.vantage,
            self.check_id,
            self.kind,
            self.episode,
            self.seq,
            self.title,
            self.body,
            self.urls,
            sent,
            error,
        )
