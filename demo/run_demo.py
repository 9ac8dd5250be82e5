"""Run pytest-autoglm against the bundled demo environment: real local services, no internet.

Starts the demo's DNS server, model API and TLS front on loopback (demo/services.py), runs
``pytest --autoglm-target example_suites/demo.yaml`` and stops everything. Reports land in
``reports/demo.html`` and ``reports/demo.json``. Six checks fail on purpose (five root causes, one blocked).

Then, as root on Linux, its second part (issue 17): the model server inside a network namespace
(demo/vantage_lab.py), checked from the server itself and from here with
``example_suites/demo-vantages.yaml``; the API bound to 127.0.0.1 is refused from here and the
report (``reports/demo-vantages.html``) names the bind address. Elsewhere it says why it skipped that.

``--workdir DIR`` (first argument) runs from DIR instead: the inventory is copied there and the
reports land in ``DIR/reports``. scripts/check-package.sh uses it so that pytest, started outside
the source tree, can only import the installed wheel. Other arguments go to pytest.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import API_KEY_ENV, DemoEnvironment  # noqa: E402
from vantage_lab import LabUnavailable, ServerNamespace, prerequisites  # noqa: E402

INVENTORY = "example_suites/demo.yaml"
VANTAGE_INVENTORY = "example_suites/demo-vantages.yaml"
CERTS = ROOT / "example_suites" / ".demo"


def main(argv: list[str]) -> int:
    cwd, inventory, certs = ROOT, INVENTORY, CERTS
    if argv[:1] == ["--workdir"] and len(argv) > 1:
        cwd = Path(argv[1]).resolve()
        cwd.mkdir(parents=True, exist_ok=True)
        inventory, certs = "demo.yaml", cwd / ".demo"
        shutil.copyfile(ROOT / INVENTORY, cwd / inventory)  # its ca_bundle (.demo/ca.pem) is relative to it
        shutil.copyfile(ROOT / VANTAGE_INVENTORY, cwd / "demo-vantages.yaml")
        argv = argv[2:]
    api_key = secrets.token_urlsafe(24)
    with DemoEnvironment(certs, api_key):
        env = {**os.environ, API_KEY_ENV: api_key}
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--autoglm-target", inventory, *argv]
        print("demo services up: DNS 127.0.0.1:25353, API 127.0.0.1:28000, TLS 127.0.0.1:28443", flush=True)
        print("running: pytest " + " ".join(command[3:]), flush=True)
        status = subprocess.call(command, cwd=cwd, env=env)
    print()
    if status not in (0, 1):
        return status
    reports = "reports" if cwd == ROOT else str(cwd / "reports")
    print(
        f"Demo done: open {reports}/demo.html (six checks fail on purpose: five root causes, one blocked; see example_suites/demo.yaml)."
    )
    vantage_status = second_vantage(cwd, reports, argv)
    return 0 if vantage_status in (0, 1) else vantage_status


def second_vantage(cwd: Path, reports: str, argv: list[str]) -> int:
    """The demo's second part: the loopback-bind mistake seen from the server and from here (issue 17)."""
    print()
    inventory = VANTAGE_INVENTORY if cwd == ROOT else "demo-vantages.yaml"
    why_not = prerequisites()
    if why_not is not None:
        print(f"Demo, second vantage: skipped: {why_not}.")
        return 0
    try:
        with ServerNamespace() as lab:
            vantage = f"server={lab.vantage_spec(sys.executable)}"
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--autoglm-target", inventory]
            command += ["--autoglm-vantage", vantage, *argv]
            print("demo server namespace up: the API on 127.0.0.1:28100 (the mistake) and 0.0.0.0:28101", flush=True)
            print("running: pytest " + " ".join(command[3:]), flush=True)
            status = subprocess.call(command, cwd=cwd)
    except LabUnavailable as exc:
        print(f"Demo, second vantage: skipped: the network namespace could not be built: {exc}")
        return 0
    if status in (0, 1):
        print()
        print(
            f"Demo, second vantage done: open {reports}/demo-vantages.html: port 28100 answers on the server "
            "and is refused from here, because the API listens on 127.0.0.1 only."
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
