"""The end-of-run summary per environment, in pytest's style.

Called from :class:`~pytest_autoglm.plugin.sink.ResultSink`'s ``pytest_terminal_summary``
(the sink is registered on the controller only), with the very documents the JSON and
HTML reports were written from. Everything printed comes from those documents, whose
secrets are already masked::

    ================================ autoglm: prod =================================
    FAIL: 2 failing (1 root cause, 1 blocked), 1 warned, 41 passed in 4.21s
    api        dns ok   tcp FAIL tls up   http -    cors -
    web        dns ok   tcp ok   tls ok   http ok*  cors WARN
    tcp[prod:api:443/open]  tcp/filtered  203.0.113.10  api.example.com (203.0.113.10) port 443: no answer ...
        + 1 blocked by it: tls[prod:api:443]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from pytest_autoglm.reporting.records import (
    ResultEntry,
    count_phrases,
    count_results,
    fails_run,
    partial_phrase,
    spoiled_attempts,
)
from pytest_autoglm.reporting.view import (
    LAYERS,
    Cell,
    RootCause,
    first_fault_layer,
    matrix,
    results_of,
    root_causes,
    target_vantage_cells,
    verdict_of,
)

#: A line's text in segments, each with its TerminalWriter markup (``{"red": True}``).
Segment = tuple[str, dict[str, bool]]
Line = tuple[list[Segment], str]  # (segments, kind): verdict, partial, matrix, legend, cause, blocked

#: Markup per terminal mark (pytest's TerminalWriter keywords).
_MARK_STYLE: dict[str, dict[str, bool]] = {
    "ok": {"green": True},
    "ok*": {"yellow": True},
    "WARN": {"yellow": True, "bold": True},
    "XF": {"yellow": True},
    "FAIL": {"red": True, "bold": True},
    "ERR": {"red": True, "bold": True},
    "up": {"red": True},
}
_VERDICT_STYLE: dict[str, dict[str, bool]] = {
    "fail": {"red": True, "bold": True},
    "warn": {"yellow": True, "bold": True},
    "pass": {"green": True, "bold": True},
    "none": {},
}
#: The legend line: a mark that appears in the matrix -> what it means.
_LEGEND = (
    ("ok*", "ok* passed only after retries"),
    ("up", "up blocked: a lower layer failed"),
    ("XF", "XF failed, marked xfail (a known failure)"),
)
_MAX_LISTED = 3
_MIN_ROOM = 40
_SPACES = re.compile(r"\s+")


def _one_line(text: Any) -> str:
    return _SPACES.sub(" ", "" if text is None else str(text)).strip()


def _width(terminalreporter: pytest.TerminalReporter) -> int:
    """The terminal's width as pytest measures it (``Config.get_terminal_writer`` is public API)."""
    width = terminalreporter.config.get_terminal_writer().fullwidth
    return width if isinstance(width, int) and width > 40 else 80


def summary_lines(document: Mapping[str, Any], *, width: int | None = 80) -> list[Line]:
    """The summary of one environment as lines of (segments with markup); plain text is ``"".join``.

    ``width=None`` never truncates messages.
    """
    results = results_of(document)
    rows = matrix(results)
    causes = root_causes(results)
    return [
        _verdict_line(document),
        *_spoiled_lines(document),
        *_partial_lines(document),
        *_matrix_lines(rows),
        *_legend_lines(rows),
        *_vantage_lines(results),
        *_diagnosis_lines(document),
        *_unreachable_lines(causes, width),
        *_cause_lines([c for c in causes if not _unreachable(c)], width),
    ]


def _verdict_line(document: Mapping[str, Any]) -> Line:
    """``FAIL: 6 failing (5 root causes, 1 blocked), 17 passed in 1.21s``: the words of :func:`count_phrases`."""
    counts = count_results(results_of(document))
    verdict = verdict_of(counts)
    duration = document.get("duration_s")
    took = f" in {duration:.2f}s" if isinstance(duration, int | float) and not isinstance(duration, bool) else ""
    text = f": {', '.join(count_phrases(counts))}{took}"
    return [(verdict.word, _VERDICT_STYLE[verdict.colour]), (text, {})], "verdict"


