"""Issue 17 end to end: one inventory, checked from this process and from a Python inside the server's
own network namespace, with YAML ``vantages:`` and ``from:``, through a real execnet gateway.

The lab is the model server's host as a namespace (a :class:`~tests.fakes.netns.NetnsLab`): inside it,
one service bound to 127.0.0.1 (the guide's most common mistake), one bound to 0.0.0.0, and one
bound to 0.0.0.0 behind an nft rule that drops it on the veth only (a firewall between). The
``server`` vantage connects to 127.0.0.1 (``from: {server: {host: 127.0.0.1}}``); ``local``, this
process, to the namespace's address. What this checks is what the issue says it will be checked by:
the verdicts, the ``@vantage`` ids, the ``vantage`` field and the bind-address diagnosis.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.netns import NetnsLab, NetnsUnavailable, netns_prerequisites

RUN_TIMEOUT_S = 120.0
LOOPBACK_PORT, ALL_PORT, FIREWALLED_PORT = 28210, 28211, 28212

#: A listener bound to 127.0.0.1 inside the namespace: the service that works "on the server" only.
_LOOPBACK_LISTENER = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
s.settimeout(0.5)
while time.monotonic() < deadline:
    try:
        conn, _ = s.accept()
        conn.close()
    except OSError:
        pass
"""


@dataclass
class ServerHost:
    lab: NetnsLab
    spec: str


@pytest.fixture(scope="module")
def server_host() -> Iterator[ServerHost]:
    problem = netns_prerequisites()
    if problem:
        pytest.skip(problem)
    try:
        lab = NetnsLab(open_ports=[ALL_PORT, FIREWALLED_PORT])
        lab.__enter__()
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces not permitted here: {exc}")
    listener: subprocess.Popen[str] | None = None
    try:
        ruleset = (
            "table inet vantage_e2e {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
            f'  iifname != "lo" tcp dport {FIREWALLED_PORT} drop\n }}\n}}\n'
        )
        subprocess.run(
            ["ip", "netns", "exec", lab.name, "nft", "-f", "-"], input=ruleset, text=True, check=True, timeout=10
        )
        listener = subprocess.Popen(
            ["ip", "netns", "exec", lab.name, sys.executable, "-c", _LOOPBACK_LISTENER, str(LOOPBACK_PORT), "600"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        yield ServerHost(lab, f"popen//python=ip netns exec {lab.name} {sys.executable}")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)
            if listener.stdout is not None:
                listener.stdout.close()
        lab.__exit__(None, None, None)


def _inventory(lab: NetnsLab, spec: str) -> str:
    return f"""\
version: 1
environment: e2e
vantages:
  server: "{spec}"
defaults:
  timeout: 1s
  retries: 0
targets:
  - name: api
    host: {lab.address}
    tcp:
      open: [{LOOPBACK_PORT}, {ALL_PORT}, {FIREWALLED_PORT}]
    from:
      server:
        host: 127.0.0.1
"""


@dataclass
class Run:
    returncode: int
    output: str
    report: dict[str, Any]

    def result(self, result_id: str) -> dict[str, Any]:
        hits = [r for r in self.report["results"] if r["id"] == result_id]
        assert len(hits) == 1, f"{result_id} not in {[r['id'] for r in self.report['results']]}\n{self.output[-3000:]}"
        return hits[0]


def _run(workdir: Path, inventory: str, *args: str) -> Run:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "pytest.ini").write_text("[pytest]\n")
    (workdir / "e2e.yaml").write_text(inventory)
    argv = [sys.executable, "-m", "pytest", "--autoglm-target", "e2e.yaml", "-p", "no:cacheprovider", "-rfE", *args]
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    report_path = workdir / "reports" / "e2e.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Run(proc.returncode, proc.stdout + proc.stderr, report)


def test_loopback_bind_seen_from_two_vantages(server_host: ServerHost, tmp_path: Path) -> None:
    lab = server_host.lab
    # the lab itself, checked without the plugin: what each place sees
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((lab.address, LOOPBACK_PORT), timeout=2).close()
    socket.create_connection((lab.address, ALL_PORT), timeout=2).close()

    run = _run(tmp_path, _inventory(lab, server_host.spec))
    assert run.returncode == 1, run.output[-3000:]
    tcp = "tcp[e2e:api:{port}/open@{vantage}]"

    # the verdicts, the @vantage ids and the vantage field
    expected = {
        (LOOPBACK_PORT, "local"): ("failed", "refused"),
        (LOOPBACK_PORT, "server"): ("passed", None),
        (ALL_PORT, "local"): ("passed", None),
        (ALL_PORT, "server"): ("passed", None),
        (FIREWALLED_PORT, "local"): ("failed", "filtered"),
        (FIREWALLED_PORT, "server"): ("passed", None),
    }
    for (port, vantage), (outcome, reason) in expected.items():
        result = run.result(tcp.format(port=port, vantage=vantage))
        assert (result["outcome"], result["reason"], result["vantage"]) == (outcome, reason, vantage), result
    assert len(run.report["results"]) == len(expected)
    assert run.result(tcp.format(port=ALL_PORT, vantage="server"))["address"] == "127.0.0.1"

    # the cross-vantage diagnosis: the bind address, and the firewall between
    diagnoses = {(d["subject"], d["pattern"]): d for d in run.report["vantages"]["diagnoses"]}
    loopback = next(d for (subject, pattern), d in diagnoses.items() if pattern == "loopback_bind")
    assert str(LOOPBACK_PORT) in loopback["subject"]
    assert "127.0.0.1" in loopback["message"] and "0.0.0.0" in loopback["message"]
    assert loopback["by_vantage"]["server"]["outcome"] == "passed"
    assert loopback["by_vantage"]["local"]["reason"] == "refused"
    assert any(pattern == "firewall_drop" and str(FIREWALLED_PORT) in s for s, pattern in diagnoses)
    assert not any(str(ALL_PORT) in subject for subject, _ in diagnoses)  # the same from everywhere: nothing to say
    assert sorted(run.report["vantages"]["names"]) == ["local", "server"]

    # the terminal says it too, and the ids pytest prints carry the vantage
    assert "loopback only" in run.output
    assert f"{LOOPBACK_PORT}/open@local" in run.output

    # and the HTML report has the target x vantage matrix
    html = (tmp_path / "reports" / "e2e.html").read_text()
    assert "server" in html and "loopback only" in html


def test_a_marker_per_vantage_selects(server_host: ServerHost, tmp_path: Path) -> None:
    run = _run(tmp_path, _inventory(server_host.lab, server_host.spec), "-m", "vantage_server")
    assert run.returncode == 0, run.output[-3000:]
    assert {r["vantage"] for r in run.report["results"]} == {"server"}
    assert len(run.report["results"]) == 3


def _namespace_pids(lab: NetnsLab) -> set[str]:
    out = subprocess.run(["ip", "netns", "pids", lab.name], capture_output=True, text=True, check=False, timeout=10)
    return set(out.stdout.split())


def test_no_gateway_process_outlives_the_session(server_host: ServerHost, tmp_path: Path) -> None:
    """Every gateway is closed at session end: the namespace holds the lab's own processes only."""
    before = _namespace_pids(server_host.lab)
    run = _run(tmp_path, _inventory(server_host.lab, server_host.spec))
    assert run.returncode == 1, run.output[-3000:]
    assert _namespace_pids(server_host.lab) == before
