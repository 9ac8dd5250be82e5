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

The facts -> view logic the terminal summary shares (cells, root causes, the verdict)
lives in :mod:`view`; this module adds the page's view model, the two Python-built
tables, and the optional extra columns for pytest-html's own ``--html`` report.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

import pytest
from markupsafe import Markup

from pytest_autoglm.reporting.json_report import write_atomically
from pytest_autoglm.reporting.records import (
    REPORT_ATTR,
    ResultEntry,
    attempts_of,
    count_phrases,
    count_results,
    partial_phrase,
)
from pytest_autoglm.reporting.view import (
    STATE_COLOUR,
    Cell,
    EnvironmentVerdict,
    RootCause,
    format_ms,
    http_total_ms,
    is_problem,
    item_state,
    layers_of,
    matrix,
    number_of,
    results_of,
    root_causes,
    text_of,
    vantage_matrices,
    vantage_of,
    vantages_of,
    verdict_of,
)

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report.html.j2"

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


class DetailRow(TypedDict):
    key: str
    text: str
    block: bool  # nested value, shown as pretty JSON text


class BlockedRow(TypedDict):
    id: str
    message: str


class Identity(TypedDict):
    """What a result row and a root-cause card both show of an item: which one it is, and its state."""

    id: str
    target: str
    check: str
    subject: str
    state: str
    colour: str
    badge: str


class HistoryCell(TypedDict):
    """A check's past (history on): the ``recent`` letters and since when it fails."""

    recent: str
    state: str
    failing_since: str
    flapping: bool


class FactRow(TypedDict):
    id: str
    field: str
    before: str
    after: str


class ChangesView(TypedDict):
    """The "changed since the last run" section (history on)."""

    previous_id: str
    new_failures: list[str]
    fixed: list[str]
    still_failing: list[str]
    facts: list[FactRow]


class ResultRow(Identity):
    problem: bool
    fault: str
    address: str
    attempts: int
    duration: str
    latency: str
    phases: str
    severity: str
    message: str
    anchor: str | None
    history: HistoryCell | None


class Card(Identity):
    anchor: str
    layer: str
    reason: str
    address: str
    message: str
    severity: str
    attempts: int
    duration: str
    latency: str | None
    phases: str
    details: list[DetailRow]
    blocked: list[BlockedRow]
    same_vantage: bool  # issue 17: ``blocked`` lists the other checks a vantage could not run, not upstream items
    history: HistoryCell | None
    recent_html: Markup


class CertificateRow(TypedDict):
    id: str
    target: str
    address: str
    subject: str
    issuer: str
    not_after: str
    days_left: str
    colour: str
    version: str


class VantageRow(TypedDict):
    """One vantage's side of a cross-vantage diagnosis."""

    vantage: str
    outcome: str
    colour: str  # pass | fail | none: from a fixed vocabulary
    reason: str
    seen: str  # tcp state or DNS answers
    address: str
    affected: bool  # the diagnosis is about this vantage


class DiagnosisView(TypedDict):
    """A cross-vantage diagnosis (issue 17), from the document's ``vantages.diagnoses``."""

    pattern: str
    kind: str  # the pattern if it is a known one, else "differs": safe as a class name
    target: str
    check: str
    subject: str
    message: str
    rows: list[VantageRow]


class View(TypedDict):
    """Everything the template reads."""

    environment: str
    inventory: str
    started_at: str
    duration: str
    schema: str
    partial: str  # the banner's text; "" for a full run
    verdict: EnvironmentVerdict
    counts: list[str]  # the same words as the terminal summary
    total: int
    planned: int | None  # checks in the inventory, shown when it differs from ``total``
    layers: tuple[str, ...]
    cards: list[Card]
    certificates: list[CertificateRow]
    results: list[ResultRow]
    matrix_html: Markup
    results_html: Markup
    json_href: str
    has_history: bool  # the results carry ``history``: a History column
    changes: ChangesView | None  # the document has ``changes``
    vantages: list[str]  # issue 17: the run's vantages; empty: no vantage section
    diagnoses: list[DiagnosisView]
    vantage_html: Markup  # a target x vantage matrix per layer


def _timings_text(entry: Mapping[str, Any]) -> str:
    details = entry.get("details")
    timings = details.get("timings_ms") if isinstance(details, Mapping) else None
    if not isinstance(timings, Mapping):
        return ""
    parts = [
        f"{label} {format_ms(timings.get(key))}".replace(" ", "\u00a0")  # a phase never breaks across lines
        for key, label in _PHASES
        if number_of(timings.get(key)) is not None
    ]
    return " · ".join(parts)


