"""Verdicts under an oversubscribed machine (issue 15): no false alarm from a busy checker.

    python benchmarks/stress.py [--targets 300] [--timeout 0.5] [--cpu-hogs 8] [--quota 50]
                                [--no-interop] [--json FILE]

Not a timed test: it prints what a CI gate cares about on a loaded runner. Needs root (the
benchmark lab's dropped ports live in a network namespace; the CPU quota is a cgroup).

1. Builds the benchmark lab (``benchmarks/lab.py``: open, refused, dropped and HTTPS targets) and an
   inventory with a short timeout (default 500 ms, retries 1) in which every tcp item expects
   ``open``, so each target has one known right answer.
2. Starts ``stress-ng --cpu N`` (Debian package stress-ng; default 8 hogs on a 2-core machine) and
   puts the plugin's pytest run into a CPU quota (default 50% of one CPU: a cgroup v2 ``cpu.max``
   or v1 ``cpu.cfs_quota_us`` made here and removed afterwards; ``systemd-run --scope -p
   CPUQuota=`` needs systemd as init, which containers often lack).
3. Compares every result with the right answer: a **wrong verdict** is a result that blames the
   target for something it did not do (an open port reported ``filtered``, an HTTPS server
   ``timeout``); ``error``/``overloaded`` is not wrong (the checker said it could not judge), and
   is counted apart. Must be 0.
4. With the interop cases (default): runs ``tests/interop/test_interop_nginx.py`` (a real nginx
   with broken and healthy sites, timeouts of 500 ms) under the same load and quota, and counts its
   failed tests (each asserts one verdict).

Prints wrong verdicts, overloaded items, spoiled attempts (the JSON summary's ``spoiled_attempts``)
and wall times. Every process started here (stress-ng, pytest, the lab's) is stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench import PYTEST_FLAGS, _env, write_inventory  # noqa: E402 (after the path entry)
from lab import Lab, build_lab  # noqa: E402

#: The right answer per target kind for a tcp item that expects ``open`` (check:reason, or check:passed).
RIGHT_TCP = {"open": "tcp:passed", "web": "tcp:passed", "refused": "tcp:refused", "dropped": "tcp:filtered"}


# --------------------------------------------------------------------------- load


@contextlib.contextmanager
def cpu_hogs(count: int) -> Iterator[str]:
    """``stress-ng --cpu count`` for as long as the block runs (stopped by its PID)."""
    exe = shutil.which("stress-ng")
    if exe is None or count <= 0:
        yield "no CPU hogs" + (" (stress-ng is not installed: apt-get install stress-ng)" if exe is None else "")
        return
    proc = subprocess.Popen(
        [exe, "--cpu", str(count), "--timeout", "3600s", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(1.0)  # let the hogs spin up
    try:
        yield f"stress-ng --cpu {count} (pid {proc.pid})"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: stress-ng and its workers only
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class CpuQuota:
    """A cgroup limiting the processes put into it to ``percent`` of one CPU (v2, else v1)."""

    def __init__(self, percent: int) -> None:
        self.percent = percent
        self.path: Path | None = None
        self.procs_file = ""
        self.note = "no CPU quota"

    def __enter__(self) -> CpuQuota:  # noqa: PYI034 (a plain class)
        if self.percent <= 0:
            return self
        period = 100_000
        quota = period * self.percent // 100
        name = f"autoglm-stress-{os.getpid()}"
        v2 = Path("/sys/fs/cgroup")
        v1 = Path("/sys/fs/cgroup/cpu")
        try:
            if (v2 / "cgroup.controllers").exists():
                path = v2 / name
                path.mkdir()
                (path / "cpu.max").write_text(f"{quota} {period}\n")
                self.procs_file = "cgroup.procs"
            elif (v1 / "cpu.cfs_quota_us").exists():
                path = v1 / name
                path.mkdir()
                (path / "cpu.cfs_period_us").write_text(f"{period}\n")
                (path / "cpu.cfs_quota_us").write_text(f"{quota}\n")
                self.procs_file = "cgroup.procs"
            else:
                self.note = "no CPU quota: no cgroup cpu controller here"
                return self
        except OSError as exc:
            self.note = f"no CPU quota: {exc}"
            return self
        self.path = path
        self.note = f"CPU quota {self.percent}% of one CPU (cgroup {path})"
        return self

    def enter_child(self) -> None:
        """``preexec_fn``: the child moves itself into the cgroup before it runs anything."""
        if self.path is not None:
            (self.path / self.procs_file).write_text(f"{os.getpid()}\n")

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # empty once our children have exited


# --------------------------------------------------------------------------- runs


def run_pytest(argv: list[str], quota: CpuQuota, cwd: Path, limit_s: float) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=quota.enter_child,  # noqa: PLW1509 (one write of our own pid; no threads yet)
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f"\n(stress.py: killed after {limit_s:.0f}s)"
    return proc.returncode, out, time.monotonic() - started


def judge(lab: Lab, report: dict[str, Any]) -> dict[str, Any]:
    """Wrong verdicts (the target blamed for what it did not do), overloaded items and spoiled attempts."""
    kinds = {t.name: t.kind for t in lab.targets}
    wrong: list[str] = []
    overloaded = 0
    seen: Counter[str] = Counter()
    for r in report["results"]:
        kind = kinds[r["target"]]
        got = f"{r['check']}:passed" if r["outcome"] == "passed" else f"{r['check']}:{r['reason']}"
        seen[got] += 1
        if r["reason"] == "overloaded":
            overloaded += 1
            continue
        right = RIGHT_TCP[kind] if r["check"] == "tcp" else f"{r['check']}:passed"
        if got != right:
            wrong.append(f"{r['id']}: {got} (right: {right}): {r['message']}")
    return {
        "results": len(report["results"]),
        "wrong": wrong,
        "overloaded": overloaded,
        "spoiled_attempts": report["summary"].get("spoiled_attempts", 0),
        "verdicts": dict(seen),
    }


def interop_failures(output: str) -> tuple[int, int]:
    """(failed, passed) from pytest's last line."""
    failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", output.splitlines()[-1] if output else ""))
    passed = sum(int(n) for n in re.findall(r"(\d+) passed", output.splitlines()[-1] if output else ""))
    return failed, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=0.5, help="per attempt, seconds (issue 15: 0.25-0.5)")
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--cpu-hogs", type=int, default=8)
    parser.add_argument("--quota", type=int, default=50, help="percent of one CPU for the pytest run (0: none)")
    parser.add_argument("--per-host", type=int, default=None, help="--autoglm-per-host-concurrency (default: 4)")
    parser.add_argument("--no-interop", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("stress.py needs root (network namespace for dropped ports, cgroup for the quota)")
        return 2

    work = Path(tempfile.mkdtemp(prefix="autoglm-stress-"))
    out: dict[str, Any] = {"targets": args.targets, "timeout_s": args.timeout, "retries": args.retries}
    lab = build_lab(
        args.targets,
        dropped=0.1,
        refused=0.1,
        web_share=0.05,
        dns_kind="fast",
        workdir=work,
        max_seconds=args.max_seconds * 3,
    )
    try:
        inventory = work / "stress.yaml"
        checks = write_inventory(inventory, lab, timeout=args.timeout, retries=args.retries)
        with cpu_hogs(args.cpu_hogs) as hogs, CpuQuota(args.quota) as quota:
            out["load"] = [hogs, quota.note, f"load average {os.getloadavg()[0]:.1f} at the start"]
            print("load:", "; ".join(out["load"]))
            argv = [
                sys.executable,
                "-m",
                "pytest",
                "--autoglm-target",
                str(inventory),
                "--autoglm-report-dir",
                str(work / "reports"),
                *PYTEST_FLAGS,
                *([f"--autoglm-per-host-concurrency={args.per_host}"] if args.per_host else []),
            ]
            code, text, wall = run_pytest(argv, quota, work, args.max_seconds)
            report_path = work / "reports" / "bench.json"
            if not report_path.exists():
                print(text[-3000:])
                print("no JSON report: the run did not finish")
                return 1
            report = json.loads(report_path.read_text())
            lab_run = judge(lab, report)
            slowest = sorted(report["results"], key=lambda r: -r["duration_ms"])[:5]
            lab_run["slowest"] = [f"{r['id']} {r['duration_ms']:.0f}ms x{r['attempts']}" for r in slowest]
            lab_run["pytest_tail"] = text.strip().splitlines()[-1:]
            lab_run.update(checks=checks, wall_s=round(wall, 2), exit=code)
            out["lab"] = lab_run
            if not args.no_interop:
                argv = [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    "tests/interop/test_interop_nginx.py",
                ]
                code, text, wall = run_pytest(argv, quota, ROOT, args.max_seconds)
                failed, passed = interop_failures(text)
                fails = [line for line in text.splitlines() if line.startswith(("FAILED", "ERROR"))]
                out["interop"] = {"failed": failed, "passed": passed, "wall_s": round(wall, 2), "failures": fails}
    finally:
        lab.close()
        shutil.rmtree(work, ignore_errors=True)

    lab_run = out["lab"]
    print(
        f"lab: {lab_run['checks']} checks, timeout {args.timeout:g}s, retries {args.retries}: "
        f"wrong verdicts {len(lab_run['wrong'])}, overloaded {lab_run['overloaded']}, "
        f"spoiled attempts {lab_run['spoiled_attempts']}, wall {lab_run['wall_s']}s"
    )
    for line in lab_run["wrong"][:20]:
        print("  WRONG", line)
    print("  verdicts:", lab_run["verdicts"])
    print("  slowest:", "; ".join(lab_run["slowest"]), "|", *lab_run["pytest_tail"])
    if "interop" in out:
        inter = out["interop"]
        print(f"interop (nginx): {inter['failed']} failed, {inter['passed']} passed, wall {inter['wall_s']}s")
        for line in inter["failures"][:20]:
            print("  ", line)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    wrong_total = len(lab_run["wrong"]) + out.get("interop", {}).get("failed", 0)
    print(f"WRONG VERDICTS: {wrong_total} (must be 0)")
    return 1 if wrong_total else 0


if __name__ == "__main__":
    raise SystemExit(main())
