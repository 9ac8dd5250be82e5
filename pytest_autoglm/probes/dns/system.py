"""The system's resolver as applications see it: /etc/hosts, resolv.conf's nameservers, getaddrinfo in a thread."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import dns.asyncbackend
import dns.asyncquery
import dns.entropy
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.dns.answers import ip_literal
from pytest_autoglm.probes.errmap import lookup_reason


@functools.cache
def system_nameservers() -> tuple[tuple[str, int], ...]:
    """The (address, port) of each nameserver in /etc/resolv.conf, read once.

    Cached: resolv.conf is the host's configuration and does not change during
    a test session. Tests may replace this function to point ``system`` at a
    fake server.
    """
    try:
        resolver = dns.resolver.Resolver()
    except dns.exception.DNSException:
        return ()
    return tuple((str(ns), resolver.nameserver_ports.get(str(ns), resolver.port)) for ns in resolver.nameservers)


HOSTS_FILE = "/etc/hosts"


@functools.lru_cache(maxsize=1)
def _hosts_table() -> dict[str, tuple[str, ...]]:
    """Name -> addresses of /etc/hosts (read once per process; unreadable means empty)."""
    table: dict[str, list[str]] = {}
    try:
        lines = Path(HOSTS_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = str(ipaddress.ip_address(fields[0].split("%", 1)[0]))
        except ValueError:
            continue
        for host in fields[1:]:
            table.setdefault(host.lower().rstrip(".") + ".", []).append(address)
    return {name: tuple(addresses) for name, addresses in table.items()}


def hosts_file_records(name: str, rdtype: str) -> tuple[str, ...]:
    """A/AAAA records /etc/hosts gives ``name`` (what nsswitch's ``files`` source answers first)."""
    if rdtype not in ("A", "AAAA"):
        return ()
    version = 4 if rdtype == "A" else 6
    addresses = _hosts_table().get(name.lower().rstrip(".") + ".", ())
    return tuple(sorted({a for a in addresses if ipaddress.ip_address(a).version == version}))


def order_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """IPv4 first, then IPv6, each sorted numerically; duplicates removed."""
    parsed = {ipaddress.ip_address(a) for a in addresses}
    v4 = sorted(a for a in parsed if a.version == 4)
    v6 = sorted(a for a in parsed if a.version == 6)
    return tuple(a.compressed for a in [*v4, *v6])


async def getaddrinfo_in_thread(host: str) -> list[tuple]:  # type: ignore[type-arg]
    """``socket.getaddrinfo`` in a daemon thread of its own.

    Not ``loop.getaddrinfo``: that uses the loop's default executor, which
    ``asyncio.run`` joins on exit, so a stub resolver that hangs would hold the
    run past our deadline. A blocking getaddrinfo cannot be interrupted; a
    daemon thread lets us stop waiting for it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[tuple]] = loop.create_future()  # type: ignore[type-arg]

    def deliver(result: list[tuple] | None, error: BaseException | None) -> None:  # type: ignore[type-arg]
        if future.done():  # we stopped waiting (timeout or cancellation)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def work() -> None:
        try:
            result, error = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM), None
        except BaseException as exc:
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(deliver, result, error)
        except RuntimeError:  # the loop has closed meanwhile: nobody waits any more
            pass

    threading.Thread(target=work, name=f"autoglm-getaddrinfo-{host}", daemon=True).start()
    return await future


async def getaddrinfo(host: str, timeout: float) -> tuple[tuple[str, ...], Verdict | None]:
    """The system's view (/etc/hosts, nsswitch, resolv.conf), bounded by ``timeout``.

    EAI_AGAIN that arrives before our deadline means the stub resolver gave up
    early (SERVFAIL, REFUSED, unreachable server), so it maps to ``servfail``;
    our own deadline passing maps to ``timeout``.
    """
    try:
        async with asyncio.timeout(timeout):
            infos = await getaddrinfo_in_thread(host)
    except TimeoutError:
        msg = f"{host}: the system resolver gave no answer within {format_duration(timeout)}"
        return (), Verdict.fail(Layer.DNS, Reason.TIMEOUT, msg)
    except socket.gaierror as exc:
        reason = lookup_reason(exc.errno)
        if reason is Reason.NXDOMAIN:
            what = "the name does not exist"
        elif reason is Reason.NODATA:
            what = "the name has no address"
        elif exc.errno == socket.EAI_AGAIN:
            what = "temporary failure in name resolution (SERVFAIL or no usable nameserver)"
        else:
            what = f"name resolution failed ({exc.strerror or exc})"
        return (), Verdict.fail(Layer.DNS, reason, f"{host} via system: {what}")
    except (OSError, UnicodeError) as exc:
        return (), Verdict.fail(Layer.DNS, Reason.SERVFAIL, f"{host} via system: name resolution failed ({exc})")
    addresses = [str(info[4][0]) for info in infos]
    addresses = [a for a in addresses if ip_literal(a.split("%")[0]) is not None]  # skip odd families
    if not addresses:
        return (), Verdict.fail(Layer.DNS, Reason.NODATA, f"{host} via system: the name has no address")
    return _order_addresses_keep_scope(addresses), None


def _order_addresses_keep_scope(addresses: Sequence[str]) -> tuple[str, ...]:
    """Like ``order_addresses``, keeping a link-local scope (``fe80::1%eth0``) intact."""
    scoped = {a for a in addresses if "%" in a}
    plain = order_addresses([a for a in addresses if "%" not in a])
    return plain + tuple(sorted(scoped))
