"""The end-of-run summary per environment, in pytest's style.

Called from :class:`~pytest_autoglm.reporting.sink.ResultSink`'s ``pytest_terminal_summary``
(the sink is registered on the controller only), with the very documents the JSON and
HTML reports were written from. Everything printed comes from those documents, whose
secrets are already masked::

    ================================ autoglm: prod =================================
    FAIL: 2 failing (1 root cause, 1 upstream), 1 warning, 41 passed in 4.21s
    api        dns ok   tcp FAIL tls up   http -    cors -
    web        dns ok   tcp ok   tls ok   http ok*  cors WARN
    tcp[prod:api:443/open]  tcp/filtered  203.0.113.10  api.example.com (203.0.113.10) port 443: no answer ...
        + 1 upstream of it: tls[prod:api:443]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_autoglm.reporting.html_report import LAYERS, fails_run, matrix, root_causes, verdict_of

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
_MAX_LISTED = 3
_MIN_ROOM = 40
_SPACES = re.compile(r"\s+")


def _one_line(text: Any) -> str:
    return _SPACES.sub(" ", "" if text is None else str(text)).strip()


def _width(terminalreporter: Any) -> int:
    """The terminal's width as pytest measures it (``Config.get_terminal_writer`` is public API)."""
    width = terminalreporter.config.get_terminal_writer().fullwidth
    return width if isinstance(width, int) and width > 40 else 80


def summary_lines(
    document: Mapping[str, Any], *, width: int | None = 80
) -> list[tuple[list[tuple[str, dict[str, bool]]], str]]:
    """The summary of one environment as lines of (segments with markup); plain text is ``"".join``.

    Returns ``[(segments, kind), ...]``; ``width=None`` never truncates messages.
    """
    results = [r for r in document.get("results", []) if isinstance(r, dict)]
    lines: list[tuple[list[tuple[str, dict[str, bool]]], str]] = []
    verdict = verdict_of(results)
    raw_summary = document.get("summary")
    summary: Mapping[str, Any] = raw_summary if isinstance(raw_summary, Mapping) else {}
    causes = root_causes(results)
    upstream = sum(len(c.blocked) for c in causes)
    counts = []
    if verdict.failing:
        roots = sum(1 for c in causes if fails_run(c.entry))
        detail = [f"{roots} root cause{'s' if roots != 1 else ''}"]
        if upstream:
            detail.append(f"{upstream} upstream")
        counts.append(f"{verdict.failing} failing ({', '.join(detail)})")
    if verdict.warned:
        counts.append(f"{verdict.warned} warning{'s' if verdict.warned != 1 else ''}")
    if verdict.xfailed:
        counts.append(f"{verdict.xfailed} xfailed (known failure{'s' if verdict.xfailed != 1 else ''})")
    if verdict.retried:
        counts.append(f"{verdict.retried} passed after retries")
    for key in ("passed", "error", "skipped"):
        value = summary.get(key, 0)
        if value or key == "passed":
            counts.append(f"{value} {key}")
    tail = " (partial run: stopped early)" if document.get("partial") else ""
    duration = document.get("duration_s")
    took = f" in {duration:.2f}s" if isinstance(duration, int | float) and not isinstance(duration, bool) else ""
    lines.append(
        ([(verdict.word, _VERDICT_STYLE[verdict.colour]), (f": {', '.join(counts)}{took}{tail}", {})], "verdict")
    )

    rows = matrix(results)
    name_width = max([len(_one_line(name)) for name, _ in rows] + [6]) + 2
    marks_seen: set[str] = set()
    for name, cells in rows:
        segments: list[tuple[str, dict[str, bool]]] = [(_one_line(name).ljust(name_width), {})]
        for i, cell in enumerate(cells):
            marks_seen.add(cell.mark)
            segments.append((f"{cell.layer} ", {}))
            last = i == len(cells) - 1
            segments.append((cell.mark if last else cell.mark.ljust(5), _MARK_STYLE.get(cell.mark, {})))
        lines.append((segments, "matrix"))
    legend = []
    if "ok*" in marks_seen:
        legend.append("ok* passed only after retries")
    if "up" in marks_seen:
        legend.append("up failed because a lower layer failed")
    if "XF" in marks_seen:
        legend.append("XF failed, marked xfail (a known failure)")
    if legend:
        lines.append(([(f"({'; '.join(legend)})", {})], "legend"))

    shown = list(causes)
    if not shown:
        return lines
    id_width = max(len(_one_line(c.entry.get("id"))) for c in shown)
    fault_width = max(len(_fault(c.entry)) for c in shown)
    addr_width = max(len(_one_line(c.entry.get("address")) or "-") for c in shown)
    for cause in shown:
        entry = cause.entry
        prefix = "  ".join(
            [
                _one_line(entry.get("id")).ljust(id_width),
                _fault(entry).ljust(fault_width),
                (_one_line(entry.get("address")) or "-").ljust(addr_width),
            ]
        )
        message = _one_line(entry.get("message"))
        if entry.get("xfailed"):
            message = f"(xfail) {message}"
        elif entry.get("outcome") == "failed" and not fails_run(entry):
            message = f"(warning) {message}"
        if width is not None:
            room = width - len(prefix) - 3
            if room >= _MIN_ROOM and len(message) > room:  # too little room: let the terminal wrap instead
                message = message[: room - 3] + "..."
        style = {"red": True} if fails_run(entry) else {"yellow": True}
        lines.append(([(prefix, style), ("  " + message, {})], "cause"))
        if cause.blocked:
            ids = [_one_line(b.get("id")) for b in cause.blocked]
            listed = ", ".join(ids[:_MAX_LISTED]) + (
                f", ... ({len(ids) - _MAX_LISTED} more)" if len(ids) > _MAX_LISTED else ""
            )
            lines.append(([(f"    + {len(ids)} upstream of it: {listed}", {})], "upstream"))
    return lines


def _fault(entry: Mapping[str, Any]) -> str:
    return f"{_one_line(entry.get('layer')) or '-'}/{_one_line(entry.get('reason')) or '-'}"


def plain_summary(document: Mapping[str, Any], *, width: int | None = 80) -> list[str]:
    """The summary as plain text lines (no markup), for tests and logs."""
    return ["".join(text for text, _ in segments).rstrip() for segments, _ in summary_lines(document, width=width)]


def write_summary(terminalreporter: Any, documents: Sequence[Mapping[str, Any]]) -> None:
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
