"""``record_run``: one run into the store in one transaction, and what it means for each check."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pytest_autoglm.history.models import (
    COMPARED_FACTS,
    DEFAULT_POLICY,
    FAILING,
    VOLATILE_FACTS,
    AlertPolicy,
    Changes,
    CheckHistory,
    CheckRecord,
    FactChange,
    RunHistory,
    RunRecord,
    iso,
    utc,
)
from pytest_autoglm.history.state import CheckState, advance, fact_changes
from pytest_autoglm.history.store import HistoryStore, Tx

_STATE_COLUMNS = (
    "key, check_id, target, kind, state, consecutive_failures, consecutive_passes, episode, episode_started, "
    "fired_at, last_change, last_letter, recent, facts, last_run_id"
)


#: Columns of ``checks`` written per run, in the order of the rows record_run builds.
_CHECK_COLUMNS = (
    "environment",
    "vantage",
    "check_id",
    "target",
    "kind",
    "state",
    "consecutive_failures",
    "consecutive_passes",
    "episode",
    "episode_started",
    "fired_at",
    "last_change",
    "last_letter",
    "recent",
    "facts",
    "last_run_id",
    "last_seen",
)
#: Canonical JSON (one encoder: ``json.dumps`` with options builds a new one per call).
_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str, ensure_ascii=False).encode


def _load_states(tx: Tx, environment: str, vantage: str) -> dict[str, tuple[int, CheckState]]:
    rows = tx.rows(f"SELECT {_STATE_COLUMNS} FROM checks WHERE environment = ? AND vantage = ?", (environment, vantage))
    return {
        row[1]: (
            int(row[0]),
            CheckState(
                check_id=row[1],
                target=row[2],
                check=row[3],
                state=row[4],
                consecutive_failures=row[5],
                consecutive_passes=row[6],
                episode=row[7],
                episode_started=row[8],
                fired_at=row[9],
                last_change=row[10],
                last_letter=row[11],
                recent=row[12],
                facts_text=row[13],
                last_run_id=row[14],
            ),
        )
        for row in rows
    }


def record_run(
    store: HistoryStore,
    run: RunRecord,
    checks: Sequence[CheckRecord],
    policies: Mapping[str, AlertPolicy] | None = None,
    *,
    default_policy: AlertPolicy = DEFAULT_POLICY,
) -> RunHistory:
    """Store one run and return each check's history, the run ids and the changes.

    ``policies`` maps check ids to their target's ``alerting`` (``default_policy`` otherwise).
    Only checks in ``checks`` are judged: a partial run leaves the others as they were (never
    "fixed"). Old runs beyond the store's ``keep`` are deleted in the same transaction.
    Raises ``HistoryUnavailable``; then nothing of this run is stored.
    """
    policies = policies or {}
    at = iso(run.started_at)
    seen: set[str] = set()
    for record in checks:
        if record.id in seen:
            raise ValueError(f"check id {record.id!r} appears twice in one run")
        seen.add(record.id)

    with store.transaction(f"env:{run.environment}:{run.vantage}") as tx:
        found = tx.rows(
            "SELECT MAX(id) FROM runs WHERE environment = ? AND vantage = ?", (run.environment, run.vantage)
        )[0][0]
        previous_id = None if found is None else int(found)
        run_id = tx.insert_id(
            "INSERT INTO runs (environment, vantage, inventory_digest, started_at, ended_at, partial, selection,"
            " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.environment,
                run.vantage,
                run.inventory_digest,
                at,
                iso(run.ended_at),
                int(run.partial),
                None if run.selection is None else _dumps(dict(run.selection)),
                iso(utc(run.ended_at)),
            ),
        )
        states = _load_states(tx, run.environment, run.vantage)

        histories: dict[str, CheckHistory] = {}
        upserts: list[tuple[Any, ...]] = []
        new_failures: list[str] = []
        fixed: list[str] = []
        still: list[str] = []
        facts: list[FactChange] = []
        logs: list[str | None] = []
        for record in checks:
            prior = states.get(record.id, (0, None))[1]
            new, history = advance(prior, record, policies.get(record.id, default_policy), at, run_id)
            histories[record.id] = history
            before = None if prior is None else prior.last_letter
            if record.letter != "S":
                if record.failing:
                    (still if before in FAILING else new_failures).append(record.id)
                elif before in FAILING:
                    fixed.append(record.id)
            stable = {k: record.facts[k] for k in COMPARED_FACTS if k in record.facts}
            facts_text = _dumps(stable)
            logged = {k: record.facts[k] for k in VOLATILE_FACTS if k in record.facts}
            if prior is None:
                logged |= stable  # the first run logs where the facts started
            elif facts_text != prior.facts_text:  # the usual case (same facts) costs no parsing
                known = json.loads(prior.facts_text)
                changed = fact_changes(known, record)
                facts.extend(changed)
                logged |= {c.field: c.after for c in changed}
                facts_text = _dumps(known | stable)
            logs.append(_dumps(logged) if logged else None)
            upserts.append(
                (
                    run.environment,
                    run.vantage,
                    record.id,
                    new.target,
                    new.check,
                    new.state,
                    new.consecutive_failures,
                    new.consecutive_passes,
                    new.episode,
                    new.episode_started,
                    new.fired_at,
                    new.last_change,
                    new.last_letter,
                    new.recent,
                    facts_text,
                    run_id,
                    at,
                )
            )
        tx.insert_many(
            "checks",
            _CHECK_COLUMNS,
            upserts,
            "ON CONFLICT (environment, vantage, check_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _CHECK_COLUMNS[3:]),
        )
        keys = {check_id: key for check_id, (key, _) in states.items()}
        if any(r.id not in keys for r in checks):  # new checks: learn their keys
            keys = {
                check_id: int(key)
                for key, check_id in tx.rows(
                    "SELECT key, check_id FROM checks WHERE environment = ? AND vantage = ?",
                    (run.environment, run.vantage),
                )
            }
        tx.insert_many(
            "results",
            ("run_id", "check_key", "outcome", "reason", "layer", "attempts", "duration_ms", "address", "facts"),
            [
                (run_id, keys[r.id], r.letter, r.reason, r.layer, r.attempts, round(r.duration_ms, 1), r.address, log)
                for r, log in zip(checks, logs, strict=True)
            ],
        )
        _expire(tx, utc(run.started_at) - store.keep)

    return RunHistory(
        run_id=run_id,
        previous_id=previous_id,
        environment=run.environment,
        vantage=run.vantage,
        started_at=at,
        checks=histories,
        changes=Changes(tuple(new_failures), tuple(fixed), tuple(still), tuple(facts)),
    )


def _expire(tx: Tx, cutoff_at: Any) -> None:
    """Retention: drop runs (and their results, notifications, vanished checks) older than the cutoff."""
    cutoff = iso(cutoff_at)
    tx.execute("DELETE FROM results WHERE run_id IN (SELECT id FROM runs WHERE started_at < ?)", (cutoff,))
    tx.execute("DELETE FROM runs WHERE started_at < ?", (cutoff,))
    tx.execute("DELETE FROM checks WHERE last_seen < ?", (cutoff,))
    tx.execute("DELETE FROM notifications WHERE updated_at < ?", (cutoff,))


def keep_from_text(text: str) -> timedelta:
    """``90d``, ``12h``, ``2w`` -> timedelta (the ``--autoglm-history-keep`` value)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"{text!r} is not a retention like 90d, 12h or 2w")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])
