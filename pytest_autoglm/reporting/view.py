"""Facts -> view, shared by the HTML page and the terminal summary: item states, matrix cells,
root causes and the verdict. Both outputs read the same :class:`ReportDocument`, so they agree.

The document may hold anything a server sent (see html_report), so these functions read it
defensively (``.get``, type checks) and never trust a value's type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

from pytest_autoglm.core.values import format_duration
from pytest_autoglm.inventory.plan import LOCAL_VANTAGE
from pytest_autoglm.reporting.records import Counts, ResultEntry, attempts_of, fails_run, is_upstream

#: The matrix columns, in the order an engineer troubleshoots.
LAYERS = ("dns", "tcp", "tls", "http", "cors")
#: Columns shown only when a run has checks of that kind (issue 19), so other reports keep their shape.
EXTRA_LAYERS = ("icmp", "grpc", "group")


def layers_of(results: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The matrix columns of a run: :data:`LAYERS`, then the extra kinds it has checks of."""
    kinds = {text_of(entry.get("check")) for entry in results}
    return LAYERS + tuple(layer for layer in EXTRA_LAYERS if layer in kinds)


def text_of(value: Any) -> str:
    return "" if value is None else str(value)


def number_of(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def is_problem(entry: Mapping[str, Any]) -> bool:
    return entry.get("outcome") in ("failed", "error")


def item_state(entry: Mapping[str, Any]) -> str:
    """One of ``pass``, ``retried``, ``warn``, ``xfail``, ``fail``, ``blocked``, ``error``, ``skip``."""
    if entry.get("xfailed"):
        return "xfail"
    outcome = entry.get("outcome")
    if outcome == "passed":
        return "retried" if attempts_of(entry) > 1 else "pass"
    if outcome == "error":
        return "error"
    if outcome == "failed":
        if entry.get("severity") == "warning":
            return "warn"
        return "blocked" if is_upstream(entry) else "fail"
    return "skip"


#: Item state -> the matrix colour it stands for.
STATE_COLOUR = {
    "pass": "pass",
    "retried": "warn",
    "warn": "warn",
    "xfail": "warn",
    "fail": "fail",
    "blocked": "fail",
    "error": "fail",
    "skip": "none",
}

# ----------------------------------------------------------------------------- matrix cells


@dataclass
class Cell:
    """One target x layer cell of the matrix."""

    layer: str
    colour: str  # pass | warn | fail | none (a fixed vocabulary: safe as a class name)
    mark: str  # short terminal mark: ok, ok*, WARN, XF, FAIL, ERR, up, skip, -
    label: str  # word on the HTML cell
    note: str  # second line on the HTML cell (counts or reasons)
    entries: list[ResultEntry] = field(default_factory=list)
    anchor: str | None = None  # "#f3": the first failure card of this cell


class _Tally:
    """What a cell's note is made of: the states of its items and, when a note needs them, the faults."""

    def __init__(self, column: str, entries: Sequence[ResultEntry]) -> None:
        self.column = column
        self.entries = entries
        self.states = Counter(item_state(e) for e in entries)
        self.total = len(entries)

    @property
    def passed(self) -> int:
        return self.states["pass"] + self.states["retried"]

    @cached_property
    def reasons(self) -> list[str]:
        """Faults of the non-upstream problems, the layer named when it is another one than the column's."""
        return _unique(_fault_in(self.column, e) for e in self.entries if is_problem(e) and not is_upstream(e))

    @property
    def lower(self) -> list[str]:
        """Layers whose failure blocked items of this cell."""
        return _unique(text_of(e.get("layer")) for e in self.entries if is_upstream(e))

    def first_reasons(self, fallback: str = "") -> str:
        return ", ".join(self.reasons[:2]) or fallback


def _fail_label(t: _Tally) -> str:
    failed = t.states["fail"] + t.states["blocked"] + t.states["error"]
    return "FAIL" if failed == t.total else f"{failed}/{t.total} FAIL"


#: The cell of a layer is decided by the most serious state among its items, in this order:
#: (state present, colour, terminal mark, HTML label, HTML note).
CELL_RULES: tuple[tuple[str, str, str, Callable[[_Tally], str], Callable[[_Tally], str]], ...] = (
    ("fail", "fail", "FAIL", _fail_label, lambda t: t.first_reasons() + (" ..." if len(t.reasons) > 2 else "")),
    ("error", "fail", "ERR", lambda t: "ERROR", lambda t: t.first_reasons()),
    ("blocked", "fail", "up", lambda t: "BLOCKED", lambda t: f"by {', '.join(t.lower)}"),
    ("warn", "warn", "WARN", lambda t: "WARNING", lambda t: t.first_reasons(f"{t.passed}/{t.total} passed")),
    ("xfail", "warn", "XF", lambda t: "XFAIL", lambda t: t.first_reasons("known failure")),
    ("retried", "warn", "ok*", lambda t: "OK, RETRIED", lambda t: f"{t.states['retried']} after retries"),
    ("pass", "pass", "ok", lambda t: "OK", lambda t: f"{t.passed}/{t.total} passed"),
    ("skip", "none", "skip", lambda t: "skipped", lambda t: f"{t.total} skipped"),
)


def cell_for(layer: str, entries: Sequence[ResultEntry]) -> Cell:
    if not entries:
        return Cell(layer, "none", "-", "not checked", "", [])
    tally = _Tally(layer, entries)
    _state, colour, mark, label, note = next(rule for rule in CELL_RULES if tally.states[rule[0]])
    return Cell(layer, colour, mark, label(tally), note(tally), list(entries))


def _fault_in(column: str, entry: Mapping[str, Any]) -> str:
    """The reason, prefixed with its layer when the fault lies in another layer than the column's."""
    layer, reason = text_of(entry.get("layer")), text_of(entry.get("reason"))
    return f"{layer}/{reason}" if layer and layer != column else reason


def _unique(values: Iterable[str]) -> list[str]:
    return [value for value in dict.fromkeys(values) if value]


def matrix(results: Sequence[ResultEntry]) -> list[tuple[str, list[Cell]]]:
    """Rows of (target, cells per layer), targets in inventory order; a kind outside :func:`layers_of` is left out."""
    targets: dict[str, dict[str, list[ResultEntry]]] = {}
    columns = layers_of(results)
    for entry in results:
        per_layer = targets.setdefault(text_of(entry.get("target")), {})
        per_layer.setdefault(text_of(entry.get("check")), []).append(entry)
    return [
        (name, [cell_for(layer, per_layer.get(layer, [])) for layer in columns]) for name, per_layer in targets.items()
    ]


# ----------------------------------------------------------------------------- targets x vantages (issue 17)


def vantage_of(entry: Mapping[str, Any]) -> str:
    value = entry.get("vantage")
    return value if isinstance(value, str) else ""


def vantages_of(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """The vantages the results carry: ``local`` (this process) first, then in order of first appearance;
    empty for a run without vantages. Every output lists them in this order."""
    names = dict.fromkeys(v for entry in results if (v := vantage_of(entry)))
    return sorted(names, key=lambda name: name != LOCAL_VANTAGE)  # stable: keeps the others' order


@dataclass
class VantageMatrix:
    """One layer's target x vantage matrix: a row per target with items of that layer, a cell per vantage."""

    layer: str
    vantages: list[str]
    rows: list[tuple[str, list[Cell]]]  # (target, a cell per vantage, in ``vantages`` order)


def vantage_matrices(results: Sequence[ResultEntry]) -> list[VantageMatrix]:
    """A target x vantage matrix per layer that has items (the columns of :func:`layers_of`, in order).

    Each cell is :func:`cell_for` the items of that target, layer and vantage, so it is coloured
    and worded like the target x layer matrix. Empty for a run without vantages.
    """
    vantages = vantages_of(results)
    if not vantages:
        return []
    grid: dict[str, dict[str, dict[str, list[ResultEntry]]]] = {}  # layer -> target -> vantage -> items
    for entry in results:
        if vantage := vantage_of(entry):
            per_target = grid.setdefault(text_of(entry.get("check")), {})
            per_target.setdefault(text_of(entry.get("target")), {}).setdefault(vantage, []).append(entry)
    return [
        VantageMatrix(
            layer,
            vantages,
            [(target, [cell_for(layer, cells.get(v, [])) for v in vantages]) for target, cells in grid[layer].items()],
        )
        for layer in layers_of(results)
        if layer in grid
    ]


def target_vantage_cells(results: Sequence[ResultEntry]) -> tuple[list[str], list[tuple[str, list[Cell]]]]:
    """(vantages, rows of (target, a cell per vantage over all the target's layers)): the terminal's compact matrix."""
    vantages = vantages_of(results)
    targets: dict[str, dict[str, list[ResultEntry]]] = {}
    for entry in results:
        if vantage := vantage_of(entry):
            targets.setdefault(text_of(entry.get("target")), {}).setdefault(vantage, []).append(entry)
    return vantages, [
        (target, [cell_for("", per_vantage.get(v, [])) for v in vantages]) for target, per_vantage in targets.items()
    ]


def first_fault_layer(entries: Iterable[Mapping[str, Any]]) -> str:
    """The lowest layer (troubleshooting order) of a problem that is not ``upstream``; "" when there is none."""
    layers = [text_of(e.get("layer")) for e in entries if is_problem(e) and not is_upstream(e)]
    order = {layer: i for i, layer in enumerate(LAYERS + EXTRA_LAYERS)}
    return min((layer for layer in layers if layer), key=lambda layer: order.get(layer, len(order)), default="")


# ----------------------------------------------------------------------------- root causes and the verdict


@dataclass
class RootCause:
    entry: ResultEntry
    blocked: list[ResultEntry] = field(default_factory=list)


def root_causes(results: Sequence[ResultEntry]) -> list[RootCause]:
    """Failures and errors that are not ``upstream``, each with the items that failed because of it.

    An upstream item names its lower item in ``details.upstream``; chains are followed
    to the root. An upstream item whose root is not in the document gets a card of its own.
    Order: what failed the run first, then warnings; inventory order within each.
    """
    by_id = {text_of(e.get("id")): e for e in results}
    causes = {text_of(e.get("id")): RootCause(e) for e in results if is_problem(e) and not is_upstream(e)}
    orphans: list[RootCause] = []
    for entry in results:
        if not is_upstream(entry):
            continue
        root = _root_of(entry, by_id)
        if root is not None and root in causes:
            causes[root].blocked.append(entry)
        else:
            orphans.append(RootCause(entry))
    ordered = [*causes.values(), *orphans]
    return sorted(ordered, key=lambda c: 0 if fails_run(c.entry) else 1)  # stable: keeps inventory order


def _root_of(entry: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> str | None:
    current: Mapping[str, Any] = entry
    seen: set[str] = set()
    while is_upstream(current):
        details = current.get("details")
        lower = text_of(details.get("upstream")) if isinstance(details, Mapping) else ""
        if not lower or lower in seen or lower not in by_id:
            return None
        seen.add(lower)
        current = by_id[lower]
    return text_of(current.get("id"))


@dataclass(frozen=True)
class EnvironmentVerdict:
    """The verdict a report opens with, for a whole environment (not a probe's ``core.records.Verdict``)."""

    word: str  # PASS | FAIL | PASS WITH WARNINGS | NO RESULTS
    colour: str  # pass | fail | warn | none


def verdict_of(counts: Counts) -> EnvironmentVerdict:
    if counts.failing or counts.errors:
        return EnvironmentVerdict("FAIL", "fail")
    if counts.warned or counts.retried or counts.xfailed:
        return EnvironmentVerdict("PASS WITH WARNINGS", "warn")
    if counts.passed:
        return EnvironmentVerdict("PASS", "pass")
    return EnvironmentVerdict("NO RESULTS", "none")


def results_of(document: Mapping[str, Any]) -> list[ResultEntry]:
    """The document's result entries (anything that is not an object is left out).

    Typed as entries, read as untrusted: every reader here uses ``.get`` and checks types.
    """
    raw = document.get("results")
    return [cast(ResultEntry, r) for r in raw if isinstance(r, dict)] if isinstance(raw, list) else []


# ----------------------------------------------------------------------------- numbers


def format_ms(value: Any) -> str:
    """A milliseconds figure from a report, in the one duration format (``-`` when absent)."""
    ms = number_of(value)
    return "-" if ms is None else format_duration(ms / 1000)


def http_total_ms(entry: Mapping[str, Any]) -> float | None:
    details = entry.get("details")
    timings = details.get("timings_ms") if isinstance(details, Mapping) else None
    return number_of(timings.get("total")) if isinstance(timings, Mapping) else None
