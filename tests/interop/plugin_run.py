"""Run the plugin as a user does (``python -m pytest --autoglm-target X.yaml``) and read its JSON report.

Also the case table format shared by the interop test modules: each row names a
target of the inventory (and which of its items), and the verdict expected in
the JSON report (outcome, layer, reason).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

RUN_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Case:
    """One expected verdict: the item ``check`` of ``target`` (with ``subject`` when the target has several)."""

    id: str
    target: str
    check: str
    outcome: str
    layer: str | None = None
    reason: str | None = None
    subject: str | None = None  # e.g. the origin of a cors item, "misconfig/null_origin"
    note: str = ""
    says: str = ""  # the message must contain this (case-insensitive)
    attempts: int | None = None  # how many attempts the result must record
    xfail: str = ""  # a known disagreement with the real tools: why the verdict is wrong today

    def expected(self) -> tuple[str, str | None, str | None]:
        return (self.outcome, self.layer, self.reason)


def passed(id: str, check: str, *, target: str | None = None, subject: str | None = None, **kw: Any) -> Case:
    return Case(id, target or id, check, "passed", None, None, subject, **kw)


def failed(
    id: str,
    check: str,
    layer: str,
    reason: str,
    *,
    target: str | None = None,
    subject: str | None = None,
    **kw: Any,
) -> Case:
    return Case(id, target or id, check, "failed", layer, reason, subject, **kw)


@dataclass
class PluginRun:
    """What one plugin run left: exit code, its output, and the JSON report."""

    env: str
    returncode: int
    output: str
    report: dict[str, Any]
    workdir: Path

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.report.get("results", []))

    def find(self, case: Case) -> dict[str, Any]:
        """The one result ``case`` is about; fails with what there is when not exactly one."""
        hits = [
            r
            for r in self.results
            if r["target"] == case.target
            and r["check"] == case.check
            and (case.subject is None or r["subject"] == case.subject)
        ]
        if len(hits) != 1:
            have = sorted(
                f"{r['check']}:{r['target']}:{r['subject']}" for r in self.results if r["target"] == case.target
            )
            raise AssertionError(
                f"{len(hits)} results for {case.check} of target {case.target!r} subject {case.subject!r}; "
                f"the target has {have}\n--- plugin output (tail) ---\n{self.output[-3000:]}"
            )
        return hits[0]

    def describe(self, result: Mapping[str, Any]) -> str:
        return (
            f"{result['id']}: outcome={result['outcome']} layer={result['layer']} reason={result['reason']}"
            f" attempts={result.get('attempts')}\n"
            f"message: {result['message']}\ndetails: {json.dumps(result.get('details'), default=str)[:1500]}"
        )


def inventory_yaml(env: str, defaults: Mapping[str, Any], targets: Sequence[Mapping[str, Any]]) -> str:
    doc = {"version": 1, "environment": env, "defaults": dict(defaults), "targets": [dict(t) for t in targets]}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=200)


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment without pytest's and xdist's variables (the child is its own session)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("SSL_CERT_FILE", None)
    env.pop("SSL_CERT_DIR", None)
    env.update(extra or {})
    return env


def start_plugin(
    workdir: Path,
    env_name: str,
    inventory: str,
    *,
    extra_env: Mapping[str, str] | None = None,
    args: Iterable[str] = (),
) -> subprocess.Popen[bytes]:
    """Write ``<env>.yaml`` into ``workdir`` and start the plugin on it (use :func:`finish_plugin`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # An ini file of its own makes workdir the rootdir: the child never picks up the project's
    # pytest configuration (testpaths!) even when the temporary folder lies inside the repository.
    (workdir / "pytest.ini").write_text("[pytest]\n")
    (workdir / f"{env_name}.yaml").write_text(inventory)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--autoglm-target",
        f"{env_name}.yaml",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
        *args,
    ]
    log = open(workdir / "pytest-output.txt", "wb")  # noqa: SIM115 - closed by finish_plugin
    proc = subprocess.Popen(
        argv, cwd=workdir, env=_clean_env(extra_env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    proc._interop_log = log  # type: ignore[attr-defined]
    return proc


def finish_plugin(proc: subprocess.Popen[bytes], workdir: Path, env_name: str) -> PluginRun:
    """Wait (bounded) for a run started by :func:`start_plugin`; read its report."""
    try:
        proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()  # our own child, by its Popen handle
        proc.wait(timeout=10)
        raise AssertionError(f"the plugin run for {env_name} took more than {RUN_TIMEOUT_S}s") from None
    finally:
        proc._interop_log.close()  # type: ignore[attr-defined]
    output = (workdir / "pytest-output.txt").read_text(errors="replace")
    report_path = workdir / "reports" / f"{env_name}.json"
    if not report_path.exists():
        raise AssertionError(f"no report {report_path} (exit {proc.returncode}):\n{output[-4000:]}")
    return PluginRun(env_name, proc.returncode, output, json.loads(report_path.read_text()), workdir)


def run_plugin(
    workdir: Path, env_name: str, inventory: str, *, extra_env: Mapping[str, str] | None = None
) -> PluginRun:
    return finish_plugin(start_plugin(workdir, env_name, inventory, extra_env=extra_env), workdir, env_name)


def check_case(run: PluginRun, case: Case) -> None:
    """The assertion every case test makes: the JSON verdict is the expected (outcome, layer, reason)."""
    result = run.find(case)
    got = (result["outcome"], result["layer"], result["reason"])
    assert got == case.expected(), f"expected {case.expected()}, got {got}\n{run.describe(result)}"
    if case.attempts is not None:
        assert result["attempts"] == case.attempts, f"expected {case.attempts} attempts\n{run.describe(result)}"
    if case.says:
        assert case.says.lower() in result["message"].lower(), (
            f"no {case.says!r} in the message\n{run.describe(result)}"
        )


def agree(run: PluginRun, case: Case) -> None:
    """:func:`check_case` for a tool cross-check: a known disagreement (``case.xfail``) is an xfail."""
    try:
        check_case(run, case)
    except AssertionError as exc:
        if not case.xfail:
            raise
        pytest.xfail(f"{case.xfail}\n{exc}")


def params(cases: Iterable[Case]) -> list[Any]:
    """``pytest.param`` per case, id = case id; a case with ``xfail`` is a known (non-strict) failure."""
    return [
        pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=False)] if c.xfail else [])
        for c in cases
    ]


def uncovered(run: PluginRun, cases: Iterable[Case]) -> list[str]:
    """Result ids of the run that no case is about (every item of an interop inventory must be judged)."""
    covered: set[str] = set()
    for case in cases:
        try:
            covered.add(run.find(case)["id"])
        except AssertionError:
            pass
    return sorted(r["id"] for r in run.results if r["id"] not in covered)


def tool(argv: Sequence[str], *, timeout: float = 15.0, stdin: bytes = b"") -> tuple[int, str]:
    """Run a real client tool (openssl, dig, curl) bounded in time: (exit code, stdout+stderr)."""
    try:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(argv)} did not finish within {timeout}s") from exc
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")
