"""Three network namespaces for ICMP: client -- router -- server, the router forwarding or dropping echoes.

client ``10.219.1.2/24`` (default via the router ``10.219.1.1``), router ``10.219.2.1/24`` towards the
server, whose addresses say what the router does with echo requests to them:

- ``FORWARDED`` (10.219.2.2): forwarded (answered);
- ``DROPPED`` (10.219.2.3): dropped by an nft rule in the router (the path stops after the router);
- ``LOSSY`` (10.219.2.4): every third echo request dropped (``numgen inc mod 3``), so 3 echoes lose 1.

The namespaces are linked to each other only, never to the root namespace: nothing inside can reach
anything else. The client's ``net.ipv4.ping_group_range`` allows unprivileged ICMP sockets (or not,
``allow_ping=False``). Code runs in the client with :meth:`IcmpLab.run_python`. Needs root, ip, nft.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.netns import netns_prerequisites

FORWARDED = "10.219.2.2"
DROPPED = "10.219.2.3"
LOSSY = "10.219.2.4"
ROUTER_NEAR = "10.219.1.1"
_COUNTER = itertools.count()
_ROOT = Path(__file__).resolve().parent.parent.parent


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=10)


def _in(ns: str, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True, input=stdin, timeout=10
    )


@dataclass(frozen=True)
class IcmpLab:
    client: str
    router: str
    server: str

    def set_ping_range(self, allowed: bool) -> None:
        value = "0 2147483647" if allowed else "1 0"
        _in(self.client, "sysctl", "-qw", f"net.ipv4.ping_group_range={value}")

    def run_python(
        self, code: str, *, cwd: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code`` (this interpreter, the project importable) inside the client namespace."""
        env = {**os.environ, "PYTHONPATH": str(_ROOT)}
        return subprocess.run(
            ["ip", "netns", "exec", self.client, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or _ROOT,
            env=env,
            check=False,
        )

    def run_pytest(self, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(_ROOT)}
        return subprocess.run(
            ["ip", "netns", "exec", self.client, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=env,
            check=False,
        )


@contextmanager
def icmp_lab(*, allow_ping: bool = True) -> Iterator[IcmpLab]:
    problem = netns_prerequisites()
    if problem:
        import pytest

        pytest.skip(problem)
    tag = f"{os.getpid() % 100000}{next(_COUNTER)}"
    lab = IcmpLab(f"agic{tag}", f"agir{tag}", f"agis{tag}")
    made: list[str] = []
    try:
        for ns in (lab.client, lab.router, lab.server):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", "c0", "netns", lab.client, "type", "veth", "peer", "name", "r0", "netns", lab.router)
        _ip("link", "add", "r1", "netns", lab.router, "type", "veth", "peer", "name", "s0", "netns", lab.server)
        _ip("-n", lab.client, "addr", "add", "10.219.1.2/24", "dev", "c0")
        _ip("-n", lab.client, "link", "set", "c0", "up")
        _ip("-n", lab.client, "route", "add", "default", "via", ROUTER_NEAR)
        _ip("-n", lab.router, "addr", "add", f"{ROUTER_NEAR}/24", "dev", "r0")
        _ip("-n", lab.router, "addr", "add", "10.219.2.1/24", "dev", "r1")
        _ip("-n", lab.router, "link", "set", "r0", "up")
        _ip("-n", lab.router, "link", "set", "r1", "up")
        for address in (FORWARDED, DROPPED, LOSSY):
            _ip("-n", lab.server, "addr", "add", f"{address}/24", "dev", "s0")
        _ip("-n", lab.server, "link", "set", "s0", "up")
        _ip("-n", lab.server, "route", "add", "default", "via", "10.219.2.1")
        _in(lab.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for ns in (lab.router, lab.server):  # answers every echo and TTL expiry at once
            _in(ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        _in(
            lab.router,
            "nft",
            "-f",
            "-",
            stdin=(
                "table inet lab { chain forward { type filter hook forward priority 0; policy accept;\n"
                f"  ip daddr {DROPPED} icmp type echo-request drop\n"
                f"  ip daddr {LOSSY} icmp type echo-request numgen inc mod 3 == 0 drop\n"
                "}\n}\n"
            ),
        )
        lab.set_ping_range(allow_ping)
        yield lab
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)