def _detail_rows(details: Any) -> list[DetailRow]:
    """Key/value rows; nested values as pretty JSON text (escaped by the template like everything else)."""
    if not isinstance(details, Mapping):
        return [] if details in (None, "", {}) else [DetailRow(key="value", text=_pretty(details), block=True)]
    return [_detail_row(key, value) for key, value in details.items()]


def _mapping(value: Any) -> Mapping[str, Any]:
    """A value from the network read as a mapping only if it is one (anything else: empty)."""
    return value if isinstance(value, Mapping) else {}


def _accepted_table(accepted: Mapping[str, Any]) -> str:
    """A TLS item's ``details.accepted`` as a text table: one row per version, then groups and DH."""
    suites = _mapping(accepted.get("suites"))
    versions = _mapping(accepted.get("versions"))
    lines = [f"{'version':<9} {'accepted':<9} suites"]
    for version, ok in versions.items():
        names = suites.get(version) or []
        lines.append(f"{text_of(version):<9} {'yes' if ok else 'no':<9} {', '.join(map(text_of, names)) or '-'}")
    for version, names in _mapping(accepted.get("groups")).items():
        lines.append(f"groups {text_of(version)}: {', '.join(map(text_of, names))}")
    dh = accepted.get("dh")
    if isinstance(dh, Mapping):
        lines.append(f"DH: {dh.get('bits')} bits, safe prime: {dh.get('safe_prime')}, generator {dh.get('generator')}")
    return "\n".join(lines)


def _detail_row(key: Any, value: Any) -> DetailRow:
    if key == "accepted" and isinstance(value, Mapping) and "versions" in value:
        return DetailRow(key="accepted", text=_accepted_table(value), block=True)
    if isinstance(value, Mapping | list | tuple):
        return DetailRow(key=text_of(key), text=_pretty(value), block=True)
    return DetailRow(key=text_of(key), text=text_of(value) if value is not None else "null", block=False)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _days_colour(days: float | None) -> str:
    if days is None:
        return "none"
    if days < 0:
        return "fail"
    return "warn" if days < 30 else "pass"


def _days_text(days: float | None) -> str:
    if days is None:
        return "-"
    return f"{days:.0f} (expired)" if days < 0 else f"{days:.0f}"


def _certificate_rows(results: Sequence[ResultEntry]) -> list[CertificateRow]:
    return [row for row in (_certificate_row(entry) for entry in results) if row is not None]


def _certificate_row(entry: ResultEntry) -> CertificateRow | None:
    details = entry.get("details")
    if not isinstance(details, Mapping) or ("not_after" not in details and "days_left" not in details):
        return None
    days = number_of(details.get("days_left"))
    return CertificateRow(
        id=text_of(entry.get("id")),
        target=text_of(entry.get("target")),
        address=text_of(entry.get("address") or details.get("address")) or "-",
        subject=text_of(details.get("subject")) or "-",
        issuer=text_of(details.get("issuer")) or "-",
        not_after=text_of(details.get("not_after")) or "-",
        days_left=_days_text(days),
        colour=_days_colour(days),
        version=text_of(details.get("version")),
    )


def _history_cell(entry: Mapping[str, Any]) -> HistoryCell | None:
    history = entry.get("history")
    if not isinstance(history, Mapping):
        return None
    return HistoryCell(
        recent=text_of(history.get("recent")),
        state=text_of(history.get("state")),
        failing_since=text_of(history.get("failing_since")),
        flapping=history.get("flapping") is True,
    )


def _fact_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(text_of(v) for v in value) or "(none)"
    return (
        text_of(value) if isinstance(value, str | int | float) else json.dumps(value, ensure_ascii=False, default=str)
    )


def _changes_view(document: Mapping[str, Any]) -> ChangesView | None:
    changes = document.get("changes")
    if not isinstance(changes, Mapping):
        return None
    run = document.get("run")
    previous = run.get("previous_id") if isinstance(run, Mapping) else None

    def ids(key: str) -> list[str]:
        value = changes.get(key)
        return [text_of(v) for v in value] if isinstance(value, list) else []

    facts = changes.get("facts")
    return ChangesView(
        previous_id="" if previous is None else text_of(previous),
        new_failures=ids("new_failures"),
        fixed=ids("fixed"),
        still_failing=ids("still_failing"),
        facts=[
            FactRow(
                id=text_of(f.get("id")),
                field=text_of(f.get("field")),
                before=_fact_text(f.get("before")),
                after=_fact_text(f.get("after")),
            )
            for f in (facts if isinstance(facts, list) else [])
            if isinstance(f, Mapping)
        ],
    )


