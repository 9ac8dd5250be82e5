"""The forked probe engine (``--autoglm-engine process``): same verdicts, no hang, no leftover child.

Forking is only safe in a single-threaded process, and pytest's own process here is not one
(xdist's workers run threads), so the runner is driven from a fresh interpreter per test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_autoglm.engine.process import ProcessRunner, fork_available
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.inventory.plan import build_plan
from pytest_autoglm.inventory.validate import load_inventory
from tests.fakes.tcp_servers import free_port, tcp_listener

pytestmark = pytest.mark.skipif(not fork_available(), reason="the process engine needs Linux (fork)")

_DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pytest_autoglm.engine.process import ProcessRunner
    from pytest_autoglm.engine.runner import Engine
    from pytest_autoglm.inventory.plan import build_plan
    from pytest_autoglm.inventory.validate import load_inventory

    checks = build_plan(load_inventory(sys.argv[1]))
    runner = ProcessRunner(Engine(), stall_limit_s=1.5 if sys.argv[2] == "stop" else None)
    runner.schedule(checks)
    out = {"forked": runner._pid is not None}
    child = runner._pid
    if sys.argv[2] == "kill":
        time.sleep(0.3)
        os.kill(runner._pid, signal.SIGKILL)
    if sys.argv[2] == "stop":  # alive but stuck: it never answers again
        time.sleep(0.3)
        os.kill(runner._pid, signal.SIGSTOP)
    started = time.monotonic()
    out["results"] = {c.id: [str(r.outcome), str(r.reason)] for c in checks for r in [runner.result(c)]}
    out["messages"] = sorted({runner.result(c).message for c in checks})
    out["waited_s"] = time.monotonic() - started
    runner.close()
    try:
        os.waitpid(child, os.WNOHANG)
        out["reaped"] = False
    except ChildProcessError:
        out["reaped"] = True
    print(json.dumps(out))
    """
)


def _drive(inventory: Path, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(inventory), mode], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _inventory(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(f"version: 1\nenvironment: lab\ndefaults: {{timeout: 2s, retries: 0}}\ntargets:\n{body}")
    return path


def test_the_forked_engine_gives_the_thread_engines_verdicts(tmp_path):
    with tcp_listener() as listener:
        refused, other = free_port(), free_port()
        path = _inventory(
            tmp_path,
            f"  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}, {refused}], refused: [{other}]}}\n",
        )
        forked = _drive(path, "wait")
        engine = Engine()
        try:
            checks = build_plan(load_inventory(path))
            engine.schedule(checks)
            threaded = {c.id: [str(r.outcome), str(r.reason)] for c in checks for r in [engine.result(c)]}
        finally:
            engine.close()
    assert forked["forked"] is True
    assert forked["results"] == threaded
    assert sorted(map(tuple, threaded.values())) == [("failed", "refused"), ("passed", "None"), ("passed", "None")]
    assert forked["reaped"] is True


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("kill", "the probe process stopped before this check finished"),
        (
            "stop",  # alive but stuck (SIGSTOP): stopped after the stall limit (1.5 s here)
            "the probe process stopped before this check finished (it sent no result for 2s and was stopped as stuck)",
        ),
    ],
)
def test_a_dead_or_stuck_probe_process_turns_open_checks_into_errors(tmp_path, mode, message):
    """A silent resolver keeps every check open for 30 s; the child is killed or stopped after 0.3 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        resolver = f"127.0.0.1:{silent.getsockname()[1]}"
        path = tmp_path / "inv.yaml"
        path.write_text(
            f"version: 1\ndefaults: {{timeout: 30s, retries: 0, resolvers: ['{resolver}']}}\ntargets:\n"
            "  - name: a\n    host: a.test\n    dns: {A: [127.0.0.1]}\n    tcp: {open: [80]}\n"
        )
        out = _drive(path, mode)
    assert out["forked"] is True
    assert {tuple(v) for v in out["results"].values()} == {("error", "setup")}
    assert out["messages"] == [message]
    assert out["waited_s"] < (5 if mode == "kill" else 10), "the parent waited for checks that could not come"
    assert out["reaped"] is True


def test_a_stuck_engine_thread_fails_its_open_checks(tmp_path):
    """The loop thread blocks (alive, no progress): waiting items fail after the stall limit."""
    import time

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        path = tmp_path / "inv.yaml"
        path.write_text(
            f"version: 1\ndefaults: {{timeout: 30s, retries: 0, resolvers: ['127.0.0.1:{silent.getsockname()[1]}']}}\n"
            "targets:\n  - name: a\n    host: a.test\n    dns: {A: [127.0.0.1]}\n"
        )
        engine = Engine(stall_limit_s=1.0)
        try:
            checks = build_plan(load_inventory(path))
            engine.schedule(checks)
            assert engine._loop is not None
            engine._loop.call_soon_threadsafe(time.sleep, 4)  # a blocking call on the loop
            started = time.monotonic()
            result = engine.result(checks[0])
            waited = time.monotonic() - started
            assert engine.alive() is False
        finally:
            engine.close()
    assert (str(result.outcome), str(result.reason)) == ("error", "setup")
    assert "finished no check for 1s, so it counts as stuck" in result.message
    assert waited < 3.5


def test_auto_keeps_a_small_run_in_this_process(tmp_path):
    with tcp_listener() as listener:
        path = _inventory(tmp_path, f"  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n")
        checks = build_plan(load_inventory(path))
        runner = ProcessRunner(Engine(), min_checks=len(checks) + 1)
        try:
            runner.schedule(checks)
            assert runner.forked is False
            assert [str(runner.result(c).outcome) for c in checks] == ["passed"]
        finally:
            runner.close()


def test_no_fork_while_a_thread_started_outside_threading_runs():
    """execnet (xdist's worker) starts its thread with ``_thread``; ``threading`` does not count it."""
    script = textwrap.dedent(
        """
        import _thread, threading, time
        from pytest_autoglm.engine.process import fork_is_safe
        alone = fork_is_safe()
        started = threading.Event()
        _thread.start_new_thread(lambda: (started.set(), time.sleep(5)), ())
        started.wait(5)
        print(alone, fork_is_safe(), threading.active_count())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.split() == ["True", "False", "1"]
