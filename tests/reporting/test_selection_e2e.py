"""Partial runs say so: every way pytest narrows or stops a run marks the JSON and the HTML (pytester, real sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.tcp_servers import free_port, tcp_listener
from tests.reporting.htmldom import parse


@pytest.fixture
def lab(pytester: pytest.Pytester) -> Any:
    """Three items: two on ``api`` that pass, one on ``web`` (tagged ``edge``) that fails (refused)."""
    with tcp_listener() as listener:
        refused = free_port()
        (pytester.path / "lab.yaml").write_text(
            "version: 1\nenvironment: lab\ndefaults: {retries: 0, timeout: 1s}\ntargets:\n"
            f"  - name: api\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}], refused: [{refused}]}}\n"
            f"  - name: web\n    host: 127.0.0.1\n    tags: [edge]\n    tcp: {{open: [{refused}]}}\n",
            encoding="utf-8",
        )
        yield {"open": listener.port, "refused": refused}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", *args)


def document(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "reports" / "lab.json").read_text(encoding="utf-8"))


def banner(pytester: pytest.Pytester) -> str:
    page = parse((pytester.path / "reports" / "lab.html").read_text(encoding="utf-8"))
    found = page.find_all(id="partial")
    return " ".join(found[0].text.split()) if found else ""


def assert_partial(pytester: pytest.Pytester, deselected: int, expression: str, reasons: list[str]) -> dict[str, Any]:
    doc = document(pytester)
    selection = doc["selection"]
    assert (selection["partial"], selection["deselected"], selection["expression"]) == (True, deselected, expression)
    assert selection["narrowed_by"] == reasons
    assert selection["planned"] == 3 and selection["selected"] == 3 - deselected
    assert len(doc["results"]) == selection["selected"] - selection["not_run"]
    how = expression or "by a plugin"
    assert banner(pytester).startswith(f"Partial run: {deselected} of 3 checks deselected ({how}).")
    page = parse((pytester.path / "reports" / "lab.html").read_text(encoding="utf-8"))
    assert f"{len(doc['results'])} checks of 3 planned" in page.find("p", "meta").text
    return doc


def test_a_full_run_is_not_partial(pytester, lab):
    result = run(pytester)
    assert result.ret == 1
    selection = document(pytester)["selection"]
    assert selection == {
        "partial": False,
        "deselected": 0,
        "expression": "",
        "planned": 3,
        "selected": 3,
        "not_run": 0,
        "stopped_early": False,
        "narrowed_by": [],
    }
    assert "partial" not in document(pytester)
    assert banner(pytester) == ""
    assert "PARTIAL RUN" not in result.stdout.str()


def test_keyword(pytester, lab):
    result = run(pytester, "-k", "api")
    assert result.ret == 0
    assert_partial(pytester, 1, "-k api", ["keyword"])
    result.stdout.fnmatch_lines(["PASS: 2 passed in *s", "PARTIAL RUN: 1 of 3 checks deselected (-k api)"])


def test_marker_and_keyword_together(pytester, lab):
    result = run(pytester, "-m", "tcp and not edge", "-k", "open")
    assert result.ret == 0
    assert_partial(pytester, 2, "-k open -m 'tcp and not edge'", ["keyword", "marker"])


def test_deselect_option(pytester, lab):
    run(pytester, "--deselect", f"lab.yaml::tcp[lab:web:{lab['refused']}/open]")
    assert_partial(pytester, 1, f"--deselect 'lab.yaml::tcp[lab:web:{lab['refused']}/open]'", ["deselect"])


def test_explicit_node_ids(pytester, lab):
    node = f"lab.yaml::tcp[lab:api:{lab['open']}/open]"
    result = run(pytester, node)
    assert result.ret == 0
    assert_partial(pytester, 2, f"'{node}'", ["node_ids"])


def test_last_failed(pytester, lab):
    pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", "-p", "cacheprovider")
    result = run(pytester, "-p", "cacheprovider", "--lf")
    assert result.ret == 1
    doc = assert_partial(pytester, 2, "--lf", ["last_failed"])
    assert [r["target"] for r in doc["results"]] == ["web"]


def test_stepwise(pytester, lab):
    pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", "-p", "cacheprovider", "--sw")
    run(pytester, "-p", "cacheprovider", "--sw")  # starts again at the failing item: the two before it are left out
    assert_partial(pytester, 2, "--sw", ["stepwise"])


def test_a_plugin_deselecting_through_the_hook(pytester, lab):
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            dropped = [item for item in items if ":web:" in item.name]
            items[:] = [item for item in items if item not in dropped]
            config.hook.pytest_deselected(items=dropped)
        """
    )
    assert run(pytester).ret == 0
    assert_partial(pytester, 1, "", ["plugin"])


def test_stopped_early(pytester, lab):
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            items.sort(key=lambda item: ":web:" not in item.name)  # the failing item first
        """
    )
    result = run(pytester, "-x", "-p", "no:randomly")
    assert result.ret == 1
    doc = document(pytester)
    assert doc["partial"] is True  # the 1.0 flag, kept
    selection = doc["selection"]
    assert (selection["partial"], selection["stopped_early"], selection["deselected"]) == (True, True, 0)
    assert selection["not_run"] == 2 and selection["narrowed_by"] == ["stopped_early"]
    assert banner(pytester).startswith("Partial run: stopped early (-x, --maxfail or an interrupt), 2 not run.")
    result.stdout.fnmatch_lines(["PARTIAL RUN: stopped early (-x, --maxfail or an interrupt), 2 not run"])


def test_a_keyword_that_leaves_everything_is_not_partial(pytester, lab):
    assert run(pytester, "-k", "lab").ret == 1
    selection = document(pytester)["selection"]
    assert (selection["partial"], selection["deselected"], selection["expression"]) == (False, 0, "-k lab")


def test_xdist_controller_knows_the_selection_too(pytester, lab):
    result = run(pytester, "-n", "2", "-k", "api")
    assert result.ret == 0
    assert_partial(pytester, 1, "-k api", ["keyword"])