def _identity(entry: Mapping[str, Any], state: str) -> Identity:
    return Identity(
        id=text_of(entry.get("id")),
        target=text_of(entry.get("target")),
        check=text_of(entry.get("check")),
        subject=text_of(entry.get("subject")),
        state=state,
        colour=STATE_COLOUR[state],
        badge=_RESULT_BADGE[state],
    )


def _result_row(entry: ResultEntry, anchors: Mapping[str, str]) -> ResultRow:
    state = item_state(entry)
    total = http_total_ms(entry)
    layer, reason = text_of(entry.get("layer")), text_of(entry.get("reason"))
    return ResultRow(
        **_identity(entry, state),
        problem=state not in ("pass", "skip"),
        fault=f"{layer}/{reason}" if layer or reason else "",
        address=text_of(entry.get("address")) or "-",
        attempts=attempts_of(entry),
        duration=format_ms(entry.get("duration_ms")) if attempts_of(entry) or state != "blocked" else "-",
        latency="-" if total is None else format_ms(total),
        phases=_timings_text(entry),
        severity=text_of(entry.get("severity")),
        message=text_of(entry.get("message")),
        anchor=anchors.get(text_of(entry.get("id"))),
        history=_history_cell(entry),
    )


def _card(anchor: str, cause: RootCause) -> Card:
    entry = cause.entry
    total = http_total_ms(entry)
    return Card(
        **_identity(entry, item_state(entry)),
        anchor=anchor,
        layer=text_of(entry.get("layer")).upper() or "-",
        reason=text_of(entry.get("reason")) or "-",
        address=text_of(entry.get("address")) or "-",
        message=text_of(entry.get("message")),
        severity=text_of(entry.get("severity")) or "-",
        attempts=attempts_of(entry),
        duration=format_ms(entry.get("duration_ms")),
        latency=None if total is None else format_ms(total),
        phases=_timings_text(entry),
        details=_detail_rows(entry.get("details")),
        blocked=[BlockedRow(id=text_of(b.get("id")), message=text_of(b.get("message"))) for b in cause.blocked],
        same_vantage=_unreachable(entry),
        history=(history := _history_cell(entry)),
        recent_html=Markup(_recent_html(history["recent"]) if history else ""),
    )


def _anchors(causes: Sequence[RootCause]) -> dict[str, str]:
    """Item id -> the anchor of its card: a root cause's own, and the one of the cause that blocked it."""
    anchors: dict[str, str] = {}
    for index, cause in enumerate(causes, start=1):
        anchors[text_of(cause.entry.get("id"))] = f"f{index}"
        for blocked in cause.blocked:
            anchors.setdefault(text_of(blocked.get("id")), f"f{index}")
    return anchors


def _link_cells(cells: Sequence[Cell], anchors: Mapping[str, str]) -> Sequence[Cell]:
    """Point each cell with a problem at the card of its first problem."""
    for cell in cells:
        cell.anchor = next(
            (anchors[i] for e in cell.entries if is_problem(e) and (i := text_of(e.get("id"))) in anchors), None
        )
    return cells


_PATTERNS = frozenset({"loopback_bind", "firewall_drop", "firewall_reject", "split_horizon", "differs"})
_OUTCOME_COLOUR = {"passed": "pass", "failed": "fail", "error": "fail"}


def _diagnosis_views(document: Mapping[str, Any]) -> list[DiagnosisView]:
    """The document's ``vantages.diagnoses``, read as untrusted (anything that is not an object is left out)."""
    vantages = document.get("vantages")
    diagnoses = vantages.get("diagnoses") if isinstance(vantages, Mapping) else None
    views = []
    for diagnosis in diagnoses if isinstance(diagnoses, list) else []:
        if not isinstance(diagnosis, Mapping):
            continue
        pattern = text_of(diagnosis.get("pattern"))
        affected = diagnosis.get("affected")
        affected = {text_of(a) for a in affected} if isinstance(affected, list) else set()
        rows = [
            _vantage_row(text_of(name), facts, text_of(name) in affected)
            for name, facts in _mapping(diagnosis.get("by_vantage")).items()
        ]
        views.append(
            DiagnosisView(
                pattern=pattern,
                kind=pattern if pattern in _PATTERNS else "differs",
                target=text_of(diagnosis.get("target")),
                check=text_of(diagnosis.get("check")),
                subject=text_of(diagnosis.get("subject")),
                message=text_of(diagnosis.get("message")),
                rows=rows,
            )
        )
    return views


