"""The lean run protocol of inventory items keeps pytest's semantics around them."""

from __future__ import annotations

import json

import pytest

from tests.fakes.tcp_servers import free_port, tcp_listener


@pytest.fixture(params=["on", "off"])
def fast_path(request) -> list[str]:
    """The lean protocol is part of the fast path: with it off, pytest's own must give the same."""
    return ["--autoglm-fast-path", request.param]


@pytest.fixture
def port():
    with tcp_listener() as listener:
        yield listener.port


def _inventory(pytester: pytest.Pytester, open_port: int, closed_port: int) -> None:
    (pytester.path / "inv.yaml").write_text(
        "version: 1\nenvironment: lab\ndefaults: {timeout: 1s, retries: 0}\ntargets:\n"
        f"  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{open_port}, {closed_port}]}}\n"
        f"  - name: b\n    host: 127.0.0.1\n    tcp: {{open: [{open_port}]}}\n"
    )


def test_user_tests_before_and_after_inventory_items_keep_their_fixtures(pytester, port, fast_path):
    """Module and session fixtures of user tests on either side of the inventory items set up and
    tear down once each, in order (pytest's set-up state must not be left inconsistent)."""
    _inventory(pytester, port, free_port())
    pytester.makeconftest(
        """
        import pytest
        EVENTS = []

        @pytest.fixture(scope="session")
        def session_thing():
            EVENTS.append("session up")
            yield
            EVENTS.append("session down")
            print("EVENTS", EVENTS)

        @pytest.fixture(scope="module")
        def module_thing(request):
            EVENTS.append(f"up {request.module.__name__}")
            yield
            EVENTS.append(f"down {request.module.__name__}")
        """
    )
    # The inventory shares a folder with the first test file only: pytest must tear that folder's
    # node down before the second file's test (it asserts so).
    (pytester.path / "sub").mkdir()
    (pytester.path / "other").mkdir()
    (pytester.path / "inv.yaml").rename(pytester.path / "sub" / "inv.yaml")
    (pytester.path / "sub" / "test_a.py").write_text("def test_a(session_thing, module_thing):\n    pass\n")
    (pytester.path / "other" / "test_b.py").write_text("def test_b(session_thing, module_thing):\n    pass\n")
    result = pytester.runpytest(
        "sub/test_a.py", "sub/inv.yaml", "other/test_b.py", "--autoglm-target", "sub/inv.yaml", "-s", "-v", *fast_path
    )
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a.py::test_a PASSED*",
            "*inv.yaml::*PASSED*",
            "*test_b.py::test_b PASSED*",
        ]
    )
    assert (
        "EVENTS ['session up', 'up test_a', 'down test_a', 'up test_b', 'down test_b', 'session down']"
        in result.stdout.str()
    )


def test_skip_and_xfail_marks_on_inventory_items_still_apply(pytester, port, fast_path):
    closed = free_port()
    _inventory(pytester, port, closed)
    pytester.makeconftest(
        f"""
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if ":{closed}/" in item.name:
                    item.add_marker(pytest.mark.xfail(reason="known broken", strict=True))
                if item.check.target == "b":
                    item.add_marker(pytest.mark.skip(reason="not today"))
        """
    )
    result = pytester.runpytest("--autoglm-target", "inv.yaml", "-rsx", *fast_path)
    result.assert_outcomes(passed=1, xfailed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*not today*", "*XFAIL*known broken*"])


def test_maxfail_and_junit_see_every_inventory_item(pytester, port, fast_path):
    _inventory(pytester, port, free_port())
    result = pytester.runpytest("--autoglm-target", "inv.yaml", "--junitxml", "j.xml", "-p", "no:randomly", *fast_path)
    result.assert_outcomes(passed=2, failed=1)
    junit = (pytester.path / "j.xml").read_text()
    assert junit.count("<testcase ") == 3
    assert junit.count("<failure ") == 1
    assert 'name="autoglm_reason" value="refused"' in junit
    doc = json.loads((pytester.path / "reports" / "lab.json").read_text())
    assert doc["summary"]["failed"] == 1

    stopped = pytester.runpytest("--autoglm-target", "inv.yaml", "-x", *fast_path)
    stopped.assert_outcomes(passed=1, failed=1)


def test_runs_without_pytests_debugging_plugin(pytester, port, fast_path):
    _inventory(pytester, port, free_port())
    result = pytester.runpytest("--autoglm-target", "inv.yaml", "-p", "no:debugging", *fast_path)
    result.assert_outcomes(passed=2, failed=1)
