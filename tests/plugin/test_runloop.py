"""The order an inventory-only run walks its items in (``--autoglm-order``, plugin/fastpath/runloop.py)."""

from __future__ import annotations

import json
import re

import pytest

from tests.fakes.http_servers import filtered_port
from tests.fakes.tcp_servers import free_port, tcp_listener

OPEN_TARGETS = 6


@pytest.fixture
def slow_first(pytester: pytest.Pytester):
    """An inventory whose first target's port drops SYNs (a 1 s timeout), then quick targets."""
    with filtered_port() as dropped, tcp_listener() as listener:
        lines = ["version: 1", "environment: order", "defaults: {timeout: 1s, retries: 0}", "targets:"]
        lines += ["  - name: dropped", "    host: 127.0.0.1", f"    tcp: {{open: [{dropped}]}}"]
        for index in range(OPEN_TARGETS):
            port = listener.port if index % 2 == 0 else free_port()
            lines += [f"  - name: quick{index}", "    host: 127.0.0.1", f"    tcp: {{open: [{port}]}}"]
        (pytester.path / "order.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        yield


def walked(result: pytest.RunResult) -> list[str]:
    """Target names in the order ``-v`` printed their items."""
    return re.findall(r"^order\.yaml::tcp\[order:(\w+):", result.stdout.str(), flags=re.MULTILINE)


def reported(pytester: pytest.Pytester) -> list[str]:
    doc = json.loads((pytester.path / "reports" / "order.json").read_text())
    return [entry["target"] for entry in doc["results"]]


INVENTORY_ORDER = ["dropped", *[f"quick{i}" for i in range(OPEN_TARGETS)]]


@pytest.mark.parametrize(
    ("engine", "order", "as_ready"),
    [
        ("process", "auto", True),
        ("thread", "ready", True),
        ("process", "inventory", False),
        ("thread", "auto", False),
    ],
)
def test_items_are_walked_as_their_probes_finish(pytester, slow_first, engine, order, as_ready):
    result = pytester.runpytest_subprocess(
        "--autoglm-target", "order.yaml", "-v", "--autoglm-engine", engine, "--autoglm-order", order
    )
    result.assert_outcomes(passed=3, failed=4)
    names = walked(result)
    assert sorted(names) == sorted(INVENTORY_ORDER)
    if as_ready:
        assert names[-1] == "dropped", names  # it waited out its timeout; nobody waited behind it
    else:
        assert names == INVENTORY_ORDER
    assert reported(pytester) == INVENTORY_ORDER  # the reports keep inventory order either way
    summary = re.findall(r"^FAILED order\.yaml::tcp\[order:(\w+):", result.stdout.str(), flags=re.MULTILINE)
    assert summary == [name for name in INVENTORY_ORDER if name == "dropped" or int(name[-1]) % 2]


def test_with_the_fast_path_off_the_items_keep_collection_order(pytester, slow_first):
    result = pytester.runpytest_subprocess(
        "--autoglm-target",
        "order.yaml",
        "-v",
        "--autoglm-engine",
        "process",
        "--autoglm-order",
        "ready",
        "--autoglm-fast-path",
        "off",
    )
    result.assert_outcomes(passed=3, failed=4)
    assert walked(result) == INVENTORY_ORDER
    assert reported(pytester) == INVENTORY_ORDER
    summary = re.findall(r"^FAILED order\.yaml::tcp\[order:(\w+):", result.stdout.str(), flags=re.MULTILINE)
    assert summary == [name for name in INVENTORY_ORDER if name == "dropped" or int(name[-1]) % 2]


def test_the_order_ini_key(pytester, slow_first):
    pytester.makeini("[pytest]\nautoglm_order = ready\n")
    result = pytester.runpytest_subprocess("--autoglm-target", "order.yaml", "-v", "--autoglm-engine", "thread")
    assert walked(result)[-1] == "dropped"


def test_exitfirst_stops_at_the_first_failure_to_finish(pytester, slow_first):
    result = pytester.runpytest_subprocess("--autoglm-target", "order.yaml", "--autoglm-order", "ready", "-x", "-v")
    assert result.ret == 1
    names = walked(result)
    assert "dropped" not in names  # the refused ports failed first
    assert "stopping after 1 failures" in result.stdout.str()
    doc = json.loads((pytester.path / "reports" / "order.json").read_text())
    assert doc["partial"] is True
    assert doc["summary"]["failed"] == 1


def test_a_run_with_python_tests_keeps_collection_order(pytester, slow_first):
    pytester.makepyfile(test_mine="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--autoglm-target", "order.yaml", "test_mine.py", "-v", "--autoglm-order", "ready"
    )
    assert walked(result) == INVENTORY_ORDER


def test_a_child_that_dies_ends_the_run_with_errors_not_a_hang(pytester, slow_first):
    """The quick items report, then the child is killed: the dropped item becomes an error at once."""
    pytester.makeconftest(
        """
        import os, signal
        from pytest_autoglm.plugin.state import get_state

        def pytest_runtest_logreport(report):
            if report.when == "teardown" and "quick" in report.nodeid:
                runner = get_state(CONFIG).runner
                if runner._pid is not None:
                    os.kill(runner._pid, signal.SIGKILL)

        def pytest_configure(config):
            global CONFIG
            CONFIG = config
        """
    )
    result = pytester.runpytest_subprocess(
        "--autoglm-target",
        "order.yaml",
        "-v",
        "--autoglm-engine",
        "process",
        "--autoglm-order",
        "ready",
        "--autoglm-timeout",
        "30s",
    )
    result.stdout.fnmatch_lines(["*the probe process stopped before this check finished*"])
    assert "dropped" in walked(result)
    assert result.duration < 20  # not the 30 s timeout of the dropped port


@pytest.mark.parametrize("source", ["option", "ini"])
def test_a_bad_order_is_a_usage_error(pytester, source):
    (pytester.path / "e.yaml").write_text("version: 1\ntargets: []\n", encoding="utf-8")
    if source == "ini":
        pytester.makeini("[pytest]\nautoglm_order = random\n")
        result = pytester.runpytest("--autoglm-target", "e.yaml")
        where = "ini key autoglm_order"
    else:
        result = pytester.runpytest("--autoglm-target", "e.yaml", "--autoglm-order", "random")
        where = "--autoglm-order"
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*{where}: expected 'auto', 'ready' or 'inventory', got 'random'*"])


def test_marked_items_across_inventories_keep_pytests_setup_state_sound(pytester):
    """Items on pytest's full protocol (a skipif mark here) from two files, walked as ready."""
    with filtered_port() as dropped, tcp_listener() as listener:
        for name, ports in (("a", [dropped, listener.port]), ("b", [listener.port, listener.port])):
            lines = ["version: 1", f"environment: {name}", "defaults: {timeout: 1s, retries: 0}", "targets:"]
            for index, port in enumerate(ports):
                lines += [f"  - name: t{index}", "    host: 127.0.0.1", f"    tcp: {{open: [{port}]}}"]
            (pytester.path / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        pytester.makeconftest(
            """
            import pytest

            def pytest_collection_modifyitems(items):
                for item in items:
                    item.add_marker(pytest.mark.skipif(False, reason="never"))
            """
        )
        result = pytester.runpytest_subprocess(
            "--autoglm-target", "a.yaml", "--autoglm-target", "b.yaml", "--autoglm-order", "ready", "-v"
        )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.no_fnmatch_line("*not torn down*")


def test_a_skip_marked_item_does_not_wait_for_its_probe(pytester):
    with filtered_port() as dropped, tcp_listener() as listener:
        (pytester.path / "s.yaml").write_text(
            "version: 1\nenvironment: s\ndefaults: {timeout: 20s, retries: 0}\ntargets:\n"
            f"  - name: dropped\n    host: 127.0.0.1\n    tcp: {{open: [{dropped}]}}\n"
            f"  - name: quick\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n",
            encoding="utf-8",
        )
        pytester.makeconftest(
            """
            import pytest

            def pytest_collection_modifyitems(items):
                for item in items:
                    if "dropped" in item.nodeid:
                        item.add_marker(pytest.mark.skip(reason="known dead"))
            """
        )
        result = pytester.runpytest_subprocess("--autoglm-target", "s.yaml", "--autoglm-order", "ready", "-v")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.duration < 15  # not the dropped port's 20 s timeout


@pytest.mark.parametrize("option", ["--sw", "--ff"])
def test_options_that_order_the_run_keep_collection_order(pytester, slow_first, option):
    result = pytester.runpytest_subprocess("--autoglm-target", "order.yaml", "--autoglm-order", "ready", "-v", option)
    names = walked(result)
    assert names == INVENTORY_ORDER[: len(names)]


def test_auto_keeps_collection_order_for_several_inventories(pytester, slow_first):
    (pytester.path / "more.yaml").write_text(
        "version: 1\nenvironment: more\ntargets:\n  - name: m\n    host: 127.0.0.1\n    tcp: {refused: [1]}\n",
        encoding="utf-8",
    )
    result = pytester.runpytest_subprocess(
        "--autoglm-target", "order.yaml", "--autoglm-target", "more.yaml", "-v", "--autoglm-engine", "process"
    )
    assert walked(result) == INVENTORY_ORDER


def test_warnings_recorded_during_the_summary_are_still_counted(pytester, slow_first):
    pytester.makeconftest(
        """
        import warnings

        def pytest_collection_modifyitems():
            warnings.warn(UserWarning("early"))

        def pytest_terminal_summary():
            warnings.warn(UserWarning("late"))
        """
    )
    result = pytester.runpytest_subprocess("--autoglm-target", "order.yaml", "--autoglm-order", "ready")
    result.stdout.fnmatch_lines(["*4 failed, 3 passed, 2 warnings*"])


@pytest.mark.parametrize("option", ["--fixtures", "--fixtures-per-test"])
def test_showing_fixtures_probes_nothing(pytester, option):
    with tcp_listener() as listener:
        (pytester.path / "f.yaml").write_text(
            f"version: 1\ntargets:\n  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n",
            encoding="utf-8",
        )
        result = pytester.runpytest_subprocess("--autoglm-target", "f.yaml", option)
        assert result.ret == 0
        assert listener.accepted == 0
