"""Running checks from remote vantages over execnet (issue 17): real gateways, real namespaces.

Each remote vantage is a real interpreter at the end of an execnet gateway: this test interpreter
inside a network namespace (``ip netns exec``), a bare venv without the plugin, an interpreter that
imports another version of it. Nothing is mocked; the namespace tests skip where namespaces cannot
be built (not root, no ``ip``/``nft``).
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_autoglm.core.vocabulary import Outcome, Reason
from pytest_autoglm.engine.router import VantageRouter
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.engine.vantage import GatewayRunner
from pytest_autoglm.errors import InventoryError
from pytest_autoglm.inventory.plan import Check, build_plan
from pytest_autoglm.inventory.validate import load_inventory
from tests.fakes.tcp_servers import free_port, tcp_listener
from tests.fakes.vantage_lab import (
    at_vantage,
    bare_python,
    kill,
    netns_spec,
    other_version_spec,
    pid_alive,
    pid_spec,
    vantage_namespace,
)

netns = pytest.mark.netns
_ROOT = Path(__file__).resolve().parent.parent.parent


def _plan(tmp_path: Path, body: str, *, timeout: str = "2s", extra: str = "") -> list[Check]:
    path = tmp_path / "inv.yaml"
    path.write_text(
        f"version: 1\nenvironment: lab\n{extra}defaults: {{timeout: {timeout}, retries: 0}}\ntargets:\n{body}"
    )
    return build_plan(load_inventory(path))


def _tcp(tmp_path: Path, ports: dict[str, list[int]], *, host: str = "127.0.0.1", timeout: str = "2s") -> list[Check]:
    spec = ", ".join(f"{state}: {values}" for state, values in ports.items())
    return _plan(tmp_path, f"  - name: a\n    host: {host}\n    tcp: {{{spec}}}\n", timeout=timeout)


def _pid(pidfile: Path) -> int:
    return int(pidfile.read_text().strip())


def test_a_check_travels_pickled_with_its_redaction(tmp_path, monkeypatch):
    """Checks go to a vantage pickled: their Redactor must still mask the inventory's secrets there."""
    monkeypatch.setenv("AUTOGLM_VANTAGE_TOKEN", "s3cr3t-token-value")
    checks = _plan(
        tmp_path,
        "  - name: api\n    host: 127.0.0.1\n    http:\n"
        "      - url: http://127.0.0.1:9/\n        headers: {Authorization: 'Bearer ${secrets.token}'}\n",
        extra="secrets:\n  token: ${AUTOGLM_VANTAGE_TOKEN}\n",
    )
    travelled = pickle.loads(pickle.dumps(at_vantage(checks, "lan"), protocol=pickle.HIGHEST_PROTOCOL))
    assert [c.id for c in travelled] == [c.id[:-1] + "@lan]" for c in checks]
    assert travelled == at_vantage(checks, "lan")
    for check in travelled:
        assert (
            check.redact("token s3cr3t-token-value here")
            == check.redact("token *** here")
            != ("token s3cr3t-token-value here")
        )


@pytest.mark.parametrize("suite", sorted((_ROOT / "example_suites").glob("*.yaml")), ids=lambda p: p.name)
def test_every_kind_of_check_travels_pickled_unchanged(suite, monkeypatch):
    for name in set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", suite.read_text())):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    try:
        loaded = load_inventory(suite)
    except InventoryError as exc:  # a suite that names files its demo makes (certificates)
        pytest.skip(f"needs files made by its demo: {exc}")
    checks = at_vantage(build_plan(loaded), "lan")
    assert pickle.loads(pickle.dumps(checks, protocol=pickle.HIGHEST_PROTOCOL)) == checks


def test_a_vantage_without_the_plugin_errors_and_says_what_to_install(tmp_path):
    python = bare_python(tmp_path)
    with tcp_listener() as listener:
        checks = _tcp(tmp_path, {"open": [listener.port]})
        # chdir: a checkout of this project in the current directory would be importable ('' on sys.path)
        remote = GatewayRunner("bare", f"popen//python={python}//chdir={tmp_path}")
        router = VantageRouter(Engine(), {"bare": remote})
        local, far = at_vantage(checks, "local"), at_vantage(checks, "bare")
        try:
            router.schedule([*local, *far])
            assert [router.result(c).outcome for c in local] == [Outcome.PASSED]  # the other vantages proceed
            result = router.result(far[0])
            assert router.alive()  # every check of the vantage is settled: no wait for it is in vain
        finally:
            router.close()
        assert not remote.alive()
    assert (result.outcome, result.layer, result.reason) == (Outcome.ERROR, None, Reason.VANTAGE_UNREACHABLE)
    assert f"{python} cannot import pytest_autoglm" in result.message
    assert f"{python} -m pip install pytest-autoglm==" in result.message
    assert router.unreachable() == {"bare": result.message}


