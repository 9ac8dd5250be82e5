"""The trend page: python -m pytest_autoglm.history, inline SVG, hostile values escaped."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from pytest_autoglm.history import CheckRecord, RunRecord, load_trend, open_store, record_run, render_trend

HOSTILE_TARGET = '"><img src=x onerror=alert(1)>'
HOSTILE_CHECK = "http[prod:</svg><script>alert(1)</script>:GET /]"
ROOT = Path(__file__).resolve().parents[2]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def fill(path: Path, now: datetime) -> None:
    with open_store(path) as store:
        for day in range(10):
            at = now - timedelta(days=10 - day)
            records = [
                CheckRecord("tcp[prod:api:443/open]", "F" if day in (3, 4) else "P", target="api", check="tcp"),
                CheckRecord(
                    "http[prod:api:GET /health]",
                    "P",
                    target="api",
                    check="http",
                    facts={"latency_ms": 20.0 + day, "status": 200},
                ),
                CheckRecord("tls[prod:api:443]", "P", target="api", check="tls", facts={"days_left": 40 - day}),
                CheckRecord(HOSTILE_CHECK, "W", target=HOSTILE_TARGET, check="http", facts={"latency_ms": 5.0}),
                CheckRecord("dns[prod:api:A]", "S", target="api", check="dns"),
            ]
            record_run(store, RunRecord("prod", at, at), records)
        record_run(store, RunRecord("staging", now, now), [CheckRecord("tcp[staging:x]", "F", target="x", check="tcp")])


def test_trend_data_and_page(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    fill(tmp_path / "h.sqlite", now)
    with open_store(tmp_path / "h.sqlite") as store:
        data = load_trend(store, "prod", days=30, now=now)
        week = load_trend(store, "prod", days=5, now=now)
    assert data.runs == 10 and week.runs == 5
    assert data.availability[("api", "tcp")] == [8, 10]
    assert ("api", "dns") not in data.availability  # skipped runs are not judged
    assert [v for _, v in data.latency["http[prod:api:GET /health]"].points] == [20.0 + d for d in range(10)]
    assert [v for _, v in data.days_left["tls[prod:api:443]"].points][-1] == 31.0
    page = render_trend(data)
    assert "80.0%" in page and "100.0%" in page
    parser = Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert HOSTILE_TARGET in "".join(parser.text)
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.DOTALL):
        ET.fromstring(svg)  # well-formed: no value broke out of its element or attribute
    assert page.count("<svg ") == 3 and "<polyline" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch


def test_cli_writes_the_page(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    fill(tmp_path / "h.sqlite", now)
    out = tmp_path / "trend.html"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest_autoglm.history", "--store", str(tmp_path / "h.sqlite")),
            *("--environment", "prod", "--days", "30", "--out", str(out)),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "prod, 10 runs in 30 days" in done.stdout
    assert "<h1>prod: trend</h1>" in out.read_text()


def test_cli_on_a_broken_store(tmp_path: Path) -> None:
    bad = tmp_path / "h.sqlite"
    bad.write_text("not a database" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "pytest_autoglm.history", "--store", str(bad), "--environment", "prod"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout.startswith("error: history store ") and "not a database" in done.stdout


def test_charts_are_capped_worst_first(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with open_store(tmp_path / "h.sqlite") as store:
        records = [
            CheckRecord(f"http[prod:t{i:02d}:GET /]", "P", target=f"t{i:02d}", check="http", facts={"latency_ms": i})
            for i in range(50)
        ]
        record_run(store, RunRecord("prod", now, now), records)
        page = render_trend(load_trend(store, "prod", days=1, now=now))
    assert page.count("<svg ") == 40 and "10 more not shown (the 40 slowest are)" in page
    assert "http[prod:t49:GET /]" in page and "http[prod:t09:GET /]" not in page


def test_empty_period(tmp_path: Path) -> None:
    with open_store(tmp_path / "h.sqlite") as store:
        page = render_trend(load_trend(store, "prod", days=7, now=datetime.now(UTC)))
    assert "No runs recorded in this period." in page and "0 runs" in page
