"""Typed records every report shares: one result's facts, the JSON document, the selection, the counts.

A result travels from ``plugin/outcomes.py`` (``report.__dict__["autoglm"]``: builtin types only,
so it crosses xdist) to the sink as :class:`ResultFacts`; the sink turns the facts of one
environment into a :class:`ReportDocument`; the JSON file, the HTML page and the terminal
summary are all written from that document. The counts every output prints are computed
once, by :func:`count_results`, and named once, by :func:`count_phrases`.

No pytest here: this module is plain data, importable by any script that reads a report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

#: The attribute of a pytest report that carries one result's facts (builtin types only: pytest
#: serializes ``report.__dict__`` across xdist, so the facts reach the controller's sink).
REPORT_ATTR = "autoglm"


class HistoryEntry(TypedDict):
    """``history`` of a result (results.md, version 1.1; docs/history.md): the check's past, when history is on."""

    state: str  # ok | pending | firing | resolved
    consecutive_failures: int
    failing_since: str | None
    last_change: str | None
    flapping: bool
    recent: str  # the last 20 outcomes, oldest first: P passed, F failed, W warned, E error, S skipped


class RunIds(TypedDict):
    """``run`` of the JSON report: this run's id in the history store and the environment's previous run."""

    id: int
    previous_id: int | None


class FactChangeEntry(TypedDict):
    id: str
    field: str
    before: Any
    after: Any


class ChangesEntry(TypedDict):
    """``changes`` of the JSON report: what changed since the previous run, among the checks this run judged."""

    new_failures: list[str]
    fixed: list[str]
    still_failing: list[str]
    facts: list[FactChangeEntry]


class ResultEntry(TypedDict):
    """One entry of ``results`` in the JSON report (contract: results.md), in the contract's key order."""

    id: str
    target: str
    check: str
    subject: str
    outcome: str  # passed | failed | error | skipped
    layer: str | None
    reason: str | None
    message: str
    address: str | None
    severity: str  # critical | warning
    attempts: int
    duration_ms: float
    details: dict[str, Any]
    warned: NotRequired[bool]  # extension: a warning-severity failure that did not fail the run
    xfailed: NotRequired[bool]  # extension: a failure or error the user's xfail mark expected
    vantage: NotRequired[str]  # 1.1 (issue 17): where the check ran from, when the run defines vantages
    history: NotRequired[HistoryEntry]  # extension (history on): the check's past


class ResultFacts(ResultEntry):
    """What ``plugin/outcomes.py`` puts on a pytest report: an entry plus where it belongs."""

    environment: str
    inventory: str
    order: int  # the check's position in the inventory: the reports keep inventory order


class Summary(TypedDict):
    """``summary`` of the JSON report.

    ``passed``, ``failed``, ``skipped`` and ``error`` count the entries by ``outcome`` (the contract's
    keys; they add up to the number of results). The other keys are the counts every output prints
    (see :class:`Counts`), plus ``warnings``, kept from version 1.0.
    """

    passed: int
    failed: int
    skipped: int
    error: int
    warnings: int
    xfailed: int
    failing: int
    root_causes: int
    blocked: int
    errors: int
    warned: int
    retried: int
    spoiled_attempts: int  # extension: attempts the checker's own lateness spoiled (repeated, not judged)


class Selection(TypedDict):
    """``selection`` of the JSON report (results.md, version 1.1): was every planned check run?"""

    partial: bool  # some checks of this environment were deselected, or the run stopped before them
    deselected: int  # checks of this environment left out before the run (-k, -m, --lf, node ids ...)
    expression: str  # how the run was narrowed, as pytest options: "-k api -m tcp"; "" when it was not
    planned: int  # extension: checks in the inventory of this environment
    selected: int  # extension: checks selected to run
    not_run: int  # extension: selected, but the run stopped before reporting them
    stopped_early: bool  # extension: -x, --maxfail or an interrupt ended the run
    narrowed_by: list[
        str
    ]  # extension: keyword, marker, last_failed, stepwise, deselect, node_ids, plugin, stopped_early


