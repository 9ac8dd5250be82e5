"""Run pytest-autoglm against the bundled demo environment: real local services, no internet.

Starts the demo's DNS server, model API and TLS front on loopback (demo/services.py), runs
``pytest --autoglm-target example_suites/demo.yaml`` and stops everything. Reports land in
``reports/demo.html`` and ``reports/demo.json``. Six checks fail on purpose (five root causes, one blocked).

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

INVENTORY = "example_suites/demo.yaml"
CERTS = ROOT / "example_suites" / ".demo"


def main(argv: list[str]) -> int:
    cwd, inventory, certs = ROOT, INVENTORY, CERTS
    if argv[:1] == ["--workdir"] and len(argv) > 1:
        cwd = Path(argv[1]).resolve()
        cwd.mkdir(parents=True, exist_ok=True)
        inventory, certs = "demo.yaml", cwd / ".demo"
        shutil.copyfile(ROOT / INVENTORY, cwd / inventory)  # its ca_bundle (.demo/ca.pem) is relative to it
        argv = argv[2:]
    api_key = secrets.token_urlsafe(24)
    with DemoEnvironment(certs, api_key):
        env = {**os.environ, API_KEY_ENV: api_key}
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--autoglm-target", inventory, *argv]
        print("demo services up: DNS 127.0.0.1:25353, API 127.0.0.1:28000, TLS 127.0.0.1:28443", flush=True)
        print("running: pytest " + " ".join(command[3:]), flush=True)
        status = subprocess.call(command, cwd=cwd, env=env)
    print()
    if status in (0, 1):
        reports = "reports" if cwd == ROOT else str(cwd / "reports")
        print(
            f"Demo done: open {reports}/demo.html (six checks fail on purpose: five root causes, one blocked; see example_suites/demo.yaml)."
        )
        return 0
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