def _vantage_row(name: str, facts: Any, affected: bool) -> VantageRow:
    facts = _mapping(facts)
    answers = facts.get("answers")
    seen = ", ".join(text_of(a) for a in answers) if isinstance(answers, list) else text_of(facts.get("state"))
    outcome = text_of(facts.get("outcome"))
    return VantageRow(
        vantage=name,
        outcome=outcome or "-",
        colour=_OUTCOME_COLOUR.get(outcome, "none"),
        reason=text_of(facts.get("reason")) or "-",
        seen=seen or "-",
        address=text_of(facts.get("address")) or "-",
        affected=affected,
    )


def _unreachable(entry: Mapping[str, Any]) -> bool:
    return entry.get("reason") == "vantage_unreachable" and bool(vantage_of(entry))


def _fold_unreachable(causes: list[RootCause]) -> list[RootCause]:
    """Issue 17: one card per vantage that could not run its checks, listing the others, not one card per check."""
    first: dict[str, RootCause] = {}
    folded = []
    for cause in causes:
        if not _unreachable(cause.entry):
            folded.append(cause)
        elif (vantage := vantage_of(cause.entry)) in first:
            first[vantage].blocked.extend([cause.entry, *cause.blocked])
        else:
            first[vantage] = card = RootCause(cause.entry, list(cause.blocked))
            folded.append(card)
    return folded


def build_view(document: Mapping[str, Any]) -> View:
    results = results_of(document)
    counts = count_results(results)
    causes = _fold_unreachable(root_causes(results))
    anchors = _anchors(causes)
    matrix_rows = [_matrix_row_html(target, _link_cells(cells, anchors)) for target, cells in matrix(results)]
    result_rows = [_result_row(e, anchors) for e in results]
    has_history = any(row["history"] is not None for row in result_rows)
    environment = text_of(document.get("environment"))
    return View(
        environment=environment,
        inventory=text_of(document.get("inventory")),
        started_at=text_of(document.get("started_at")),
        duration=_seconds(document.get("duration_s")),
        schema=text_of(document.get("schema")),
        partial=_banner(document),
        verdict=verdict_of(counts),
        counts=count_phrases(counts),
        total=counts.total,
        planned=_planned(document, counts.total),
        layers=layers_of(results),
        cards=[_card(f"f{index}", cause) for index, cause in enumerate(causes, start=1)],
        certificates=_certificate_rows(results),
        results=result_rows,
        matrix_html=Markup("".join(matrix_rows)),
        results_html=Markup("".join(_result_row_html(row, has_history) for row in result_rows)),
        json_href=quote(f"{environment}.json", safe=""),  # never a scheme or a //host
        has_history=has_history,
        changes=_changes_view(document),
        vantages=(vantages := vantages_of(results)),
        diagnoses=_diagnosis_views(document) if vantages else [],
        vantage_html=Markup("".join(_vantage_tables_html(results, anchors))),
    )


def _banner(document: Mapping[str, Any]) -> str:
    """The partial-run banner's first sentence, from ``selection`` (or the 1.0 ``partial`` flag alone)."""
    phrase = partial_phrase(document.get("selection"))
    if not phrase and document.get("partial"):
        phrase = "partial run: stopped early (-x, --maxfail or an interrupt)"
    return phrase[:1].upper() + phrase[1:]


def _planned(document: Mapping[str, Any], total: int) -> int | None:
    selection = document.get("selection")
    planned = selection.get("planned") if isinstance(selection, Mapping) else None
    return planned if isinstance(planned, int) and not isinstance(planned, bool) and planned != total else None


def _seconds(value: Any) -> str:
    seconds = number_of(value)
    return "-" if seconds is None else f"{seconds:.2f} s"


# ----------------------------------------------------------------------------- the two large tables, in Python
#
# The matrix and the results table grow with the inventory (a row per target, a row per
# check); rendered by the template they took most of the page's time (65,000 autoescapes for
# 2,100 checks). These two functions build the same markup with html.escape on every value,
# including class names and anchors, which come from fixed vocabularies anyway.


def _e(value: Any) -> str:
    """A value as HTML text or a quoted attribute value: ``& < > " '`` escaped."""
    return html.escape(text_of(value), quote=True)