def _spoiled_lines(document: Mapping[str, Any]) -> list[Line]:
    """How often this machine was too busy to judge time (the attempts were repeated, not blamed on a target)."""
    spoiled = spoiled_attempts(results_of(document))
    if not spoiled:
        return []
    text = (
        f" {spoiled} attempt{'s' if spoiled != 1 else ''} spoiled by this machine's own lateness "
        "(repeated with fewer neighbours; never counted against a target)"
    )
    return [([("BUSY CHECKER", {"yellow": True, "bold": True}), (text, {})], "spoiled")]


def _partial_lines(document: Mapping[str, Any]) -> list[Line]:
    phrase = partial_phrase(document.get("selection"))
    if not phrase and document.get("partial"):  # a 1.0 document: the flag alone
        phrase = "partial run: stopped early (-x, --maxfail or an interrupt)"
    if not phrase:
        return []
    return [([("PARTIAL RUN", {"yellow": True, "bold": True}), (phrase.removeprefix("partial run"), {})], "partial")]


def _matrix_lines(rows: Sequence[tuple[str, list[Cell]]]) -> list[Line]:
    name_width = max([len(_one_line(name)) for name, _ in rows] + [6]) + 2
    return [_matrix_line(_one_line(name).ljust(name_width), cells) for name, cells in rows]


def _matrix_line(name: str, cells: Sequence[Cell]) -> Line:
    segments: list[Segment] = [(name, {})]
    for i, cell in enumerate(cells):
        last = i == len(cells) - 1
        segments.append((f"{cell.layer} ", {}))
        segments.append((cell.mark if last else cell.mark.ljust(5), _MARK_STYLE.get(cell.mark, {})))
    return segments, "matrix"


def _legend_lines(rows: Sequence[tuple[str, list[Cell]]]) -> list[Line]:
    seen = {cell.mark for _, cells in rows for cell in cells}
    legend = [text for mark, text in _LEGEND if mark in seen]
    return [([(f"({'; '.join(legend)})", {})], "legend")] if legend else []


def _vantage_cell(cell: Cell) -> str:
    """A compact target x vantage cell: the mark, after the lowest faulty layer when there is one (``tcp FAIL``)."""
    layer = first_fault_layer(cell.entries) if cell.mark in ("FAIL", "ERR", "WARN", "XF") else ""
    return f"{layer} {cell.mark}" if layer else cell.mark


def _vantage_lines(results: Sequence[ResultEntry]) -> list[Line]:
    """Issue 17: one line per target, one short cell per vantage (all the target's layers); nothing without vantages."""
    vantages, rows = target_vantage_cells(results)
    if not vantages:
        return []
    names = [_one_line(v) for v in vantages]
    texts = [(_one_line(target), [_vantage_cell(cell) for cell in cells]) for target, cells in rows]
    name_width = max([len(target) for target, _ in texts] + [len("vantages")]) + 2
    widths = [max([len(name)] + [len(cells[i]) for _, cells in texts]) + 2 for i, name in enumerate(names)]
    header = "vantages".ljust(name_width) + "".join(name.ljust(w) for name, w in zip(names, widths, strict=True))
    lines: list[Line] = [([(header, {"bold": True})], "vantage-header")]
    for (target, cells), (_, cell_texts) in zip(rows, texts, strict=True):
        segments: list[Segment] = [(_one_line(target).ljust(name_width), {})]
        for cell, text, w in zip(cells, cell_texts, widths, strict=True):
            segments.append((text, _MARK_STYLE.get(cell.mark, {})))
            segments.append((" " * (w - len(text)), {}))
        lines.append((segments, "vantage"))
    return lines


def _diagnosis_lines(document: Mapping[str, Any]) -> list[Line]:
    """Issue 17: one line per cross-vantage diagnosis (``vantages.diagnoses``), pattern first.

    Never shortened: the fix ("use 0.0.0.0") is at the end; the terminal wraps a long line.
    """
    vantages = document.get("vantages")
    diagnoses = vantages.get("diagnoses") if isinstance(vantages, Mapping) else None
    if not isinstance(diagnoses, list):
        return []
    lines: list[Line] = []
    for diagnosis in diagnoses:
        if not isinstance(diagnosis, Mapping):
            continue
        pattern = _one_line(diagnosis.get("pattern")) or "differs"
        message = _one_line(diagnosis.get("message"))
        lines.append(([(pattern, {"yellow": True, "bold": True}), (f"  {message}", {})], "diagnosis"))
    return lines


