"""Real vantages for issue 17: network namespaces reached through execnet gateways.

A vantage namespace is a :class:`~tests.fakes.netns.NetnsLab`: a veth pair to the root namespace
(host side ``198.18.x.1``, namespace side ``198.18.x.2``), lo up, no default route, its own nft
table (ports it drops or resets *on its own input*, loopback included) and, if asked, listeners
on 0.0.0.0 inside it. Its gateway spec runs this test interpreter inside it::

    popen//python=ip netns exec NAME /path/to/venv/bin/python

From there a service of the host bound to 127.0.0.1 is refused and one bound to 0.0.0.0 answers
(at ``lab.host_address``), which is the loopback-bind mistake issue 17 is about.

Also here, the other kinds of vantage the tests need: a Python without the plugin (a bare
``python -m venv --without-pip``), one that imports *another version* of it (a directory with a
``pytest_autoglm/__init__.py`` put first on its path), and a gateway whose process writes its PID
to a file, so that a test can kill it midway. And :func:`at_vantage`, which turns planned checks
into the checks of one vantage until the inventory's ``vantages:`` (another part of issue 17) does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from pytest_autoglm.inventory.plan import Check
from tests.fakes.netns import NetnsLab, NetnsUnavailable, netns_prerequisites

__all__ = [
    "RUN_CONFTEST",
    "at_vantage",
    "bare_python",
    "bench",
    "kill",
    "netns_spec",
    "other_version_spec",
    "pid_alive",
    "pid_spec",
    "pids",
    "vantage_namespace",
]


#: The conftest of a pytest run with vantages: the vantages and each one's host come from vantages.json beside
#: it (``specs``, ``hosts``; ``kill_after`` and ``pidfile``: kill the gateway once that item has its result).
RUN_CONFTEST = """
import dataclasses, json, os, signal
from pathlib import Path

from pytest_autoglm.plugin.state import get_state

SETUP = json.loads(Path(__file__).with_name("vantages.json").read_text())


def _at(check, vantage, host):
    def vid(check_id):
        return f"{check_id[:-1]}@{vantage}]"

    return dataclasses.replace(
        check, id=vid(check.id), vantage=vantage, depends_on=tuple(map(vid, check.depends_on)), host=host
    )


def pytest_configure(config):
    state = get_state(config)
    if state is None:
        return
    state.vantage_specs.update(SETUP["specs"])
    for slot in state.slots:
        slot.checks = [_at(c, v, host) for v, host in SETUP["hosts"].items() for c in slot.checks]


def pytest_runtest_logreport(report):
    # A gateway killed midway: once the item named in "kill_after" has its result, kill the gateway's process.
    kill_after = SETUP.get("kill_after")
    if kill_after and report.nodeid.endswith(kill_after) and report.when == "call":
        for line in Path(SETUP["pidfile"]).read_text().split():
            os.kill(int(line), signal.SIGKILL)
"""


def _with_vantage(check_id: str, vantage: str) -> str:
    """``tcp[prod:api:8080/open]`` -> ``tcp[prod:api:8080/open@lan]`` (the id form of issue 17)."""
    return f"{check_id[:-1]}@{vantage}]"


def at_vantage(checks: Iterable[Check], vantage: str, *, host: str | None = None) -> list[Check]:
    """The checks as run from ``vantage`` (ids, dependencies and ``vantage`` set; ``host`` replaced if given)."""
    out = []
    for check in checks:
        changes: dict[str, object] = {
            "id": _with_vantage(check.id, vantage),
            "vantage": vantage,
            "depends_on": tuple(_with_vantage(d, vantage) for d in check.depends_on),
        }
        if host is not None:
            changes["host"] = host
        out.append(dataclasses.replace(check, **changes))  # type: ignore[arg-type]
    return out


@contextlib.contextmanager
def vantage_namespace(**ports: Iterable[int]) -> Iterator[NetnsLab]:
    """A namespace to probe from (skips the test where namespaces cannot be built); ``ports`` as NetnsLab's."""
    problem = netns_prerequisites()
    if problem:
        pytest.skip(problem)
    try:
        lab = NetnsLab(**ports)  # type: ignore[arg-type]
        lab.__enter__()
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces not permitted here: {exc}")
    try:
        yield lab
    finally:
        lab.close()


def netns_spec(lab: NetnsLab, python: str = sys.executable) -> str:
    """The execnet spec of a gateway running ``python`` inside the lab's namespace."""
    return f"popen//python=ip netns exec {lab.name} {python}"