def test_a_vantage_with_another_version_errors_and_names_both(tmp_path):
    import pytest_autoglm

    with tcp_listener() as listener:
        checks = at_vantage(_tcp(tmp_path, {"open": [listener.port]}), "old")
        remote = GatewayRunner("old", f"{other_version_spec(tmp_path, '0.0.1')}//chdir={tmp_path}")
        try:
            remote.schedule(checks)
            result = remote.result(checks[0])
        finally:
            remote.close()
    assert (result.outcome, result.reason) == (Outcome.ERROR, Reason.VANTAGE_UNREACHABLE)
    assert "has pytest-autoglm 0.0.1" in result.message
    assert f"this run has {pytest_autoglm.__version__}" in result.message
    assert f"pip install pytest-autoglm=={pytest_autoglm.__version__}" in result.message


def test_a_gateway_that_does_not_open_in_time_is_unreachable(tmp_path):
    pidfile = tmp_path / "pid"
    script = tmp_path / "silent-python.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")  # never answers execnet's bootstrap
    script.chmod(0o755)
    checks = at_vantage(_tcp(tmp_path, {"refused": [free_port()]}), "mute")
    remote = GatewayRunner("mute", f"popen//python={script}", open_timeout_s=1.0)
    try:
        remote.schedule(checks)
        result = remote.result(checks[0])
        assert (result.outcome, result.reason) == (Outcome.ERROR, Reason.VANTAGE_UNREACHABLE)
        assert "did not open within 1s" in result.message
        later = at_vantage(_tcp(tmp_path, {"refused": [free_port()]}), "mute")
        remote.schedule(later)  # a vantage found unreachable is not tried again
        assert remote.result(later[0]).message == result.message
    finally:
        remote.close()
        if pidfile.exists():
            kill(_pid(pidfile))


def test_close_does_not_wait_for_a_gateway_still_opening(tmp_path):
    pidfile = tmp_path / "pid"
    script = tmp_path / "silent-python.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    script.chmod(0o755)
    checks = at_vantage(_tcp(tmp_path, {"refused": [free_port()]}), "mute")
    remote = GatewayRunner("mute", f"popen//python={script}", open_timeout_s=60.0)
    try:
        remote.schedule(checks)
        began = time.monotonic()
        remote.close()
        closed_in = time.monotonic() - began
        result = remote.result(checks[0])
    finally:
        if pidfile.exists():
            kill(_pid(pidfile))
    assert closed_in < 30  # long before the 60 s open timeout
    assert (result.outcome, result.reason) == (Outcome.ERROR, Reason.VANTAGE_UNREACHABLE)


def test_a_stuck_vantage_is_stopped_by_the_stall_watchdog(tmp_path):
    pidfile = tmp_path / "pid"
    first = at_vantage(_tcp(tmp_path, {"refused": [free_port()]}), "stuck")
    remote = GatewayRunner("stuck", pid_spec(tmp_path, pidfile), stall_limit_s=1.5)
    try:
        remote.schedule(first)
        assert remote.result(first[0]).outcome is Outcome.PASSED
        pid = _pid(pidfile)
        subprocess.run(["kill", "-STOP", str(pid)], check=True)  # alive but never answers again
        second = at_vantage(_tcp(tmp_path, {"refused": [free_port()]}), "stuck")
        remote.schedule(second)
        result = remote.result(second[0])
        assert (result.outcome, result.reason) == (Outcome.ERROR, Reason.VANTAGE_UNREACHABLE)
        assert "sent no result" in result.message and "stopped as stuck" in result.message
    finally:
        remote.close()
    assert not pid_alive(pid)


def test_the_gateway_process_is_gone_after_close(tmp_path):
    pidfile = tmp_path / "pid"
    checks = at_vantage(_tcp(tmp_path, {"refused": [free_port()]}), "far")
    remote = GatewayRunner("far", pid_spec(tmp_path, pidfile))
    remote.schedule(checks)
    assert remote.result(checks[0]).outcome is Outcome.PASSED
    pid = _pid(pidfile)
    assert pid_alive(pid) and remote.remote_pid == pid
    remote.close()
    assert not pid_alive(pid)


