"""The human report ``<environment>.html``, rendered from the JSON document itself.

The page is built from the very document :func:`json_report.build_document`
returns, so the HTML and the JSON of one environment always agree. Every string
in that document may have come from the network (DNS answers, certificate
fields, HTTP headers and bodies, server messages), so the template is rendered
with autoescape on and nothing from the document is ever marked safe. The two
tables that grow with the inventory are built in Python instead (for speed), by
two functions that escape every value they insert; their output is the only
markup the template takes as is. Values only reach HTML attributes quoted and
escaped, and class names and anchors are chosen from fixed vocabularies or
indexes, never from the facts.

The page is self-contained (inline CSS, system fonts, no script, no external
reference) so it opens from disk anywhere.

This module also holds the facts -> view logic the terminal summary shares
(:func:`cell_for`, :func:`root_causes`, :func:`verdict_of`), and the optional
extra columns for pytest-html's own ``--html`` report.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from markupsafe import Markup

from pytest_autoglm.reporting.json_report import write_atomically

#: The matrix columns, in the order an engineer troubleshoots.
LAYERS = ("dns", "tcp", "tls", "http", "cors")
TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report.html.j2"

# ----------------------------------------------------------------------------- facts -> view (shared)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def attempts_of(entry: Mapping[str, Any]) -> int:
    value = _number(entry.get("attempts"))
    return 0 if value is None else int(value)


def is_upstream(entry: Mapping[str, Any]) -> bool:
    return entry.get("outcome") == "failed" and entry.get("reason") == "upstream"


def is_problem(entry: Mapping[str, Any]) -> bool:
    return entry.get("outcome") in ("failed", "error")


def fails_run(entry: Mapping[str, Any]) -> bool:
    """An error, or a failure that failed the run (a warning-severity failure is only ``warned``,
    and one the user marked xfail is ``xfailed``)."""
    if entry.get("xfailed"):
        return False
    if entry.get("outcome") == "error":
        return True
    return entry.get("outcome") == "failed" and not entry.get("warned")


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
_COLOUR_RANK = {"none": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass
class Cell:
    """One target x layer cell of the matrix."""

    layer: str
    colour: str  # pass | warn | fail | none (a fixed vocabulary: safe as a class name)
    mark: str  # short terminal mark: ok, ok*, WARN, FAIL, ERR, up, skip, -
    label: str  # word on the HTML cell
    note: str  # second line on the HTML cell (counts or reasons)
    entries: list[dict[str, Any]] = field(default_factory=list)
    anchor: str | None = None  # "#f3": the first failure card of this cell


def cell_for(layer: str, entries: Sequence[dict[str, Any]]) -> Cell:
    if not entries:
        return Cell(layer, "none", "-", "not checked", "", [])
    states = [item_state(e) for e in entries]
    colour = max((STATE_COLOUR[s] for s in states), key=_COLOUR_RANK.__getitem__)
    total = len(entries)
    passed = sum(1 for s in states if s in ("pass", "retried"))
    reasons = _unique(_fault_in(layer, e) for e in entries if is_problem(e) and not is_upstream(e))
    if colour == "none":
        return Cell(layer, "none", "skip", "skipped", f"{total} skipped", list(entries))
    if colour == "pass":
        return Cell(layer, "pass", "ok", "OK", f"{passed}/{total} passed", list(entries))
    if colour == "warn":
        if any(s == "warn" for s in states):
            return Cell(
                layer, "warn", "WARN", "WARNING", ", ".join(reasons[:2]) or f"{passed}/{total} passed", list(entries)
            )
        if any(s == "xfail" for s in states):
            return Cell(layer, "warn", "XF", "XFAIL", ", ".join(reasons[:2]) or "known failure", list(entries))
        retried = sum(1 for s in states if s == "retried")
        return Cell(layer, "warn", "ok*", "OK, RETRIED", f"{retried} after retries", list(entries))
    if all(s in ("blocked", "pass", "retried", "skip") for s in states):
        lower = _unique(_text(e.get("layer")) for e in entries if is_upstream(e))
        return Cell(layer, "fail", "up", "BLOCKED", f"by {', '.join(lower)}", list(entries))
    if any(s == "error" for s in states) and not any(s == "fail" for s in states):
        return Cell(layer, "fail", "ERR", "ERROR", ", ".join(reasons[:2]), list(entries))
    failed = sum(1 for s in states if s in ("fail", "blocked", "error"))
    note = ", ".join(reasons[:2]) + (" ..." if len(reasons) > 2 else "")
    return Cell(layer, "fail", "FAIL", "FAIL" if failed == total else f"{failed}/{total} FAIL", note, list(entries))


def _fault_in(column: str, entry: Mapping[str, Any]) -> str:
    """The reason, prefixed with its layer when the fault lies in another layer than the column's."""
    layer, reason = _text(entry.get("layer")), _text(entry.get("reason"))
    return f"{layer}/{reason}" if layer and layer != column else reason


