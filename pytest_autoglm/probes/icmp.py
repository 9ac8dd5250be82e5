"""ICMP: is the host up at all, with what loss and round-trip time, and where does the path stop.

Echo requests go out on unprivileged ICMP datagram sockets (icmplib, ``privileged=False``), so
no root and no raw sockets. The kernel allows those only to the groups in
``net.ipv4.ping_group_range``; when it forbids them the item is an ``error`` (reason ``setup``)
whose message says how to allow them, never a false ``failed``. The whole attempt (``count``
echoes, their ``interval`` and the trace) stays within the item's timeout.

``trace: true`` records the path with TTL-limited echoes on the same kind of socket: the routers'
"time exceeded" (and "unreachable") answers arrive on the socket's error queue (``IP_RECVERR``).
The trace runs in a worker thread (blocking ``poll``), bounded by what is left of the timeout.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.tcp import describe_target, parse_ip

#: How to allow unprivileged ICMP sockets, in the message of the setup error.
ALLOW_HINT = (
    'allow them for all groups with `sysctl -w net.ipv4.ping_group_range="0 2147483647"` '
    "(persist it in /etc/sysctl.d/), or run the checks in a group inside the range"
)
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
_SO_EE_ORIGIN_ICMP = 2
_ICMP_UNREACHABLE = 3
_ICMP_TIME_EXCEEDED = 11


@dataclass(frozen=True, slots=True)
class IcmpExpectation:
    """A target's ``icmp`` section (inventory.md), validated."""

    reachable: bool = True
    count: int = 3
    interval: float = 0.2
    max_loss: float = 0.0  # percent
    max_rtt: float | None = None  # seconds
    trace: bool = False
    max_hops: int = 16


class _Forbidden(Exception):
    """The kernel does not let this process open an ICMP datagram socket."""


def _plan(expect: IcmpExpectation, timeout: float) -> tuple[float, float, float]:
    """(interval, per-echo wait, trace budget) that keep the whole attempt within ``timeout``."""
    ping_budget = timeout / 2 if expect.trace else timeout
    interval = min(expect.interval, ping_budget / (2 * expect.count))
    wait = max(0.05, (ping_budget - interval * (expect.count - 1)) / expect.count)
    return interval, wait, timeout - ping_budget


async def _ping(address: str, expect: IcmpExpectation, interval: float, wait: float) -> Any:
    import icmplib

    try:
        return await icmplib.async_ping(address, count=expect.count, interval=interval, timeout=wait, privileged=False)
    except icmplib.SocketPermissionError as exc:
        raise _Forbidden(str(exc)) from None


def trace_path(address: str, max_hops: int, budget: float) -> list[dict[str, Any]]:
    """The hops towards ``address`` (IPv4): TTL-limited echoes, one per hop; blocking, bounded by ``budget``."""
    end = time.monotonic() + budget
    hops: list[dict[str, Any]] = []
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    except PermissionError as exc:
        raise _Forbidden(str(exc)) from None
    with sock:
        sock.setsockopt(socket.SOL_IP, _IP_RECVERR, 1)
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR)
        per_hop = max(0.05, budget / max_hops)
        for ttl in range(1, max_hops + 1):
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.setsockopt(socket.SOL_IP, socket.IP_TTL, ttl)
            started = time.monotonic()
            sock.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, ttl) + b"autoglm-trace", (address, 0))
            hop: dict[str, Any] = {"ttl": ttl, "address": None, "rtt_ms": None}
            deadline = started + min(per_hop, left)
            while (remaining := deadline - time.monotonic()) > 0:
                events = poller.poll(remaining * 1000)
                if not events:
                    break
                answer = _read_answer(sock, events[0][1])
                if answer is None or answer[2] != ttl:
                    continue  # a late answer to an earlier hop, or not an ICMP answer
                hop.update(address=answer[0], rtt_ms=round((time.monotonic() - started) * 1000, 3), kind=answer[1])
                break
            hops.append(hop)
            if hop.get("kind") in ("reply", "unreachable"):
                break
    return hops


