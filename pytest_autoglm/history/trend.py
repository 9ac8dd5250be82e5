"""The trend page: one environment over N days, self-contained HTML with inline SVG.

No JavaScript, no network, no external style: it opens from disk or a CI artifact. Every
text that came from the store (check ids, targets, anything a hostile inventory or server
could have put there) goes through ``html.escape``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from pytest_autoglm.history.models import FAILING, iso, parse_iso, utc
from pytest_autoglm.history.store import HistoryStore

LAYERS = ("dns", "tcp", "tls", "http", "cors")
WIDTH, HEIGHT, PAD = 640, 140, 36
#: Charts per section at most: the slowest checks, the certificates closest to expiry.
MAX_CHARTS = 40


@dataclass
class Series:
    """One check's values over time: (run start, value)."""

    check_id: str
    points: list[tuple[datetime, float]] = field(default_factory=list)


@dataclass
class TrendData:
    environment: str
    since: datetime
    until: datetime
    runs: int = 0
    #: (target, layer) -> [passed, judged]
    availability: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    latency: dict[str, Series] = field(default_factory=dict)
    days_left: dict[str, Series] = field(default_factory=dict)


def load_trend(
    store: HistoryStore, environment: str, *, days: int, now: datetime, vantage: str | None = None
) -> TrendData:
    """Read one environment's runs of the last ``days`` days (every vantage unless one is named)."""
    until = utc(now)
    since = until - timedelta(days=days)
    data = TrendData(environment, since, until)
    where = "u.environment = ? AND u.started_at >= ?" + (" AND u.vantage = ?" if vantage else "")
    params: tuple[str, ...] = (environment, iso(since)) + ((vantage,) if vantage else ())
    with store.transaction(None) as tx:
        data.runs = int(tx.rows(f"SELECT COUNT(*) FROM runs u WHERE {where}", params)[0][0])
        rows = tx.rows(
            "SELECT u.started_at, c.check_id, c.target, c.kind, r.outcome, r.facts FROM results r"
            f" JOIN runs u ON u.id = r.run_id JOIN checks c ON c.key = r.check_key WHERE {where}"
            " ORDER BY u.started_at, c.check_id",
            params,
        )
    availability: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for started_at, check_id, target, kind, outcome, facts_text in rows:
        at = parse_iso(started_at)
        if outcome != "S":
            cell = availability[(target, kind)]
            cell[0] += outcome not in FAILING
            cell[1] += 1
        facts = json.loads(facts_text) if facts_text else {}
        if isinstance(facts.get("latency_ms"), int | float):
            data.latency.setdefault(check_id, Series(check_id)).points.append((at, float(facts["latency_ms"])))
        if isinstance(facts.get("days_left"), int | float):
            data.days_left.setdefault(check_id, Series(check_id)).points.append((at, float(facts["days_left"])))
    data.availability = dict(availability)
    return data


def _color(ratio: float) -> str:
    return "#2e7d32" if ratio >= 0.999 else "#f9a825" if ratio >= 0.95 else "#c62828"


def svg_chart(series: Series, since: datetime, until: datetime, unit: str, *, floor_zero: bool = True) -> str:
    """One line chart as inline SVG: time on x, the value on y, min/max labelled."""
    values = [v for _, v in series.points]
    low = min([0.0, *values]) if floor_zero else min(values)
    high = max(values) if values else 1.0
    if high <= low:
        high = low + 1.0
    span = max((until - since).total_seconds(), 1.0)

    def xy(at: datetime, value: float) -> str:
        x = PAD + (WIDTH - 2 * PAD) * (at - since).total_seconds() / span
        y = HEIGHT - PAD + (value - low) / (high - low) * -(HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    points = " ".join(xy(at, v) for at, v in series.points)
    dots = "".join(
        f'<circle cx="{xy(at, v).split(",")[0]}" cy="{xy(at, v).split(",")[1]}" r="2.5"><title>'
        f"{escape(iso(at))}: {v:g} {escape(unit)}</title></circle>"
        for at, v in series.points
    )
    label = escape(series.check_id)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{label}">'
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fafafa" stroke="#ddd"/>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<text x="4" y="{PAD + 4}" font-size="10">{high:g}</text>'
        f'<text x="4" y="{HEIGHT - PAD}" font-size="10">{low:g}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{escape(since.strftime("%Y-%m-%d"))}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
        f"{escape(until.strftime('%Y-%m-%d'))}</text>"
        f'<text x="{WIDTH // 2}" y="14" font-size="11" text-anchor="middle">{label} ({escape(unit)})</text>'
        f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{points}"/>'
        f'<g fill="#1565c0">{dots}</g></svg>'
    )