def _unique(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def matrix(results: Sequence[dict[str, Any]]) -> list[tuple[str, list[Cell]]]:
    """Rows of (target, cells per layer), targets in inventory order; a check kind outside LAYERS is left out."""
    targets: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for entry in results:
        per_layer = targets.setdefault(_text(entry.get("target")), {})
        per_layer.setdefault(_text(entry.get("check")), []).append(entry)
    return [
        (name, [cell_for(layer, per_layer.get(layer, [])) for layer in LAYERS]) for name, per_layer in targets.items()
    ]


@dataclass
class RootCause:
    entry: dict[str, Any]
    blocked: list[dict[str, Any]] = field(default_factory=list)


def root_causes(results: Sequence[dict[str, Any]]) -> list[RootCause]:
    """Failures and errors that are not ``upstream``, each with the items that failed because of it.

    An upstream item names its lower item in ``details.upstream``; chains are followed
    to the root. An upstream item whose root is not in the document gets a card of its own.
    Order: what failed the run first, then warnings; inventory order within each.
    """
    by_id = {_text(e.get("id")): e for e in results}
    causes = {_text(e.get("id")): RootCause(e) for e in results if is_problem(e) and not is_upstream(e)}
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


def _root_of(entry: Mapping[str, Any], by_id: Mapping[str, dict[str, Any]]) -> str | None:
    current: Mapping[str, Any] = entry
    seen: set[str] = set()
    while is_upstream(current):
        details = current.get("details")
        lower = _text(details.get("upstream")) if isinstance(details, Mapping) else ""
        if not lower or lower in seen or lower not in by_id:
            return None
        seen.add(lower)
        current = by_id[lower]
    return _text(current.get("id"))


@dataclass
class Verdict:
    word: str  # PASS | FAIL | PASS WITH WARNINGS | NO RESULTS
    colour: str  # pass | fail | warn | none
    failing: int
    warned: int
    retried: int
    xfailed: int = 0


def verdict_of(results: Sequence[dict[str, Any]]) -> Verdict:
    failing = sum(1 for e in results if fails_run(e))
    warned = sum(1 for e in results if e.get("outcome") == "failed" and e.get("warned") and not e.get("xfailed"))
    retried = sum(1 for e in results if e.get("outcome") == "passed" and attempts_of(e) > 1)
    xfailed = sum(1 for e in results if e.get("xfailed"))
    counts = (failing, warned, retried, xfailed)
    if failing:
        return Verdict("FAIL", "fail", *counts)
    if warned or retried or xfailed:
        return Verdict("PASS WITH WARNINGS", "warn", *counts)
    if any(e.get("outcome") == "passed" for e in results):
        return Verdict("PASS", "pass", *counts)
    return Verdict("NO RESULTS", "none", *counts)


def format_ms(value: Any) -> str:
    ms = _number(value)
    if ms is None:
        return "-"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def http_total_ms(entry: Mapping[str, Any]) -> float | None:
    details = entry.get("details")
    timings = details.get("timings_ms") if isinstance(details, Mapping) else None
    return _number(timings.get("total")) if isinstance(timings, Mapping) else None


# ----------------------------------------------------------------------------- the HTML view model

_PHASES = (("dns", "dns"), ("connect", "connect"), ("tls", "tls"), ("first_byte", "first byte"), ("body", "body"))
_RESULT_BADGE = {
    "pass": "PASS",
    "retried": "RETRIED",
    "warn": "WARN",
    "xfail": "XFAIL",
    "fail": "FAIL",
    "blocked": "BLOCKED",
    "error": "ERROR",
    "skip": "SKIP",
}


def _timings_text(entry: Mapping[str, Any]) -> str:
    details = entry.get("details")
    timings = details.get("timings_ms") if isinstance(details, Mapping) else None
    if not isinstance(timings, Mapping):
        return ""
    parts = [
        f"{label} {format_ms(timings.get(key))}".replace(" ", "\u00a0")  # a phase never breaks across lines
        for key, label in _PHASES
        if _number(timings.get(key)) is not None
    ]
    return " · ".join(parts)


def _detail_rows(details: Any) -> list[dict[str, Any]]:
    """Key/value rows; nested values as pretty JSON text (escaped by the template like everything else)."""
    if not isinstance(details, Mapping):
        return [] if details in (None, "", {}) else [{"key": "value", "text": _pretty(details), "block": True}]
    rows = []
    for key, value in details.items():
        if isinstance(value, Mapping | list | tuple):
            rows.append({"key": _text(key), "text": _pretty(value), "block": True})
        else:
            rows.append({"key": _text(key), "text": _text(value) if value is not None else "null", "block": False})
    return rows


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _days_colour(days: float | None) -> str:
    if days is None:
        return "none"
    if days < 0:
        return "fail"
    if days < 30:
        return "warn"
    return "pass"


def _certificate_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for entry in results:
        details = entry.get("details")
        if not isinstance(details, Mapping) or ("not_after" not in details and "days_left" not in details):
            continue
        days = _number(details.get("days_left"))
        rows.append(
            {
                "id": _text(entry.get("id")),
                "target": _text(entry.get("target")),
                "address": _text(entry.get("address") or details.get("address")) or "-",
                "subject": _text(details.get("subject")) or "-",
                "issuer": _text(details.get("issuer")) or "-",
                "not_after": _text(details.get("not_after")) or "-",
                "days_left": "-" if days is None else (f"{days:.0f} (expired)" if days < 0 else f"{days:.0f}"),
                "colour": _days_colour(days),
                "version": _text(details.get("version")),
            }
        )
    return rows


def _identity(entry: Mapping[str, Any], state: str) -> dict[str, Any]:
    """What a result row and a root-cause card both show of an item: which one it is, and its state."""
    return {
        "id": _text(entry.get("id")),
        "target": _text(entry.get("target")),
        "check": _text(entry.get("check")),
        "subject": _text(entry.get("subject")),
        "state": state,
        "colour": STATE_COLOUR[state],
        "badge": _RESULT_BADGE[state],
    }


def _result_row(entry: dict[str, Any], anchors: Mapping[str, str]) -> dict[str, Any]:
    state = item_state(entry)
    total = http_total_ms(entry)
    layer, reason = _text(entry.get("layer")), _text(entry.get("reason"))
    return {
        **_identity(entry, state),
        "problem": state not in ("pass", "skip"),
        "fault": f"{layer}/{reason}" if layer or reason else "",
        "address": _text(entry.get("address")) or "-",
        "attempts": attempts_of(entry),
        "duration": format_ms(entry.get("duration_ms")) if attempts_of(entry) or state != "blocked" else "-",
        "latency": "-" if total is None else format_ms(total),
        "phases": _timings_text(entry),
        "severity": _text(entry.get("severity")),
        "message": _text(entry.get("message")),
        "anchor": anchors.get(_text(entry.get("id"))),
    }


def build_view(document: Mapping[str, Any]) -> dict[str, Any]:
    results: list[dict[str, Any]] = [r for r in document.get("results", []) if isinstance(r, dict)]
    raw_summary = document.get("summary")
    summary: Mapping[str, Any] = raw_summary if isinstance(raw_summary, Mapping) else {}
    verdict = verdict_of(results)
    causes = root_causes(results)
    anchors: dict[str, str] = {}
    cards = []
    for index, cause in enumerate(causes, start=1):
        anchor = f"f{index}"
        entry = cause.entry
        anchors[_text(entry.get("id"))] = anchor
        for blocked in cause.blocked:
            anchors.setdefault(_text(blocked.get("id")), anchor)
        state = item_state(entry)
        total = http_total_ms(entry)
        cards.append(
            {
                "anchor": anchor,
                **_identity(entry, state),
                "layer": _text(entry.get("layer")).upper() or "-",
                "reason": _text(entry.get("reason")) or "-",
                "address": _text(entry.get("address")) or "-",
                "message": _text(entry.get("message")),
                "severity": _text(entry.get("severity")) or "-",
                "attempts": attempts_of(entry),
                "duration": format_ms(entry.get("duration_ms")),
                "latency": None if total is None else format_ms(total),
                "phases": _timings_text(entry),
                "details": _detail_rows(entry.get("details")),
                "blocked": [{"id": _text(b.get("id")), "message": _text(b.get("message"))} for b in cause.blocked],
            }
        )
    matrix_rows = []
    for target, cells in matrix(results):
        for cell in cells:
            for entry in cell.entries:
                if is_problem(entry) and _text(entry.get("id")) in anchors:
                    cell.anchor = anchors[_text(entry.get("id"))]
                    break
        matrix_rows.append(_matrix_row_html(target, cells))
    result_rows = [_result_row(e, anchors) for e in results]
    counts = {key: _number(summary.get(key)) or 0 for key in ("passed", "failed", "error", "skipped")}
    environment = _text(document.get("environment"))
    upstream = sum(len(c.blocked) for c in causes)
    return {
        "environment": environment,
        "inventory": _text(document.get("inventory")),
        "started_at": _text(document.get("started_at")),
        "duration": _seconds(document.get("duration_s")),
        "schema": _text(document.get("schema")),
        "partial": bool(document.get("partial")),
        "verdict": verdict,
        "counts": {k: int(v) for k, v in counts.items()},
        "total": len(results),
        "root_count": sum(1 for c in causes if fails_run(c.entry)),
        "upstream_count": upstream,
        "layers": LAYERS,
        "cards": cards,
        "certificates": _certificate_rows(results),
        "results": result_rows,
        "matrix_html": Markup("".join(matrix_rows)),
        "results_html": Markup("".join(_result_row_html(row) for row in result_rows)),
        "json_href": quote(f"{environment}.json", safe=""),  # never a scheme or a //host
    }


def _seconds(value: Any) -> str:
    seconds = _number(value)
    return "-" if seconds is None else f"{seconds:.2f} s"


# ----------------------------------------------------------------------------- the two large tables, in Python
#
# The matrix and the results table grow with the inventory (a row per target, a row per
# check); rendered by the template they took most of the page's time (65,000 autoescapes for
# 2,100 checks). These two functions build the same markup with html.escape on every value,
# including class names and anchors, which come from fixed vocabularies anyway.


def _e(value: Any) -> str:
    """A value as HTML text or a quoted attribute value: ``& < > " '`` escaped."""
    return html.escape(_text(value), quote=True)


NBSP = "\u00a0"


def _matrix_row_html(target: str, cells: Sequence[Cell]) -> str:
    t = _e(target)
    parts = [f'      <tr>\n        <td class="t">{t}</td>\n']
    for cell in cells:
        title = f"{t} {_e(cell.layer)}: {_e(cell.label)} {_e(cell.note)}"
        face = f"<b>{_e(cell.label)}</b> <small>{_e(cell.note) if cell.note else NBSP}</small>"
        if cell.anchor:
            blocked = " blocked" if cell.mark == "up" else ""
            inner = f'<a class="cell c-{_e(cell.colour)}{blocked}" href="#{_e(cell.anchor)}" title="{title}">{face}</a>'
        else:
            inner = f'<span class="cell c-{_e(cell.colour)}" title="{title}">{face}</span>'
        parts.append(f'        <td data-layer="{_e(cell.layer)}">{inner}</td>\n')
    parts.append("      </tr>\n")
    return "".join(parts)


def _result_row_html(row: Mapping[str, Any]) -> str:
    colour = _e(row["colour"])
    ident = _e(row["id"])
    if row["anchor"] and row["problem"]:
        ident = f'<a href="#{_e(row["anchor"])}">{ident}</a>'
    phases = f' <span class="phases">{_e(row["phases"])}</span>' if row["phases"] else ""
    return (
        f'      <tr class="r-{colour}">\n'
        f'        <td><span class="badge c-{colour} s-{_e(row["state"])}">{_e(row["badge"])}</span></td>\n'
        f'        <td class="id">{ident}</td>\n'
        f'        <td class="mono">{_e(row["fault"] or "-")}</td>\n'
        f'        <td class="mono">{_e(row["address"])}</td>\n'
        f'        <td class="num">{_e(row["attempts"])}</td>\n'
        f'        <td class="num">{_e(row["duration"])}</td>\n'
        f'        <td class="num">{_e(row["latency"])}{phases}</td>\n'
        f'        <td class="msg">{_e(row["message"])}</td>\n'
        "      </tr>\n"
    )


# ----------------------------------------------------------------------------- rendering and writing

_environment: Any = None


def _jinja() -> Any:
    global _environment
    if _environment is None:
        import jinja2

        _environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,  # everything from the document is untrusted; nothing is ever marked safe
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    return _environment


def render_html(document: Mapping[str, Any]) -> str:
    return str(_jinja().get_template(TEMPLATE_NAME).render(**build_view(document)))


def write_html(path: Path, document: Mapping[str, Any]) -> None:
    """Render and write atomically, beside the JSON of the same document."""
    write_atomically(path, render_html(document))


# ----------------------------------------------------------------------------- pytest-html's --html: extra columns


class PytestHtmlColumns:
    """Adds Layer and Reason columns to pytest-html's table (registered only when pytest-html is loaded).

    pytest-html takes cells as raw HTML strings, so every value is escaped here.
    """

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, "<th>Layer</th>")
        cells.insert(3, "<th>Reason</th>")

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        from pytest_autoglm.plugin.outcomes import REPORT_ATTR

        facts = getattr(report, REPORT_ATTR, None)
        facts = facts if isinstance(facts, dict) else {}
        cells.insert(2, f'<td class="col-autoglm-layer">{html.escape(_text(facts.get("layer")))}</td>')
        cells.insert(3, f'<td class="col-autoglm-reason">{html.escape(_text(facts.get("reason")))}</td>')


PYTEST_HTML_COLUMNS = "autoglm-pytest-html-columns"


def register_pytest_html_columns(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("html") and not config.pluginmanager.has_plugin(PYTEST_HTML_COLUMNS):
        config.pluginmanager.register(PytestHtmlColumns(), PYTEST_HTML_COLUMNS)


def unregister_pytest_html_columns(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(PYTEST_HTML_COLUMNS)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)
