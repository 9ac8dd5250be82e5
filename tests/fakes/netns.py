"""A network lab in a Linux network namespace: open, dropped, reset and unreachable ports.

Loopback cannot produce a *filtered* or *unreachable* port, so tests (and the
benchmark) talk to a namespace instead: a veth pair joins it to the root
namespace (host side ``198.18.x.1/30``, lab side ``198.18.x.2/30``, from the
benchmarking range 198.18.0.0/15). The namespace has lo up and NO default
route, so nothing inside can reach anything but the pair. nftables inside the
namespace turns ports into dropped / reset / host-unreachable ones; the rules
match named sets with interval flags, so thousands of ports cost one lookup.

Needs root, ``ip`` (iproute2), ``nft`` and ``sysctl`` (procps). Usage::

    with NetnsLab(dropped=range(20000, 20200), reset=[9001], unreachable=[9002], open_ports=[8080]) as lab:
        ...connect to (lab.address, 20000) -> filtered

Each lab gets its own /30 (the lowest one no interface in the root namespace
uses, chosen under a file lock), so several labs, also in parallel pytest-xdist
workers, do not clash. ``python -m tests.fakes.netns`` prints the equivalent
shell commands (for CI scripts and debugging).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

__all__ = [
    "LAB_NETWORK",
    "STANDARD_PORTS",
    "LabPorts",
    "NetnsLab",
    "NetnsUnavailable",
    "netns_prerequisites",
    "standard_lab",
]

#: All lab addresses come from here (RFC 2544 benchmarking range, never routed on the internet).
LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
_SLOTS = LAB_NETWORK.num_addresses // 4  # one /30 per lab
_TABLE = "agl"
#: attribute -> nft set name ("reset" is an nft keyword, so the sets get a suffix)
_SETS = {"dropped": "dropped_ports", "reset": "reset_ports", "unreachable": "unreachable_ports"}
_COUNTER = itertools.count()
_SYSCTLS = ("net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000")
_CMD_TIMEOUT = 10.0  # seconds for any one ip/nft command


class NetnsUnavailable(RuntimeError):
    """The lab cannot be built here (not root, tools missing, namespaces not permitted)."""


def netns_prerequisites() -> str | None:
    """Why a lab cannot be built on this machine, or None when it can (cheap: no side effects)."""
    if sys.platform != "linux":
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "network namespace lab needs root (run as root or in a privileged container)"
    missing = [tool for tool in ("ip", "nft", "sysctl") if shutil.which(tool) is None]
    if missing:
        return f"network namespace lab needs {', '.join(missing)} (apt-get install -y iproute2 nftables procps)"
    return None


def _run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one ip/nft command, bounded in time; failures raise NetnsUnavailable with stderr."""
    try:
        proc = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=_CMD_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsUnavailable(f"{' '.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise NetnsUnavailable(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc


def _ports(values: Iterable[int], what: str) -> frozenset[int]:
    ports = frozenset(int(p) for p in values)
    bad = sorted(p for p in ports if not 0 < p < 65536)
    if bad:
        raise ValueError(f"{what}: ports out of range 1..65535: {bad[:5]}")
    return ports


def _nft_elements(ports: Iterable[int]) -> str:
    """``9000, 20000-20199``: consecutive ports folded into ranges, so big sets stay short."""
    ordered = sorted(ports)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(parts)


def _lock_path() -> str:
    directory = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
    return os.path.join(directory, "agl-netns.lock")


@contextlib.contextmanager
def _slot_lock(timeout: float = 15.0) -> Iterator[None]:
    """Serialize slot choice + address assignment between processes (xdist workers)."""
    with open(_lock_path(), "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise NetnsUnavailable(f"could not lock {handle.name} within {timeout:.0f}s") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _used_slots() -> set[int]:
    """Slots whose /30 already has an address in the root namespace (another lab, or a leftover)."""
    out = _run(["ip", "-4", "-o", "addr", "show"]).stdout
    used: set[int] = set()
    for line in out.splitlines():
        fields = line.split()
        if "inet" not in fields:
            continue
        iface = ipaddress.IPv4Interface(fields[fields.index("inet") + 1])
        if iface.network.overlaps(LAB_NETWORK):
            first = max(int(iface.network.network_address), int(LAB_NETWORK.network_address))
            last = min(int(iface.network.broadcast_address), int(LAB_NETWORK.broadcast_address))
            base = int(LAB_NETWORK.network_address)
            used.update(range((first - base) // 4, (last - base) // 4 + 1))
    return used


# The servers for open and silent ports, run inside the namespace with `python -I -c`.
# argv: open ports (comma list), silent ports (comma list), parent pid, max seconds.
# It exits when its parent is gone (checked twice a second) or after max seconds.
_SERVER = r"""
import asyncio, os, sys

async def main():
    open_ports = [int(p) for p in sys.argv[1].split(",") if p]
    silent_ports = [int(p) for p in sys.argv[2].split(",") if p]
    parent, max_seconds = int(sys.argv[3]), float(sys.argv[4])

    async def close_at_once(reader, writer):
        writer.close()

    async def hold(reader, writer):
        try:
            async with asyncio.timeout(max_seconds):
                while await reader.read(65536):
                    pass
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    servers = []
    for handler, ports in ((close_at_once, open_ports), (hold, silent_ports)):
        for port in ports:
            servers.append(await asyncio.start_server(handler, "0.0.0.0", port, backlog=4096, reuse_address=True))
    for _ in range(max(1, int(max_seconds * 2))):
        if os.getppid() != parent:
            break
        await asyncio.sleep(0.5)

asyncio.run(main())
"""


class NetnsLab:
    """A namespace with a veth pair, nft port rules and optional listeners; a context manager.

    ``address`` is the lab side (connect there), ``host_address`` the root side.
    Port sets: ``open_ports`` (accept and close), ``silent_ports`` (accept, never
    speak), ``dropped`` (filtered), ``reset`` (RST by rule), ``unreachable``
    (ICMP host-unreachable). Any other port is refused by the kernel (RST).
    """

    def __init__(
        self,
        *,
        dropped: Iterable[int] = (),
        reset: Iterable[int] = (),
        unreachable: Iterable[int] = (),
        open_ports: Iterable[int] = (),
        silent_ports: Iterable[int] = (),
        name: str | None = None,
        slot: int | None = None,
        ready_timeout: float = 5.0,
        max_seconds: float = 3600.0,
    ) -> None:
        self.dropped = _ports(dropped, "dropped")
        self.reset = _ports(reset, "reset")
        self.unreachable = _ports(unreachable, "unreachable")
        self.open_ports = _ports(open_ports, "open_ports")
        self.silent_ports = _ports(silent_ports, "silent_ports")
        groups = [self.dropped, self.reset, self.unreachable, self.open_ports, self.silent_ports]
        overlap = set().union(*(a & b for a, b in itertools.combinations(groups, 2)))
        if overlap:
            raise ValueError(f"a port can be in one set only: {sorted(overlap)[:5]}")
        if slot is not None and not 0 <= slot < _SLOTS:
            raise ValueError(f"slot must be in 0..{_SLOTS - 1}")
        self.name = name or f"agl-{os.getpid()}-{next(_COUNTER)}"
        self.ready_timeout = ready_timeout
        self.max_seconds = max_seconds
        self._want_slot = slot
        self.slot: int | None = None
        self.address = ""
        self.host_address = ""
        self.host_if = ""
        self.peer_if = ""
        self._server: subprocess.Popen[bytes] | None = None
        self._created = False

    # -- addresses -------------------------------------------------------------------------
    def _assign(self, slot: int) -> None:
        self.slot = slot
        base = int(LAB_NETWORK.network_address) + 4 * slot
        self.host_address = str(ipaddress.IPv4Address(base + 1))
        self.address = str(ipaddress.IPv4Address(base + 2))
        self.host_if = f"agl{slot}h"  # <= 9 chars: interface names are limited to 15
        self.peer_if = f"agl{slot}p"

    @property
    def exec_prefix(self) -> list[str]:
        """``ip netns exec NAME``: prepend to run a command inside the lab."""
        return ["ip", "netns", "exec", self.name]

    # -- the commands, also printable for CI -----------------------------------------------
    def _setup_commands(self) -> list[list[str]]:
        ns = self.name
        return [
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if, "netns", ns],
            ["ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "addr", "add", f"{self.address}/30", "dev", self.peer_if],
            ["ip", "-n", ns, "link", "set", self.peer_if, "up"],
            # The kernel rate-limits ICMP errors (per peer ~1/s after a burst of 6), which would turn
            # "unreachable" ports into "filtered" ones under load. These sysctls are per namespace.
            [*self.exec_prefix, "sysctl", "-q", "-w", *_SYSCTLS],
        ]

    def nft_ruleset(self) -> str:
        """The nft script loaded inside the namespace (``ip netns exec NAME nft -f -``)."""
        lines = [f"table inet {_TABLE} {{"]
        lines += [f"  set {s} {{ type inet_service; flags interval; }}" for s in _SETS.values()]
        lines += [
            "  chain input {",
            "    type filter hook input priority filter; policy accept;",
            "    tcp dport @dropped_ports drop",
            "    tcp dport @reset_ports reject with tcp reset",
            "    tcp dport @unreachable_ports reject with icmpx type host-unreachable",
            "  }",
            "}",
        ]
        lines += self._element_lines()
        return "\n".join(lines) + "\n"

    def _element_lines(self) -> list[str]:
        lines = []
        for attr, set_name in _SETS.items():
            ports: frozenset[int] = getattr(self, attr)
            if ports:
                lines.append(f"add element inet {_TABLE} {set_name} {{ {_nft_elements(ports)} }}")
        return lines

    def shell_script(self) -> str:
        """The whole setup as shell commands (what ``__enter__`` does, minus the listeners)."""
        if self.slot is None:
            self._assign(self._want_slot or 0)
        cmds = [" ".join(c) for c in self._setup_commands()]
        cmds.append(f"ip netns exec {self.name} nft -f - <<'EOF'\n{self.nft_ruleset()}EOF")
        teardown = f"# teardown: ip link del {self.host_if}; ip netns del {self.name}"
        return "\n".join(["set -e", *cmds, teardown]) + "\n"

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        reason = netns_prerequisites()
        if reason:
            raise NetnsUnavailable(reason)
        try:
            self._create()
            self._start_server()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _create(self) -> None:
        with _slot_lock():
            used = _used_slots()
            if self._want_slot is not None:
                if self._want_slot in used:
                    raise NetnsUnavailable(f"slot {self._want_slot} is in use by another interface")
                slot = self._want_slot
            else:
                free = next((s for s in range(_SLOTS) if s not in used), None)
                if free is None:
                    raise NetnsUnavailable("no free /30 left in 198.18.0.0/15")
                slot = free
            self._assign(slot)
            self._remove_stale()
            self._created = True
            for argv in self._setup_commands():
                _run(argv)
        _run([*self.exec_prefix, "nft", "-f", "-"], stdin=self.nft_ruleset())

    def _remove_stale(self) -> None:
        """A crashed run may have left this namespace name or interface behind: remove them."""
        if self.name in _run(["ip", "netns", "list"]).stdout.split():
            _run(["ip", "netns", "del", self.name], check=False)
        if _run(["ip", "link", "show", self.host_if], check=False).returncode == 0:
            _run(["ip", "link", "del", self.host_if], check=False)

    def set_ports(
        self,
        *,
        dropped: Iterable[int] | None = None,
        reset: Iterable[int] | None = None,
        unreachable: Iterable[int] | None = None,
    ) -> None:
        """Replace some port sets of a running lab in one nft transaction."""
        new = {
            "dropped": self.dropped if dropped is None else _ports(dropped, "dropped"),
            "reset": self.reset if reset is None else _ports(reset, "reset"),
            "unreachable": self.unreachable if unreachable is None else _ports(unreachable, "unreachable"),
        }
        self.dropped, self.reset, self.unreachable = new["dropped"], new["reset"], new["unreachable"]
        script = [f"flush set inet {_TABLE} {s}" for s in _SETS.values()] + self._element_lines()
        _run([*self.exec_prefix, "nft", "-f", "-"], stdin="\n".join(script) + "\n")

    def _start_server(self) -> None:
        listen = sorted(self.open_ports | self.silent_ports)
        if not listen:
            return
        argv = [
            *self.exec_prefix,
            sys.executable,
            "-I",
            "-c",
            _SERVER,
            ",".join(map(str, sorted(self.open_ports))),
            ",".join(map(str, sorted(self.silent_ports))),
            str(os.getpid()),
            str(self.max_seconds),
        ]
        self._server = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_listening(listen)

    def _wait_listening(self, ports: list[int]) -> None:
        """Bounded connect loop from the root namespace until every listener answers."""
        assert self._server is not None
        deadline = time.monotonic() + self.ready_timeout
        pending = list(ports)
        for _ in range(10_000):
            if self._server.poll() is not None:
                err = self._server.stderr.read().decode(errors="replace") if self._server.stderr else ""
                raise NetnsUnavailable(f"lab server exited with {self._server.returncode}: {err.strip()[-500:]}")
            pending = [p for p in pending if not self._answers(p)]
            if not pending:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        raise NetnsUnavailable(f"lab listeners on {pending[:5]} not ready within {self.ready_timeout}s")

    def _answers(self, port: int) -> bool:
        try:
            with socket.create_connection((self.address, port), timeout=0.2):
                return True
        except OSError:
            return False

    def close(self) -> None:
        """Stop our own server (by PID), delete the veth and the namespace; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(timeout=2)
            if server.stderr:
                server.stderr.close()
        if self._created:
            self._created = False
            _run(["ip", "link", "del", self.host_if], check=False)
            _run(["ip", "netns", "del", self.name], check=False)

    def __repr__(self) -> str:
        return f"NetnsLab(name={self.name!r}, address={self.address!r}, host_if={self.host_if!r})"


@dataclass(frozen=True)
class LabPorts:
    """The ports of the standard lab, one per state (inside the namespace: they clash with nothing)."""

    open: int = 8080
    silent: int = 8081  # accepts, never speaks
    dropped: int = 9000
    reset: int = 9001  # reject with tcp reset
    unreachable: int = 9002  # reject with icmp host-unreachable
    refused: int = 9003  # no rule, nothing listens: the kernel answers RST
    dropped_range: range = range(20000, 20200)  # many dropped ports (concurrency tests, benchmarks)


STANDARD_PORTS = LabPorts()


def standard_lab(ports: LabPorts = STANDARD_PORTS, **kwargs: object) -> NetnsLab:
    """A lab with one port per state (see :class:`LabPorts`); enter it with ``with``."""
    return NetnsLab(
        open_ports=[ports.open],
        silent_ports=[ports.silent],
        dropped=[ports.dropped, *ports.dropped_range],
        reset=[ports.reset],
        unreachable=[ports.unreachable],
        **kwargs,  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    # Print the shell commands of the standard lab (what the probe tests build).
    print(standard_lab().shell_script())