def render_trend(data: TrendData) -> str:
    """The whole page as one HTML string."""
    env = escape(data.environment)
    targets = sorted({t for t, _ in data.availability})
    head = "".join(f"<th>{escape(layer)}</th>" for layer in LAYERS)
    rows = []
    for target in targets:
        cells = []
        for layer in LAYERS:
            cell = data.availability.get((target, layer))
            if not cell or not cell[1]:
                cells.append('<td class="none">-</td>')
                continue
            ratio = cell[0] / cell[1]
            cells.append(
                f'<td style="background:{_color(ratio)}" title="{cell[0]} of {cell[1]} check runs passed">'
                f"{ratio * 100:.1f}%</td>"
            )
        rows.append(f"<tr><th>{escape(target)}</th>{''.join(cells)}</tr>")
    table = (
        f"<table><tr><th>target</th>{head}</tr>{''.join(rows)}</table>"
        if rows
        else "<p>No runs recorded in this period.</p>"
    )

    def charts(series: dict[str, Series], unit: str, empty: str, worst_first: bool) -> str:
        if not series:
            return f"<p>{escape(empty)}</p>"
        if worst_first:  # latency: highest peak first
            ranked = sorted(series.values(), key=lambda s: (-max(v for _, v in s.points), s.check_id))
        else:  # days left: lowest first
            ranked = sorted(series.values(), key=lambda s: (min(v for _, v in s.points), s.check_id))
        shown = ranked[:MAX_CHARTS]
        more = (
            f"<p>{len(ranked) - len(shown)} more not shown (the {len(shown)} "
            f"{'slowest' if worst_first else 'closest to expiry'} are).</p>"
            if len(ranked) > len(shown)
            else ""
        )
        return "".join(f"<figure>{svg_chart(s, data.since, data.until, unit)}</figure>" for s in shown) + more

    period = f"{data.since.strftime('%Y-%m-%d')} to {data.until.strftime('%Y-%m-%d')}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{env}: trend {escape(period)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:center}td{color:#fff}td.none{color:#999}"
        "figure{margin:.5em 0}</style></head><body>"
        f"<h1>{env}: trend</h1><p>{escape(period)}, {data.runs} runs.</p>"
        "<h2>Availability per target and layer</h2>"
        "<p>Share of check runs that passed (warned and errored runs count as failing; skipped ones not at all).</p>"
        f"{table}"
        f"<h2>HTTP latency</h2>{charts(data.latency, 'ms', 'No HTTP latency recorded.', True)}"
        f"<h2>Certificate days left</h2>{charts(data.days_left, 'days', 'No certificate recorded.', False)}"
        "</body></html>\n"
    )


def write_trend(
    store: HistoryStore,
    environment: str,
    out: str | Path,
    *,
    days: int = 30,
    now: datetime,
    vantage: str | None = None,
) -> TrendData:
    data = load_trend(store, environment, days=days, now=now, vantage=vantage)
    Path(out).write_text(render_trend(data), encoding="utf-8")
    return data


def main_args(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_autoglm.history``: see __main__.py."""
    import argparse
    from datetime import UTC

    from pytest_autoglm.history.errors import HistoryUnavailable
    from pytest_autoglm.history.store import open_store

    parser = argparse.ArgumentParser(
        prog="python -m pytest_autoglm.history",
        description="Write a trend page (availability, latency, certificate days left) from a history store.",
    )
    parser.add_argument("--store", required=True, help="history.sqlite path, sqlite:///..., or postgresql://...")
    parser.add_argument("--environment", required=True, help="the environment to show")
    parser.add_argument("--days", type=int, default=30, help="how many days back (default 30)")
    parser.add_argument("--vantage", default=None, help="only this vantage (default: all)")
    parser.add_argument("--out", default="trend.html", help="the HTML file to write (default trend.html)")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    try:
        with open_store(args.store) as store:
            data = write_trend(
                store, args.environment, args.out, days=args.days, now=datetime.now(UTC), vantage=args.vantage
            )
    except HistoryUnavailable as exc:
        print(f"error: {exc}")
        return 1
    print(f"{args.out}: {data.environment}, {data.runs} runs in {args.days} days")
    return 0
