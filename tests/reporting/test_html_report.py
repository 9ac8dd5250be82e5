"""The HTML report rendered from known JSON documents: content, colours, escaping, no external references."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_autoglm.reporting.html_report import TEMPLATES, render_html, write_html
from pytest_autoglm.reporting.selection import Narrowing, selection_of
from tests.reporting.htmldom import Node, parse
from tests.reporting.sample import TLS_OK_DETAILS, fact, known_document

LAYERS = ("dns", "tcp", "tls", "http", "cors")


def page_of(document: dict) -> Node:
    return parse(render_html(document))


def matrix_of(page: Node) -> dict[tuple[str, str], Node]:
    """(target, layer) -> the cell element (an <a> or <span> with class cell)."""
    cells = {}
    for row in page.find("table", "matrix").find("tbody").find_all("tr"):
        target = row.find("td", "t").text.strip()
        for td in row.find_all("td"):
            if "data-layer" in td.attrs:
                cells[(target, td.attrs["data-layer"])] = td.find(cls="cell")
    return cells


def colour(cell: Node) -> str:
    (name,) = [c for c in cell.classes if c.startswith("c-")]
    return name.removeprefix("c-")


def words(node: Node) -> str:
    return " ".join(node.text.split())


def test_verdict_and_counts_come_first():
    page = page_of(known_document())
    header = page.find("header")
    assert "v-fail" in header.classes
    assert page.find("h1", id="verdict").text == "FAIL"
    pills = [words(s) for s in header.find("p", "counts").find_all("span")]
    assert pills == ["6 failing (3 root causes, 3 blocked)", "1 warned", "6 passed (1 after retries)"]
    assert "environment prod" in words(header)
    assert "prod.yaml" in words(header)
    # the verdict precedes the matrix, which precedes the failures
    order = [
        n.attrs.get("id") for n in page.iter() if n.attrs.get("id") in ("verdict", "matrix", "failures", "results")
    ]
    assert order == ["verdict", "matrix", "failures", "results"]
    assert not page.find_all(id="partial")


def test_matrix_cell_colours_per_target_and_layer():
    cells = matrix_of(page_of(known_document()))
    expected = {
        "api": ["pass", "pass", "pass", "warn", "warn"],  # http passed only after 3 attempts; cors warning severity
        "db": ["pass", "fail", "fail", "none", "none"],
        "ghost": ["fail", "fail", "none", "fail", "none"],
        "legacy": ["none", "none", "fail", "none", "none"],
    }
    assert {t for t, _ in cells} == set(expected)
    for target, colours in expected.items():
        assert [colour(cells[(target, layer)]) for layer in LAYERS] == colours, target
    assert "blocked" in cells[("db", "tls")].classes
    assert "blocked" not in cells[("db", "tcp")].classes
    assert words(cells[("db", "tcp")]) == "FAIL filtered"
    assert words(cells[("ghost", "http")]) == "BLOCKED by dns"
    assert words(cells[("api", "http")]) == "OK, RETRIED 1 after retries"
    assert words(cells[("legacy", "dns")]).startswith("not checked")
    # a red cell links to the card of its root cause
    assert cells[("ghost", "tcp")].tag == "a"
    card = page_of(known_document()).find("article", id=cells[("ghost", "tcp")].attrs["href"].lstrip("#"))
    assert "dns[prod:ghost:A]" in card.text


def test_failures_show_the_root_cause_first_then_attempts_and_details():
    page = page_of(known_document())
    cards = page.find("section", id="failures").find_all("article", "card")
    ids = [words(c.find(cls="card-id")).split(" ", 1)[1] for c in cards]
    # critical root causes in inventory order, the warning last; upstream items have no card of their own
    assert ids == [
        "tcp[prod:db:5432/open]",
        "dns[prod:ghost:A]",
        "tls[prod:legacy:443]",
        "cors[prod:api:https://app.example.com]",
    ]
    first = cards[0]
    assert words(first.find(cls="cause")) == "TCP filtered 10.0.0.5"
    assert (
        words(first.find("p", "message"))
        == "db.internal (10.0.0.5) port 5432: no answer within 2s (3 attempts); expected open"
    )
    facts = words(first.find(cls="facts"))
    assert "attempts 3" in facts and "duration 6.41s" in facts and "severity critical" in facts
    assert "tls[prod:db:5432]" in words(first.find(cls="blocked-list"))
    assert "1 more failed because of this" in words(first.find(cls="blocked-list"))
    details = {words(tr.find("th")): words(tr.find("td")) for tr in first.find("table", "kv").find_all("tr")}
    assert details == {"port": "5432"}
    ghost = cards[1]
    assert "2 more failed because of this" in words(ghost.find(cls="blocked-list"))
    assert json.loads(ghost.find("table", "kv").find("pre").text) == {"192.0.2.53": "NXDOMAIN"}
    assert "k-warn" in cards[3].classes and "k-fail" in cards[0].classes
    assert "severity warning" in words(cards[3].find(cls="facts"))


def test_certificate_expiry_and_latency_are_shown():
    page = page_of(known_document())
    certs = page.find("section", id="certificates").find("tbody").find_all("tr")
    rows = {words(tr.find("td", "id")): [words(td) for td in tr.find_all("td")] for tr in certs}
    assert rows["tls[prod:api:443]"][4:] == ["2027-03-01T12:00:00Z", "96"]
    assert rows["tls[prod:legacy:443]"][4:] == ["2026-10-01T00:00:00Z", "-55 (expired)"]
    expired = certs[1].find("td", "days")
    assert "c-fail" in expired.classes
    results = {words(tr.find("td", "id")): tr for tr in page.find("section", id="results").find("tbody").find_all("tr")}
    assert len(results) == 13
    http = [words(td) for td in results["http[prod:api:GET https://api.example.com/health]"].find_all("td")]
    assert http[4:7] == ["3", "812ms", "212ms dns 3.1ms · connect 2ms · tls 21ms · first byte 180ms"]
    tcp = [words(td) for td in results["tcp[prod:db:5432/open]"].find_all("td")]
    assert tcp[:6] == ["FAIL", "tcp[prod:db:5432/open]", "tcp/filtered", "10.0.0.5", "3", "6.41s"]
    assert "r-pass" in results["dns[prod:api:A]"].classes
    assert "r-warn" in results["http[prod:api:GET https://api.example.com/health]"].classes


def test_html_and_json_list_the_same_results_in_the_same_order():
    document = known_document()
    page = page_of(document)
    listed = [words(tr.find("td", "id")) for tr in page.find("section", id="results").find("tbody").find_all("tr")]
    assert listed == [r["id"] for r in document["results"]]


@pytest.mark.parametrize(
    ("results", "word", "css"),
    [
        ([fact("tcp", "a", "1/open")], "PASS", "v-pass"),
        ([fact("tcp", "a", "1/open", attempts=2)], "PASS WITH WARNINGS", "v-warn"),
        (
            [
                fact("tcp", "a", "1/open"),
                fact("tcp", "a", "2/open", "failed", severity="warning", warned=True, layer="tcp", reason="refused"),
            ],
            "PASS WITH WARNINGS",
            "v-warn",
        ),
        # --autoglm-fail-on warning: the warning-severity failure failed the run (no "warned")
        ([fact("tcp", "a", "2/open", "failed", severity="warning", layer="tcp", reason="refused")], "FAIL", "v-fail"),
        ([fact("tcp", "a", "1/open"), fact("tls", "a", "1", "error", layer="tls", reason="setup")], "FAIL", "v-fail"),
        ([fact("tcp", "a", "1/open", "skipped")], "NO RESULTS", "v-none"),
        ([], "NO RESULTS", "v-none"),
    ],
)
def test_verdict_words(results, word, css):
    page = page_of(known_document(results=results))
    assert page.find("h1", id="verdict").text == word
    assert css in page.find("header").classes


def test_all_clear_and_warning_colours():
    page = page_of(known_document(results=[fact("tcp", "a", "1/open", attempts=2), fact("dns", "a", "A")]))
    cells = matrix_of(page)
    assert colour(cells[("a", "tcp")]) == "warn" and colour(cells[("a", "dns")]) == "pass"
    assert "No failures" in words(page.find("section", id="failures"))


def test_partial_run_banner():
    page = page_of(known_document(partial=True))
    banner = page.find(id="partial")
    assert "Partial run: stopped early" in words(banner)
    assert "(partial run)" in page.find("title").text


def test_a_narrowed_run_has_a_banner_at_the_top_saying_how():
    selection = selection_of(
        planned=["a", "b", "c"],
        selected={"a"},
        reported={"a"},
        narrowing=Narrowing(("keyword",), ("-k api",)),
        stopped=False,
    )
    page = page_of(known_document(selection=selection))
    banner = page.find(id="partial")
    assert words(banner).startswith("Partial run: 2 of 3 checks deselected (-k api).")
    first = next(n for n in page.find("body").children if isinstance(n, Node))
    assert first is banner  # above the verdict


def test_a_full_run_has_no_banner():
    selection = selection_of(planned=["a"], selected={"a"}, reported={"a"}, narrowing=Narrowing(), stopped=False)
    page = page_of(known_document(selection=selection))
    assert not page.find_all(id="partial")


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    '<b>bold</b><a href="https://evil.example/">click</a><iframe src=//evil.example></iframe>',
    "</td></tr></table><style>@import url(https://evil.example/x.css);</style>",
    "{{ 7*7 }}{% raw %}",
]


def hostile_document() -> dict:
    evil = " ".join(HOSTILE)
    results = []
    for i, text in enumerate(HOSTILE):
        results.append(
            fact(
                "tls",
                text,
                f"443 {text}",
                "failed",
                layer="tls",
                reason=text,
                address=text,
                message=f"server said: {text}",
                order=i,
                details={
                    text: text,
                    "nested": {"header": text, "list": [text, 1, None]},
                    **TLS_OK_DETAILS,
                    "subject": f"CN={text}",
                    "issuer": text,
                    "not_after": text,
                    "days_left": text,
                    "timings_ms": {"total": text, "dns": text},
                },
            )
        )
        results.append(
            fact(
                "http",
                text,
                f"GET {text}",
                "failed",
                layer="tls",
                reason="upstream",
                message=text,
                order=i,
                details={"upstream": f"tls[prod:{text}:443 {text}]", "timings_ms": {"total": 12.5}},
            )
        )
    results.append(
        fact("cors", "ok", evil, "passed", message=evil, attempts=2, order=99, details={"headers": {evil: evil}})
    )
    document = known_document(environment=f"prod{HOSTILE[1]}", inventory=evil, results=results)
    # history (issue 16): a hostile DNS answer or certificate issuer reaches the page through the changes too
    for i, entry in enumerate(document["results"]):
        text = HOSTILE[i % len(HOSTILE)]
        entry["history"] = {
            "state": text,
            "consecutive_failures": 3,
            "failing_since": text,
            "last_change": text,
            "flapping": True,
            "recent": "PFWES" + text,
        }
    # vantages (issue 17): a vantage name from the command line, and a diagnosis quoting DNS answers and addresses
    for i, entry in enumerate(document["results"]):
        entry["vantage"] = HOSTILE[i % len(HOSTILE)]
    document["vantages"] = {
        "names": list(HOSTILE),
        "diagnoses": [
            {
                "target": text,
                "check": text,
                "subject": text,
                "pattern": text,
                "message": f"resolves differently: {text}",
                "affected": [text],
                "by_vantage": {
                    text: {"id": text, "outcome": text, "reason": text, "address": text, "state": text},
                    "local": {"outcome": "passed", "answers": [text, 1, None], "address": None},
                },
            }
            for text in HOSTILE
        ],
    }
    document["run"] = {"id": 2, "previous_id": HOSTILE[0]}
    document["changes"] = {
        "new_failures": list(HOSTILE),
        "fixed": list(HOSTILE),
        "still_failing": list(HOSTILE),
        "facts": [{"id": text, "field": "answers", "before": [text, "192.0.2.1"], "after": [text]} for text in HOSTILE]
        + [{"id": HOSTILE[0], "field": HOSTILE[1], "before": {"issuer": evil}, "after": evil}],
    }
    return document


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "div", "strong", "h1", "h2", "p", "span", "a", "main",
    "section", "table", "thead", "tbody", "tr", "th", "td", "b", "small", "i", "article", "ul", "li", "code", "details",
    "summary", "pre", "input", "label", "footer", "h3",
}  # fmt: skip
ALLOWED_ATTRS = {
    "lang",
    "charset",
    "name",
    "content",
    "class",
    "id",
    "href",
    "title",
    "data-layer",
    "data-vantage",
    "role",
    "open",
    "type",
    "for",
}


def test_hostile_document_is_escaped_everywhere():
    text = render_html(hostile_document())
    page = parse(text)
    tags = {n.tag for n in page.iter()}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    assert (
        not page.find_all("script")
        and not page.find_all("img")
        and not page.find_all("iframe")
        and not page.find_all("svg")
    )
    assert len(page.find_all("style")) == 1
    for node in page.iter():
        assert set(node.attrs) <= ALLOWED_ATTRS, (node.tag, node.attrs)
        assert not any(name.startswith("on") for name in node.attrs)
    lowered = text.lower()
    for raw in ("<script", "<img", "<svg", "<iframe", "<b>bold", "</style><", '<a href="https'):
        assert raw not in lowered, raw
    # displayed as text, literally: the parser gives back exactly what the server sent
    shown = page.text
    for hostile in HOSTILE:
        assert hostile in shown
    assert "{{ 7*7 }}" in shown and "49" not in shown  # data is never evaluated as a template
    changes = page.find_all(id="changes")
    assert changes and all(hostile in changes[0].text for hostile in HOSTILE)  # the changes, as text
    strips = page.find_all("span", cls="recent")
    assert strips and {c for strip in strips for i in strip.find_all("i") for c in i.classes} <= {
        "rs-P", "rs-F", "rs-W", "rs-E", "rs-S", "rs-x",
    }  # fmt: skip
    assert "failing since" in shown
    vantages = page.find(id="vantages")  # issue 17: the vantage matrices and the diagnoses, as text
    assert all(hostile in vantages.text for hostile in HOSTILE)
    assert {c for n in vantages.find_all("article") for c in n.classes} == {"diag", "k-differs"}
    assert {td.attrs["data-vantage"] for td in vantages.find_all("td") if "data-vantage" in td.attrs} == set(HOSTILE)


def external_references(text: str) -> list[str]:
    found = []
    for node in parse(text).iter():
        for name, value in node.attrs.items():
            external = value is not None and re.match(r"\s*([a-z][a-z0-9+.-]*:|//|\\\\)", value, re.IGNORECASE)
            if name in ("src", "href", "action", "srcset", "poster", "data") and external:
                found.append(f"{node.tag} {name}={value}")
    for style in parse(text).find_all("style"):
        if re.search(r"@import|url\s*\(|@font-face", style.text, re.IGNORECASE):
            found.append("@import, url() or @font-face in a style sheet")
    if re.search(r"<link|<script|<iframe|<object|<embed|<base|\sstyle\s*=", text, re.IGNORECASE):
        found.append("link, script, iframe, object, embed, base or a style attribute in the page")
    return found


@pytest.mark.parametrize("make", [known_document, hostile_document], ids=["known", "hostile"])
def test_no_external_references(make):
    text = render_html(make())
    assert external_references(text) == []
    hrefs = [n.attrs["href"] for n in parse(text).find_all("a")]
    assert hrefs and all(h.startswith("#") or re.fullmatch(r"[\w%.-]+\.json", h) for h in hrefs), hrefs


def test_template_never_marks_anything_safe():
    for template in TEMPLATES.iterdir():
        source = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe|Markup|autoescape\s+false|\|\s*tojson", source), template


def test_only_the_python_built_markup_reaches_the_template():
    """The matrix and results rows are built in Python (for speed), and a card's recent strip
    (``_recent_html``, class names from a fixed table); nothing else is marked safe.

    ``matrix_rows`` holds only ``_matrix_row_html`` output (see ``build_view``)."""
    import pytest_autoglm.reporting.html_report as module

    source = Path(module.__file__).read_text(encoding="utf-8")
    assert sorted(re.findall(r"Markup\((.*)\)", source)) == sorted(
        [
            '"".join(matrix_rows)',
            '"".join(_result_row_html(row, has_history) for row in result_rows)',
            '_recent_html(history["recent"]) if history else ""',
            '"".join(_vantage_tables_html(results, anchors))',
        ]
    )
    assert "|safe" not in source.replace(" ", "")


def test_write_html_creates_the_folder_and_replaces_atomically(tmp_path: Path):
    path = tmp_path / "out" / "prod.html"
    write_html(path, known_document())
    write_html(path, known_document(partial=True))
    assert [p.name for p in path.parent.iterdir()] == ["prod.html"]
    assert "Partial run" in path.read_text(encoding="utf-8")