def _read_answer(sock: socket.socket, event: int) -> tuple[str, str, int] | None:
    """(who answered, ``reply``/``time_exceeded``/``unreachable``, the echo's sequence) or None."""
    if event & select.POLLERR:
        data, ancillary, _flags, _addr = sock.recvmsg(512, 512, _MSG_ERRQUEUE)
        sequence = struct.unpack("!H", data[6:8])[0] if len(data) >= 8 else -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_IP and kind == _IP_RECVERR and len(payload) >= 24:
                _errno, origin, icmp_type, _code, _pad, _info, _data = struct.unpack("=IBBBBII", payload[:16])
                if origin != _SO_EE_ORIGIN_ICMP:
                    return None
                offender = socket.inet_ntoa(payload[20:24])  # sockaddr_in after the header: family, port, address
                what = "time_exceeded" if icmp_type == _ICMP_TIME_EXCEEDED else "unreachable"
                return offender, what, sequence
        return None
    data, peer = sock.recvfrom(512)
    sequence = struct.unpack("!H", data[6:8])[0] if len(data) >= 8 else -1
    return str(peer[0]), "reply", sequence


async def check_icmp(address: str, expect: IcmpExpectation, *, timeout: float, host: str | None = None) -> Verdict:
    """Judge one attempt of an ``icmp`` expectation against one resolved address; never raises."""
    where = describe_target(address, 0, host).removesuffix(" port 0")
    interval, wait, trace_budget = _plan(expect, timeout)
    details: dict[str, Any] = {"count": expect.count}
    try:
        result = await _ping(address, expect, interval, wait)
        if expect.trace:
            ip = parse_ip(address)
            if ip is not None and ip.version == 4:
                hops = await asyncio.to_thread(trace_path, address, expect.max_hops, trace_budget)
                details["hops"] = hops
                answered = [h["address"] for h in hops if h["address"]]
                details["last_hop"] = answered[-1] if answered else None
            else:
                details["hops"] = None  # IPv6 traces are not made yet
    except _Forbidden:
        return Verdict.fail(
            Layer.ICMP,
            Reason.SETUP,
            f"{where}: this process may not open unprivileged ICMP sockets (gid {os.getgid()} is outside "
            f"net.ipv4.ping_group_range); {ALLOW_HINT}",
            address=address,
            details=details,
        )
    except OSError as exc:
        return Verdict.fail(Layer.ICMP, Reason.SETUP, f"{where}: cannot send ICMP echoes: {exc}", address=address)
    sent, received = int(result.packets_sent), int(result.packets_received)
    loss = 100.0 * (sent - received) / sent if sent else 100.0
    details.update(sent=sent, received=received, loss_percent=round(loss, 1))
    if received:
        details["rtt_ms"] = {"min": result.min_rtt, "avg": result.avg_rtt, "max": result.max_rtt}
    counted = f"{received}/{sent} echoes answered"
    if not expect.reachable:
        if received:
            return Verdict.fail(
                Layer.ICMP,
                Reason.UNEXPECTED_REPLY,
                f"{where}: {counted}; expected no answer (reachable: false)",
                address=address,
                details=details,
            )
        return Verdict.ok(f"{where}: no answer to {sent} echoes, as expected", address=address, details=details)
    if not received:
        stop = f"; the path stops after {details['last_hop']}" if details.get("last_hop") else ""
        return Verdict.fail(
            Layer.ICMP,
            Reason.UNREACHABLE,
            f"{where}: no answer to {sent} echoes{stop}",
            address=address,
            details=details,
        )
    if loss > expect.max_loss:
        return Verdict.fail(
            Layer.ICMP,
            Reason.LOSS,
            f"{where}: {loss:.0f}% loss ({counted}), more than max_loss {expect.max_loss:g}%",
            address=address,
            details=details,
        )
    worst = float(result.max_rtt) / 1000
    if expect.max_rtt is not None and worst > expect.max_rtt:
        return Verdict.fail(
            Layer.ICMP,
            Reason.SLOW,
            f"{where}: round trip up to {format_duration(worst)}, more than max_rtt {format_duration(expect.max_rtt)}",
            address=address,
            details=details,
        )
    return Verdict.ok(
        f"{where}: {counted}, round trip up to {format_duration(worst)}", address=address, details=details
    )
