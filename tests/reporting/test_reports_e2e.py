"""End to end with pytester: HTML beside JSON, one per environment, pytest-html alongside, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.tcp_servers import free_port, tcp_listener
from tests.reporting.htmldom import parse
from tests.reporting.test_html_report import LAYERS, colour, external_references, matrix_of, words

SECRET_HOST = "localhost"  # resolves here; given through ${AUTOGLM_TEST_HOST}, so it is a secret


@pytest.fixture
def listener():
    with tcp_listener() as lst:
        yield lst


def write(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / name
    path.write_text(text, encoding="utf-8")
    return path


def inventory(environment: str, open_port: int, refused: int) -> str:
    return (
        f"version: 1\nenvironment: {environment}\ndefaults: {{retries: 0, timeout: 1s}}\ntargets:\n"
        f"  - name: api\n    host: 127.0.0.1\n    tcp: {{open: [{open_port}], refused: [{refused}]}}\n"
        f"  - name: web\n    host: ${{AUTOGLM_TEST_HOST}}\n    tcp: {{open: [{refused}]}}\n"
    )


def test_html_beside_json_with_pytest_html_and_secrets_masked(pytester, listener, monkeypatch):
    monkeypatch.setenv("AUTOGLM_TEST_HOST", SECRET_HOST)
    refused = free_port()
    write(pytester, "lab.yaml", inventory("lab", listener.port, refused))
    result = pytester.runpytest("--autoglm-target", "lab.yaml", "--html=ph.html", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=1)

    reports = pytester.path / "reports"
    assert sorted(p.name for p in reports.iterdir() if not p.name.startswith("history.sqlite")) == [
        "lab.html",
        "lab.json",
        "lab.prom",
    ]
    assert (pytester.path / "ph.html").is_file()  # pytest-html's own report, untouched by ours
    document = json.loads((reports / "lab.json").read_text(encoding="utf-8"))
    text = (reports / "lab.html").read_text(encoding="utf-8")
    page = parse(text)

    assert page.find("h1", id="verdict").text == "FAIL"
    cells = matrix_of(page)
    assert [colour(cells[("api", layer)]) for layer in LAYERS] == ["none", "pass", "none", "none", "none"]
    assert [colour(cells[("web", layer)]) for layer in LAYERS] == ["none", "fail", "none", "none", "none"]
    card = page.find("section", id="failures").find("article", "card")
    assert f"tcp[lab:web:{refused}/open]" in words(card.find(cls="card-id"))
    assert words(card.find(cls="cause")) == "TCP refused 127.0.0.1"
    assert "*** (127.0.0.1)" in words(card.find("p", "message"))
    listed = [words(tr.find("td", "id")) for tr in page.find("section", id="results").find("tbody").find_all("tr")]
    assert listed == [r["id"] for r in document["results"]]  # the same facts as the JSON, in the same order
    assert external_references(text) == []

    terminal = result.stdout.str()
    for output in (text, terminal, (pytester.path / "ph.html").read_text(encoding="utf-8")):
        assert SECRET_HOST not in output
    result.stdout.fnmatch_lines(
        [
            "*= autoglm: lab =*",
            "FAIL: 1 failing (1 root cause), 2 passed in *s",
            "api  * dns -    tcp ok   tls -    http -    cors -",
            "web  * dns -    tcp FAIL tls -    http -    cors -",
            f"tcp[[]lab:web:{refused}/open[]]  tcp/refused  127.0.0.1  *[*][*][*] (127.0.0.1)*",
            "autoglm report: *lab.json",
            "autoglm report: *lab.html",
        ]
    )
    # pytest-html got our Layer and Reason columns
    assert "col-autoglm-reason" in (pytester.path / "ph.html").read_text(encoding="utf-8")


def test_two_targets_give_two_reports_each_with_its_environment(pytester, listener, monkeypatch):
    monkeypatch.setenv("AUTOGLM_TEST_HOST", SECRET_HOST)
    refused = free_port()
    write(pytester, "a.yaml", inventory("alpha", listener.port, refused))
    write(pytester, "b.yaml", inventory("beta", listener.port, refused).replace("name: web", "name: www"))
    result = pytester.runpytest("--autoglm-target", "a.yaml", "--autoglm-target", "b.yaml", "-p", "no:cacheprovider")
    assert result.ret == 1
    reports = pytester.path / "reports"
    assert sorted(p.name for p in reports.iterdir() if not p.name.startswith("history.sqlite")) == [
        "alpha.html",
        "alpha.json",
        "alpha.prom",
        "beta.html",
        "beta.json",
        "beta.prom",
    ]
    for env, other, failing in (("alpha", "beta", "web"), ("beta", "alpha", "www")):
        text = (reports / f"{env}.html").read_text(encoding="utf-8")
        page = parse(text)
        ids = [words(tr.find("td", "id")) for tr in page.find("section", id="results").find("tbody").find_all("tr")]
        assert len(ids) == 3 and all(i.split("[", 1)[1].startswith(f"{env}:") for i in ids), ids
        assert f"{other}:" not in text and f"{other}.json" not in text
        assert f"environment {env}" in words(page.find("header"))
        assert {t for t, _ in matrix_of(page)} == {"api", failing}
        assert SECRET_HOST not in text
    result.stdout.fnmatch_lines(["*= autoglm: alpha =*", "web  * tcp FAIL*", "*= autoglm: beta =*", "www  * tcp FAIL*"])
    assert SECRET_HOST not in result.stdout.str()


def test_no_reports_and_no_summary_for_collect_only(pytester, listener):
    write(
        pytester,
        "c.yaml",
        f"version: 1\ntargets:\n  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n",
    )
    result = pytester.runpytest("--autoglm-target", "c.yaml", "--collect-only", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert not (pytester.path / "reports").exists()
    assert "autoglm: c" not in result.stdout.str()


@pytest.mark.parametrize("dist", [[], ["-n", "2", "--autoglm-distribute"]], ids=["one-process", "xdist"])
def test_a_check_the_user_marked_xfail_is_a_known_failure_not_a_failing_one(pytester, listener, dist):
    refused = free_port()
    write(
        pytester,
        "lab.yaml",
        f"version: 1\nenvironment: lab\ndefaults: {{retries: 0, timeout: 1s}}\ntargets:\n"
        f"  - name: api\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}, {refused}]}}\n",
    )
    pytester.makeconftest(
        f"""
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name.endswith("{refused}/open]"):
                    item.add_marker(pytest.mark.xfail(reason="ticket 123: port not opened yet"))
        """
    )
    result = pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", *dist)
    assert result.ret == 0
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(["PASS WITH WARNINGS: 1 xfailed, 1 passed in *s"])
    document = json.loads((pytester.path / "reports" / "lab.json").read_text(encoding="utf-8"))
    entry = next(e for e in document["results"] if e["id"].endswith(f"{refused}/open]"))
    assert (entry["outcome"], entry["reason"], entry["xfailed"]) == ("failed", "refused", True)
    assert document["summary"]["xfailed"] == 1
    assert "xfailed" not in next(e for e in document["results"] if e is not entry)
    page = parse((pytester.path / "reports" / "lab.html").read_text(encoding="utf-8"))
    assert page.find("h1", id="verdict").text == "PASS WITH WARNINGS"
    assert colour(matrix_of(page)[("api", "tcp")]) == "warn"


def test_a_check_marked_xfail_that_errors_is_still_reported(pytester, listener):
    """An error (here: a CA bundle that is not PEM, found when the probe loads it) is raised in
    setup; pytest turns it into xfailed without a call phase, and the result must still reach
    the reports."""
    write(pytester, "garbage.pem", "not a certificate\n")
    write(
        pytester,
        "lab.yaml",
        "version: 1\nenvironment: lab\ndefaults: {retries: 0, timeout: 1s, ca_bundle: garbage.pem}\ntargets:\n"
        f"  - name: api\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n"
        f"    tls: {{port: {listener.port}}}\n",
    )
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name.startswith("tls["):
                    item.add_marker(pytest.mark.xfail(reason="CA not deployed yet"))
        """
    )
    result = pytester.runpytest_subprocess("--autoglm-target", "lab.yaml")
    result.assert_outcomes(passed=1, xfailed=1)
    document = json.loads((pytester.path / "reports" / "lab.json").read_text(encoding="utf-8"))
    entry = next(e for e in document["results"] if e["check"] == "tls")
    assert (entry["outcome"], entry["xfailed"]) == ("error", True)
    assert document["summary"]["xfailed"] == 1