def test_an_unknown_vantage_is_an_error_of_its_checks_only(tmp_path):
    checks = _tcp(tmp_path, {"refused": [free_port()]})
    router = VantageRouter(Engine(), {})
    try:
        router.schedule([*at_vantage(checks, "local"), *at_vantage(checks, "nowhere")])
        assert router.result(at_vantage(checks, "local")[0]).outcome is Outcome.PASSED
        result = router.result(at_vantage(checks, "nowhere")[0])
    finally:
        router.close()
    assert (result.outcome, result.reason) == (Outcome.ERROR, Reason.VANTAGE_UNREACHABLE)
    assert "no gateway spec for vantage 'nowhere'" in result.message


_FORK_DRIVER = textwrap.dedent(
    """
    import dataclasses, json, sys
    from pytest_autoglm.engine.process import ProcessRunner
    from pytest_autoglm.engine.router import VantageRouter
    from pytest_autoglm.engine.runner import Engine
    from pytest_autoglm.engine.vantage import GatewayRunner
    from pytest_autoglm.inventory.plan import build_plan
    from pytest_autoglm.inventory.validate import load_inventory
    from tests.fakes.vantage_lab import at_vantage

    checks = build_plan(load_inventory(sys.argv[1]))
    local, far = at_vantage(checks, "local"), at_vantage(checks, "far")
    process = ProcessRunner(Engine())
    router = VantageRouter(process, {"far": GatewayRunner("far", f"popen//python={sys.executable}")})
    router.schedule([*far, *local])  # given in any order: the local checks go first
    out = {"forked": process.forked, "results": {c.id: str(router.result(c).outcome) for c in [*local, *far]}}
    router.close()
    print(json.dumps(out))
    """
)


def test_the_local_checks_are_forked_before_any_gateway_thread_starts(tmp_path):
    """ProcessRunner forks only while no other thread runs; execnet starts threads: local goes first."""
    path = tmp_path / "inv.yaml"
    path.write_text(
        "version: 1\nenvironment: lab\ndefaults: {timeout: 2s, retries: 0}\ntargets:\n"
        f"  - name: a\n    host: 127.0.0.1\n    tcp: {{refused: [{free_port()}]}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", _FORK_DRIVER, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=_ROOT,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["forked"] is True
    assert set(out["results"].values()) == {"passed"}
    assert len(out["results"]) == 2


# -- namespaces: the loopback-bind mistake, a gateway killed midway -------------------------------------------


@netns
def test_a_namespace_vantage_sees_loopback_only_services_refused(tmp_path):
    """A service bound to 127.0.0.1 answers locally and is refused from another namespace; 0.0.0.0 answers both."""
    with (
        vantage_namespace() as lab,
        tcp_listener("127.0.0.1") as loopback_only,
        tcp_listener("0.0.0.0") as everywhere,
    ):
        checks = _tcp(tmp_path, {"open": [loopback_only.port, everywhere.port]})
        local = at_vantage(checks, "local")
        lan = at_vantage(checks, "lan", host=lab.host_address)
        router = VantageRouter(Engine(), {"lan": GatewayRunner("lan", netns_spec(lab))})
        try:
            router.schedule([*local, *lan])
            seen = {c.id: router.result(c) for c in [*local, *lan]}
        finally:
            router.close()
    assert [seen[c.id].outcome for c in local] == [Outcome.PASSED, Outcome.PASSED]
    lo, anywhere = (seen[c.id] for c in lan)
    assert (lo.outcome, lo.reason) == (Outcome.FAILED, Reason.REFUSED)
    assert lab.host_address in lo.message
    assert anywhere.outcome is Outcome.PASSED


@netns
def test_a_gateway_killed_midway_turns_its_open_checks_into_errors_at_once(tmp_path):
    pidfile = tmp_path / "pid"
    with vantage_namespace(dropped=[9000]) as lab:  # the namespace drops SYNs to its own port 9000
        quick = at_vantage(_tcp(tmp_path, {"refused": [9003]}), "lan")
        slow = at_vantage(_tcp(tmp_path, {"open": [9000]}, timeout="60s"), "lan")  # open for a minute
        remote = GatewayRunner("lan", pid_spec(tmp_path, pidfile, lab=lab))
        try:
            remote.schedule([*quick, *slow])
            assert remote.result(quick[0]).outcome is Outcome.PASSED
            pid = _pid(pidfile)
            settled: list[object] = []
            remote.when_done(slow[0], settled.append)
            assert not settled  # still open: the namespace drops its SYNs
            killed_at = time.monotonic()
            kill(pid)
            result = remote.result(slow[0])
            waited = time.monotonic() - killed_at
        finally:
            remote.close()
    assert (result.outcome, result.layer, result.reason) == (Outcome.ERROR, None, Reason.VANTAGE_UNREACHABLE)
    assert "the gateway to vantage lan died midway" in result.message
    assert waited < 30  # at once: long before the check's own 60 s timeout
    assert not pid_alive(pid)