class VantageFacts(TypedDict):
    """What one vantage saw of a diagnosed check (``by_vantage`` of a diagnosis)."""

    id: str  # the item's id, with its @vantage
    outcome: str
    reason: str | None
    address: str | None
    state: NotRequired[str]  # tcp: open | refused | filtered | unreachable
    answers: NotRequired[list[str]]  # dns: the records (and codes such as nxdomain) every resolver gave


class DiagnosisEntry(TypedDict):
    """One entry of ``vantages.diagnoses`` in the JSON report (docs/reports.md, Vantages)."""

    target: str
    check: str
    subject: str  # tcp: the port ("8080"); others: the check's subject without @vantage
    pattern: str  # loopback_bind | firewall_drop | firewall_reject | split_horizon | differs (crossvantage.py)
    message: str
    affected: list[str]  # the vantages the pattern is about (where it is refused, dropped, resolved otherwise ...)
    by_vantage: dict[str, VantageFacts]


class VantagesEntry(TypedDict):
    """``vantages`` of the JSON report: present only when the results carry a vantage."""

    names: list[str]
    diagnoses: list[DiagnosisEntry]


class _DocumentBase(TypedDict):
    schema: str
    environment: str
    inventory: str
    started_at: str
    duration_s: float
    summary: Summary
    selection: Selection
    results: list[ResultEntry]


class ReportDocument(_DocumentBase, total=False):
    """The JSON report of one environment (``autoglm-results/1``); HTML and terminal are rendered from it."""

    partial: bool  # extension of 1.0, kept: present and true only when the run stopped early
    run: RunIds  # extension (history on): this run in the history store
    changes: ChangesEntry  # extension (history on): what changed since the previous run
    vantages: VantagesEntry  # 1.1 (issue 17), only when the results carry a vantage: names and diagnoses


def full_selection(count: int) -> Selection:
    """The selection of a run that ran every planned check."""
    return Selection(
        partial=False,
        deselected=0,
        expression="",
        planned=count,
        selected=count,
        not_run=0,
        stopped_early=False,
        narrowed_by=[],
    )


# ----------------------------------------------------------------------------- the counts


def fails_run(entry: Mapping[str, Any]) -> bool:
    """An error, or a failure that failed the run (a warning-severity failure is only ``warned``,
    and one the user marked xfail is ``xfailed``)."""
    if entry.get("xfailed"):
        return False
    if entry.get("outcome") == "error":
        return True
    return entry.get("outcome") == "failed" and not entry.get("warned")


def is_upstream(entry: Mapping[str, Any]) -> bool:
    return entry.get("outcome") == "failed" and entry.get("reason") == "upstream"


def attempts_of(entry: Mapping[str, Any]) -> int:
    value = entry.get("attempts")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def bucket_of(entry: Mapping[str, Any]) -> str:
    """The one count an entry belongs to: ``failing``, ``errors``, ``warned``, ``xfailed``, ``passed``
    or ``skipped``. Every entry is in exactly one, so the counts add up to the number of results."""
    outcome = entry.get("outcome")
    if entry.get("xfailed") and outcome in ("failed", "error"):
        return "xfailed"
    if outcome == "error":
        return "errors"
    if outcome == "failed":
        return "warned" if entry.get("warned") else "failing"
    return "passed" if outcome == "passed" else "skipped"


@dataclass(frozen=True)
class Counts:
    """The counts of one environment, each item counted once; the same words in every output.

    ``failing`` is what pytest prints as "failed": failures that fail the run, made of
    ``root_causes`` (failures not caused by a lower layer) and ``blocked`` (reason ``upstream``).
    ``errors`` is pytest's "error", ``warned`` its "warned", ``xfailed`` its "xfailed".
    ``retried`` is part of ``passed`` (passed only after retries).
    """

    total: int = 0
    failing: int = 0
    root_causes: int = 0
    blocked: int = 0
    errors: int = 0
    warned: int = 0
    xfailed: int = 0
    passed: int = 0
    retried: int = 0
    skipped: int = 0


