"""Whole pytest runs with remote vantages (issue 17): real gateways, namespaces, xdist workers.

Until the inventory's ``vantages:`` lands (another part of issue 17), the run's vantages come from
a conftest of the test run: its ``pytest_configure`` fills ``RunState.vantage_specs`` and turns each
planned check into one check per vantage (``@vantage`` ids, the vantage's host), as the plan will.
``plugin/vantages.py`` routes them after every other ``pytest_configure`` (trylast), so that works.
"""

from __future__ import annotations

import json

import pytest

from tests.fakes.tcp_servers import free_port, tcp_listener
from tests.fakes.vantage_lab import RUN_CONFTEST, bare_python, pid_alive, pid_spec, pids, vantage_namespace

netns = pytest.mark.netns


def _setup(pytester: pytest.Pytester, inventory: str, **setup: object) -> None:
    pytester.makeconftest(RUN_CONFTEST)
    (pytester.path / "vantages.json").write_text(json.dumps(setup))
    (pytester.path / "inv.yaml").write_text(inventory)


def _inventory(targets: str, timeout: str = "2s") -> str:
    return f"version: 1\nenvironment: lab\ndefaults: {{timeout: {timeout}, retries: 0}}\ntargets:\n{targets}"


def _results(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    report = json.loads((pytester.path / "reports" / "lab.json").read_text())
    return {entry["id"]: entry for entry in report["results"]}


def _run(pytester: pytest.Pytester, *args: str, timeout: float = 120) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--autoglm-target",
        "inv.yaml",
        "--autoglm-report-dir",
        "reports",
        "-p",
        "no:cacheprovider",
        "-rA",
        *args,
        timeout=timeout,
    )


@pytest.mark.parametrize("order", ["inventory", "ready"])  # ready: items walked as their results arrive (when_done)
def test_a_vantage_without_the_plugin_errors_its_items_only_and_says_so(pytester, tmp_path, order):
    python = bare_python(tmp_path)
    with tcp_listener() as listener:
        _setup(
            pytester,
            _inventory(f"  - name: api\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n"),
            specs={"bare": f"popen//python={python}//chdir={tmp_path}"},
            hosts={"local": "127.0.0.1", "bare": "127.0.0.1"},
        )
        result = _run(pytester, "--autoglm-order", order)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "autoglm: remote vantages bare: one execnet gateway each*",
            f"*1 check not run (error/vantage_unreachable)*vantage bare: {python} cannot import pytest_autoglm*"
            f"{python} -m pip install pytest-autoglm==*",
        ]
    )
    results = _results(pytester)
    port = listener.port
    assert results[f"tcp[lab:api:{port}/open@local]"]["outcome"] == "passed"
    bare = results[f"tcp[lab:api:{port}/open@bare]"]
    assert (bare["outcome"], bare["reason"], bare["vantage"]) == ("error", "vantage_unreachable", "bare")


@netns
def test_a_namespace_vantage_sees_the_loopback_bind_mistake(pytester, tmp_path):
    pidfile = tmp_path / "pids"
    with (
        vantage_namespace() as lab,
        tcp_listener("127.0.0.1") as loopback_only,
        tcp_listener("0.0.0.0") as everywhere,
    ):
        lo, anywhere = loopback_only.port, everywhere.port
        _setup(
            pytester,
            _inventory(f"  - name: api\n    host: 127.0.0.1\n    tcp: {{open: [{lo}, {anywhere}]}}\n"),
            specs={"lan": pid_spec(tmp_path, pidfile, lab=lab)},
            hosts={"local": "127.0.0.1", "lan": lab.host_address},
        )
        result = _run(pytester)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["autoglm: remote vantages lan: *", f"FAILED *tcp?lab:api:{lo}/open@lan?*"])
    results = _results(pytester)
    assert {i: (r["outcome"], r["reason"], r["vantage"]) for i, r in results.items()} == {
        f"tcp[lab:api:{lo}/open@local]": ("passed", None, "local"),
        f"tcp[lab:api:{anywhere}/open@local]": ("passed", None, "local"),
        f"tcp[lab:api:{lo}/open@lan]": ("failed", "refused", "lan"),
        f"tcp[lab:api:{anywhere}/open@lan]": ("passed", None, "lan"),
    }
    assert len(pids(pidfile)) == 1  # one gateway for the vantage
    assert not any(pid_alive(pid) for pid in pids(pidfile))  # and it is gone after the session


@netns
def test_vantages_compose_with_xdist_workers(pytester, tmp_path):
    """Each worker opens its own gateway to the vantage; verdicts are those of one process."""
    pidfile = tmp_path / "pids"
    with vantage_namespace() as lab, tcp_listener("127.0.0.1") as lo, tcp_listener("0.0.0.0") as anywhere:
        targets = "".join(
            f"  - name: {name}\n    host: 127.0.0.1\n    tcp: {{open: [{lo.port}, {anywhere.port}]}}\n"
            for name in ("api", "web")
        )
        _setup(
            pytester,
            _inventory(targets),
            specs={"lan": pid_spec(tmp_path, pidfile, lab=lab)},
            hosts={"local": "127.0.0.1", "lan": lab.host_address},
        )
        result = _run(pytester, "-n", "2", "--autoglm-distribute")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(
        ["autoglm: vantages and xdist workers compose: each of the 2 workers opens its own execnet gateway*(lan)*"]
    )
    results = _results(pytester)
    failed = sorted(i for i, r in results.items() if r["outcome"] != "passed")
    assert failed == [f"tcp[lab:api:{lo.port}/open@lan]", f"tcp[lab:web:{lo.port}/open@lan]"]
    assert len(pids(pidfile)) == 2  # one gateway per worker (each has one target's items)
    assert not any(pid_alive(pid) for pid in pids(pidfile))


@netns
def test_a_gateway_killed_midway_ends_the_run_at_once(pytester, tmp_path):
    """The vantage's slow item becomes an error as soon as its gateway dies; nothing waits for its 60 s."""
    pidfile = tmp_path / "pids"
    with vantage_namespace(dropped=[9000]) as lab:  # the namespace drops SYNs to its own port 9000
        _setup(
            pytester,
            _inventory(
                "  - name: quick\n    host: 127.0.0.1\n    tcp: {refused: [9003]}\n"
                "  - name: slow\n    host: 127.0.0.1\n    tcp: {open: [9000]}\n",
                timeout="60s",
            ),
            specs={"lan": pid_spec(tmp_path, pidfile, lab=lab)},
            hosts={"lan": "127.0.0.1"},
            kill_after="tcp[lab:quick:9003/refused@lan]",
            pidfile=str(pidfile),
        )
        result = _run(pytester, timeout=45)  # pytester fails the test if the run takes longer
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*check* not run (error/vantage_unreachable)*the gateway to vantage lan died midway*"])
    slow = _results(pytester)["tcp[lab:slow:9000/open@lan]"]
    assert (slow["outcome"], slow["reason"]) == ("error", "vantage_unreachable")
    assert not any(pid_alive(pid) for pid in pids(pidfile))


def test_a_run_without_vantages_has_no_vantage_line(pytester):
    port = free_port()
    (pytester.path / "inv.yaml").write_text(
        _inventory(f"  - name: api\n    host: 127.0.0.1\n    tcp: {{refused: [{port}]}}\n")
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("autoglm:") and "vantage" in line]
    assert "vantage" not in next(iter(_results(pytester).values()))