def pid_spec(directory: Path, pidfile: Path, *, lab: NetnsLab | None = None, python: str = sys.executable) -> str:
    """A spec whose interpreter first adds its PID to ``pidfile``, one a line (``exec`` keeps the PID: the gateway's)."""
    script = directory / "vantage-python.sh"
    inner = [*(["ip", "netns", "exec", lab.name] if lab is not None else []), python]
    script.write_text(f'#!/bin/sh\necho $$ >> {shlex.quote(str(pidfile))}\nexec {shlex.join(inner)} "$@"\n')
    script.chmod(0o755)
    return f"popen//python={script}"


def bare_python(directory: Path) -> str:
    """A Python without pytest-autoglm: ``python -m venv --without-pip`` (the system's own Python)."""
    venv = directory / "bare-venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60, capture_output=True)
    return str(venv / "bin" / "python")


def other_version_spec(directory: Path, version: str = "0.0.1", *, python: str = sys.executable) -> str:
    """A spec whose interpreter imports a ``pytest_autoglm`` of ``version`` first (a real other package).

    On the interpreter's path *before it starts*: execnet's ``//env:PYTHONPATH=`` is applied after the
    interpreter runs, too late for ``sys.path``.
    """
    package = directory / "other" / "pytest_autoglm"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f'__version__ = "{version}"\n')
    return f"popen//python=env PYTHONPATH={package.parent} {python}"


def pids(pidfile: Path) -> list[int]:
    """The PIDs a :func:`pid_spec` interpreter wrote, in order."""
    return [int(line) for line in pidfile.read_text().split()] if pidfile.exists() else []


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill(pid: int) -> None:
    """Kill one process we started (by its PID), as a gateway that dies midway."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _bench_run(directory: Path, setup: dict[str, object], inventory: str) -> float:
    """Wall seconds of one pytest run (a fresh interpreter) of ``inventory`` with the given vantages."""
    import json
    import tempfile
    import time

    with tempfile.TemporaryDirectory(dir=directory) as where:
        run_dir = Path(where)
        (run_dir / "conftest.py").write_text(RUN_CONFTEST)
        (run_dir / "vantages.json").write_text(json.dumps(setup))
        (run_dir / "inv.yaml").write_text(inventory)
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--autoglm-target", "inv.yaml"]
        began = time.monotonic()
        done = subprocess.run(argv, cwd=run_dir, capture_output=True, text=True, timeout=600, check=False)
        elapsed = time.monotonic() - began
        if done.returncode != 0:
            raise RuntimeError(f"benchmark run failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
        return elapsed


def bench(*, checks: int = 300, dropped: int = 30, vantages: int = 2, runs: int = 3) -> dict[str, list[float]]:
    """The same ``checks`` tcp checks from ``local`` only, and from ``local`` plus ``vantages`` namespaces.

    Each vantage probes a namespace with the same ports: ``checks - dropped`` open (listeners) and
    ``dropped`` filtered (nft drops them, 2 s timeout), so every vantage has the same work. ``local``
    reaches its lab over the veth pair; a namespace vantage probes its own namespace (127.0.0.1).
    """
    import tempfile

    open_ports = range(21000, 21000 + checks - dropped)
    dropped_ports = range(20000, 20000 + dropped)
    labs = [NetnsLab(open_ports=open_ports, dropped=dropped_ports) for _ in range(vantages + 1)]
    inventory = (
        "version: 1\nenvironment: bench\ndefaults: {timeout: 2s, retries: 0}\ntargets:\n"
        f"  - name: lab\n    host: 127.0.0.1\n    tcp:\n      open: {list(open_ports)}\n"
        f"      filtered: {list(dropped_ports)}\n"
    )
    out: dict[str, list[float]] = {"local": [], f"local+{vantages}": []}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as directory:
        for lab in labs:
            stack.enter_context(lab)
        local_only = {"specs": {}, "hosts": {"local": labs[0].address}}
        spread = {
            "specs": {f"ns{i}": netns_spec(lab) for i, lab in enumerate(labs[1:], 1)},
            "hosts": {"local": labs[0].address, **{f"ns{i}": "127.0.0.1" for i in range(1, vantages + 1)}},
        }
        for _ in range(runs):
            out["local"].append(round(_bench_run(Path(directory), local_only, inventory), 2))
            out[f"local+{vantages}"].append(round(_bench_run(Path(directory), spread, inventory), 2))
    return out


if __name__ == "__main__":
    # python -m tests.fakes.vantage_lab [checks] [runs]: the multi-vantage wall-time figure (root, namespaces).
    import json

    print(
        json.dumps(
            bench(
                checks=int(sys.argv[1]) if len(sys.argv) > 1 else 300, runs=int(sys.argv[2]) if len(sys.argv) > 2 else 3
            )
        )
    )
