"""Run pytest-autoglm against the bundled demo environment: real local services, no internet.

Starts a DNS server for the demo zone and the demo service on loopback ports,
runs ``pytest --autoglm-target example_suites/demo.yaml`` and stops everything.
Reports land in ``reports/demo.json``. Some checks fail on purpose.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.dns_server import FakeDnsServer  # noqa: E402  (a real DNS responder built on dnspython)
from tests.fakes.tcp_servers import free_port, tcp_listener  # noqa: E402

ZONE = {
    "api.autoglm.demo.": {"A": ["127.0.0.1"], "TXT": ["service=open-autoglm"]},
    "admin.autoglm.demo.": {"A": ["127.0.0.1"]},
}


def main(argv: list[str]) -> int:
    with FakeDnsServer(ZONE) as dns_server, tcp_listener() as api:
        env = dict(os.environ)
        env.update(DEMO_DNS=dns_server.address, DEMO_API_PORT=str(api.port), DEMO_SPARE_PORT=str(free_port()))
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--autoglm-target", "example_suites/demo.yaml", *argv]
        print(f"demo services: DNS {dns_server.address}, API 127.0.0.1:{api.port}", flush=True)
        print("running:", " ".join(command[1:]), flush=True)
        status = subprocess.call(command, cwd=ROOT, env=env)
    print()
    if status in (0, 1):
        print("Demo done: reports are in reports/ (some checks fail on purpose to show the diagnosis).")
        return 0
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