def _unreachable(cause: RootCause) -> bool:
    return cause.entry.get("reason") == "vantage_unreachable" and bool(cause.entry.get("vantage"))


def _unreachable_lines(causes: Sequence[RootCause], width: int | None) -> list[Line]:
    """One line per vantage that could not run its checks (not one per check): how many, and why."""
    per_vantage: dict[str, list[RootCause]] = {}
    for cause in causes:
        if _unreachable(cause):
            per_vantage.setdefault(_one_line(cause.entry.get("vantage")), []).append(cause)
    lines: list[Line] = []
    for vantage, unreachable in per_vantage.items():
        count = len(unreachable)
        prefix = f"{count} check{'s' if count != 1 else ''} not run (error/vantage_unreachable)"
        if f"vantage {vantage}" not in _one_line(unreachable[0].entry.get("message")):
            prefix = f"vantage {vantage}: {prefix}"  # the engine's messages name it themselves
        lines.append(([(prefix, {"red": True}), ("  " + _message(unreachable[0].entry, prefix, width), {})], "cause"))
    return lines


def _cause_lines(causes: Sequence[RootCause], width: int | None) -> list[Line]:
    """One line per root cause (id, layer/reason, address, message), then what it blocked."""
    if not causes:
        return []
    columns = [
        (_one_line(c.entry.get("id")), _fault(c.entry), _one_line(c.entry.get("address")) or "-") for c in causes
    ]
    widths = [max(len(column[i]) for column in columns) for i in range(3)]
    lines: list[Line] = []
    for cause, column in zip(causes, columns, strict=True):
        prefix = "  ".join(value.ljust(w) for value, w in zip(column, widths, strict=True))
        style = {"red": True} if fails_run(cause.entry) else {"yellow": True}
        lines.append(([(prefix, style), ("  " + _message(cause.entry, prefix, width), {})], "cause"))
        if cause.blocked:
            lines.append(([(_blocked_text(cause), {})], "blocked"))
    return lines


def _message(entry: Mapping[str, Any], prefix: str, width: int | None) -> str:
    message = _one_line(entry.get("message"))
    if entry.get("xfailed"):
        message = f"(xfail) {message}"
    elif entry.get("outcome") == "failed" and not fails_run(entry):
        message = f"(warning) {message}"
    if width is not None:
        room = width - len(prefix) - 3
        if room >= _MIN_ROOM and len(message) > room:  # too little room: let the terminal wrap instead
            message = message[: room - 3] + "..."
    return message


def _blocked_text(cause: RootCause) -> str:
    ids = [_one_line(b.get("id")) for b in cause.blocked]
    more = f", ... ({len(ids) - _MAX_LISTED} more)" if len(ids) > _MAX_LISTED else ""
    return f"    + {len(ids)} blocked by it: {', '.join(ids[:_MAX_LISTED])}{more}"


def _fault(entry: Mapping[str, Any]) -> str:
    return f"{_one_line(entry.get('layer')) or '-'}/{_one_line(entry.get('reason')) or '-'}"


def plain_summary(document: Mapping[str, Any], *, width: int | None = 80) -> list[str]:
    """The summary as plain text lines (no markup), for tests and logs."""
    return ["".join(text for text, _ in segments).rstrip() for segments, _ in summary_lines(document, width=width)]


def write_summary(terminalreporter: pytest.TerminalReporter, documents: Sequence[Mapping[str, Any]]) -> None:
    """One section per environment: verdict, targets x layers, root causes one line each."""
    if terminalreporter.config.option.verbose < -1:  # -qq: pytest's own summaries shrink too
        return
    width = None if terminalreporter.config.option.verbose > 0 else _width(terminalreporter)
    writer = terminalreporter.config.get_terminal_writer()
    for document in documents:
        terminalreporter.write_sep("=", f"autoglm: {_one_line(document.get('environment'))}")
        for segments, _kind in summary_lines(document, width=width):
            # One write per line (a write per segment cost 40 ms for 1000 targets).
            terminalreporter.write(
                "".join(writer.markup(text, **markup) if markup else text for text, markup in segments)
            )
            terminalreporter.line("")


__all__ = ["LAYERS", "plain_summary", "summary_lines", "write_summary"]