def count_results(entries: Iterable[Mapping[str, Any]]) -> Counts:
    """The one place the counts are computed (the JSON summary, the HTML and the terminal read them)."""
    buckets = {"failing": 0, "errors": 0, "warned": 0, "xfailed": 0, "passed": 0, "skipped": 0}
    blocked = retried = total = 0
    for entry in entries:
        total += 1
        bucket = bucket_of(entry)
        buckets[bucket] += 1
        blocked += bucket == "failing" and is_upstream(entry)
        retried += bucket == "passed" and attempts_of(entry) > 1
    return Counts(total=total, root_causes=buckets["failing"] - blocked, blocked=blocked, retried=retried, **buckets)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def count_phrases(counts: Counts) -> list[str]:
    """The counts in words, as the terminal summary and the HTML print them (zero counts left out,
    except ``passed``). The parts in parentheses are part of the count before them, not added to it."""
    phrases: list[str] = []
    if counts.failing:
        detail = [_plural(counts.root_causes, "root cause")] + ([f"{counts.blocked} blocked"] if counts.blocked else [])
        phrases.append(f"{counts.failing} failing ({', '.join(detail)})")
    if counts.errors:
        phrases.append(_plural(counts.errors, "error"))
    if counts.warned:
        phrases.append(f"{counts.warned} warned")
    if counts.xfailed:
        phrases.append(f"{counts.xfailed} xfailed")
    phrases.append(f"{counts.passed} passed" + (f" ({counts.retried} after retries)" if counts.retried else ""))
    if counts.skipped:
        phrases.append(f"{counts.skipped} skipped")
    return phrases


def summary_of(entries: list[ResultEntry]) -> Summary:
    """The JSON ``summary``: the contract's counts by outcome, then the counts of :class:`Counts`."""
    by_outcome = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for entry in entries:
        by_outcome[entry["outcome"]] = by_outcome.get(entry["outcome"], 0) + 1
    counts = count_results(entries)
    warnings = sum(
        1 for e in entries if e["outcome"] == "failed" and e["severity"] == "warning" and not e.get("xfailed")
    )
    return Summary(
        passed=by_outcome["passed"],
        failed=by_outcome["failed"],
        skipped=by_outcome["skipped"],
        error=by_outcome["error"],
        warnings=warnings,
        xfailed=counts.xfailed,
        failing=counts.failing,
        root_causes=counts.root_causes,
        blocked=counts.blocked,
        errors=counts.errors,
        warned=counts.warned,
        retried=counts.retried,
        spoiled_attempts=spoiled_attempts(entries),
    )


def spoiled_attempts(entries: Iterable[Mapping[str, Any]]) -> int:
    """Attempts the engine found spoiled by this machine's own lateness (``details.spoiled_attempts``)."""
    total = 0
    for entry in entries:
        details = entry.get("details")
        value = details.get("spoiled_attempts") if isinstance(details, Mapping) else None
        total += value if isinstance(value, int) and not isinstance(value, bool) else 0
    return total


def partial_phrase(selection: Mapping[str, Any] | None) -> str:
    """Why the run was partial, in the words the terminal and the HTML banner both use ("" when it was not)."""
    if not isinstance(selection, Mapping) or not selection.get("partial"):
        return ""
    parts = []
    deselected = selection.get("deselected")
    if isinstance(deselected, int) and deselected:
        how = str(selection.get("expression") or "") or "by a plugin"
        planned = selection.get("planned")
        of = f" of {planned}" if isinstance(planned, int) else ""
        parts.append(f"{deselected}{of} checks deselected ({how})")
    if selection.get("stopped_early"):
        not_run = selection.get("not_run")
        parts.append(f"stopped early (-x, --maxfail or an interrupt), {not_run} not run")
    return "partial run: " + ("; ".join(parts) or "not every check ran")