NBSP = "\u00a0"


def _matrix_row_html(target: str, cells: Sequence[Cell], columns: Sequence[str] | None = None) -> str:
    """A matrix row: the target, then a cell per layer, or per vantage when ``columns`` names them."""
    t = _e(target)
    parts = [f'      <tr>\n        <td class="t">{t}</td>\n']
    for i, cell in enumerate(cells):
        where = _e(cell.layer) if columns is None else f"{_e(cell.layer)} from {_e(columns[i])}"
        title = f"{t} {where}: {_e(cell.label)} {_e(cell.note)}"
        face = f"<b>{_e(cell.label)}</b> <small>{_e(cell.note) if cell.note else NBSP}</small>"
        if cell.anchor:
            blocked = " blocked" if cell.mark == "up" else ""
            inner = f'<a class="cell c-{_e(cell.colour)}{blocked}" href="#{_e(cell.anchor)}" title="{title}">{face}</a>'
        else:
            inner = f'<span class="cell c-{_e(cell.colour)}" title="{title}">{face}</span>'
        attribute = f'data-layer="{_e(cell.layer)}"' if columns is None else f'data-vantage="{_e(columns[i])}"'
        parts.append(f"        <td {attribute}>{inner}</td>\n")
    parts.append("      </tr>\n")
    return "".join(parts)


def _vantage_tables_html(results: Sequence[ResultEntry], anchors: Mapping[str, str]) -> list[str]:
    """Issue 17: a target x vantage table per layer that has items (nothing for a run without vantages)."""
    tables = []
    for m in vantage_matrices(results):
        head = "".join(f"<th>{_e(v)}</th>" for v in m.vantages)
        rows = "".join(_matrix_row_html(t, _link_cells(cells, anchors), m.vantages) for t, cells in m.rows)
        tables.append(
            f'  <h3 class="vlayer">{_e(m.layer.upper())}</h3>\n'
            f'  <table class="matrix vmatrix" data-layer="{_e(m.layer)}">\n'
            f'    <thead><tr><th class="t">Target</th>{head}</tr></thead>\n'
            f"    <tbody>\n{rows}    </tbody>\n  </table>\n"
        )
    return tables


#: ``recent`` letters -> the cell's class and title; any other character is shown as ``?`` (class ``x``).
_RECENT = {"P": "passed", "F": "failed", "W": "warned", "E": "error", "S": "skipped"}


def _recent_html(recent: str) -> str:
    """The recent strip: one small coloured cell per run, oldest first (class names from ``_RECENT`` only)."""
    cells = []
    for letter in recent[-20:]:
        known = letter in _RECENT
        cls = letter if known else "x"
        title = _RECENT[letter] if known else "unknown"
        cells.append(f'<i class="rs-{cls}" title="{title}">{_e(letter) if known else "?"}</i>')
    return f'<span class="recent">{"".join(cells)}</span>' if cells else ""


def _history_html(history: Mapping[str, Any] | None) -> str:
    if history is None:
        return '        <td class="hist">-</td>\n'
    since = (
        f'<span class="since">failing since {_e(history["failing_since"])}</span>' if history["failing_since"] else ""
    )
    state = history["state"]
    badge = f' <span class="state st-{_e(state) if state in ("pending", "firing", "resolved") else "ok"}">{_e(state)}</span>'
    flap = ' <span class="state st-flap">flapping</span>' if history["flapping"] else ""
    return f'        <td class="hist">{_recent_html(history["recent"])}{badge if state != "ok" else ""}{flap}{since}</td>\n'


def _result_row_html(row: Mapping[str, Any], has_history: bool = False) -> str:
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
        + (_history_html(row["history"]) if has_history else "")
        + "      </tr>\n"
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
        facts = getattr(report, REPORT_ATTR, None)
        facts = facts if isinstance(facts, dict) else {}
        cells.insert(2, f'<td class="col-autoglm-layer">{html.escape(text_of(facts.get("layer")))}</td>')
        cells.insert(3, f'<td class="col-autoglm-reason">{html.escape(text_of(facts.get("reason")))}</td>')


PYTEST_HTML_COLUMNS = "autoglm-pytest-html-columns"


def register_pytest_html_columns(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("html") and not config.pluginmanager.has_plugin(PYTEST_HTML_COLUMNS):
        config.pluginmanager.register(PytestHtmlColumns(), PYTEST_HTML_COLUMNS)


def unregister_pytest_html_columns(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(PYTEST_HTML_COLUMNS)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)
