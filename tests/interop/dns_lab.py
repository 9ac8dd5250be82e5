"""nsd (authoritative) and unbound (resolver, also DNS over TLS) on loopback ports, with zones written here.

nsd serves ``interop.test.`` and a root zone of its own: with unbound's stub
zones for both pointing at it, every question unbound must ask on its own
(including the address of a name server named in a delegation) ends at this
nsd, so nothing leaves the machine; ``outgoing-interface: 127.0.0.1`` makes
the kernel refuse anything else anyway. What the zones hold, by name:

=============================  ===============================================
``www.interop.test``           A 127.0.0.10, 127.0.0.11; no AAAA (NODATA)
``alias.interop.test``         CNAME www.interop.test.
``mail.interop.test``          MX 10 mx.interop.test.; TXT "v=spf1 -all"
``web.interop.test``           A 127.0.0.1 (a real address: the nsd TCP port)
``split.interop.test``         A 127.0.0.20 at nsd; unbound's local-data says 127.0.0.99
``broken.interop.test``        delegated to ns.does-not-exist.invalid. -> SERVFAIL
``dangling.interop.test``      CNAME to a name that does not exist -> NXDOMAIN
``*.wild.interop.test``        A 127.0.0.30 (wildcard)
``multi.interop.test``         TXT "part1" "part2" (one record, two strings)
``many.interop.test``          100 A records: more than 1232 bytes, truncated over UDP
``*.refused.interop.test``     unbound local-zone refuse -> REFUSED
``*.silent.interop.test``      unbound local-zone deny -> no answer (timeout)
anything else                  NXDOMAIN (``nope.interop.test``), or REFUSED outside interop.test
=============================  ===============================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from tests.interop.daemons import Daemon, DaemonFailed, free_ports, start_with_fresh_ports

ZONE = "interop.test."

_ROOT_ZONE = """\
$ORIGIN .
$TTL 60
@ IN SOA ns.root-servers.interop. hostmaster.root-servers.interop. 1 3600 600 86400 60
@ IN NS ns.root-servers.interop.
"""

_INTEROP_ZONE = """\
$ORIGIN interop.test.
$TTL 60
@       IN SOA ns1 hostmaster 1 3600 600 86400 60
@       IN NS ns1
ns1     IN A 127.0.0.1
www     IN A 127.0.0.10
www     IN A 127.0.0.11
alias   IN CNAME www
mail    IN MX 10 mx
mail    IN TXT "v=spf1 -all"
mx      IN A 127.0.0.12
web     IN A 127.0.0.1
split   IN A 127.0.0.20
broken  IN NS ns.does-not-exist.invalid.
dangling IN CNAME gone
*.wild  IN A 127.0.0.30
multi   IN TXT "part1" "part2"
""" + "".join(f"many    IN A 127.0.1.{i}\n" for i in range(1, 101))


@dataclass
class DnsLab:
    nsd_port: int
    unbound_port: int
    dot_port: int
    dot_ca: Path  # the root that signed unbound's DoT certificate
    daemons: tuple[Daemon, ...]

    @property
    def unbound(self) -> str:
        return f"127.0.0.1:{self.unbound_port}"

    @property
    def nsd(self) -> str:
        return f"127.0.0.1:{self.nsd_port}"

    @property
    def dot(self) -> str:
        return f"tls://127.0.0.1:{self.dot_port}"


def _answers(port: int) -> bool:
    """A real query (www A over UDP) gets NOERROR from the server on ``port``."""
    try:
        q = dns.message.make_query("www.interop.test.", "A")
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3).rcode() == dns.rcode.NOERROR
    except (dns.exception.DNSException, OSError):
        return False


def _nsd_conf(d: Path, port: int) -> str:
    return f"""\
server:
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    logfile: "{d}/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: "."
    zonefile: "root.zone"
zone:
    name: "{ZONE}"
    zonefile: "interop.test.zone"
"""


def _unbound_conf(d: Path, port: int, dot_port: int, nsd_port: int, cert: Path, key: Path) -> str:
    return f"""\
server:
    verbosity: 1
    interface: 127.0.0.1@{port}
    interface: 127.0.0.1@{dot_port}
    tls-port: {dot_port}
    tls-service-pem: "{cert}"
    tls-service-key: "{key}"
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: ""
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    num-threads: 1
    so-reuseport: no
    outgoing-range: 32
    outgoing-interface: 127.0.0.1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    qname-minimisation: no
    cache-max-negative-ttl: 1
    local-zone: "." refuse
    local-zone: "{ZONE}" transparent
    local-zone: "refused.{ZONE}" refuse
    local-zone: "silent.{ZONE}" deny
    local-data: "split.{ZONE} 60 IN A 127.0.0.99"
remote-control:
    control-enable: no
stub-zone:
    name: "{ZONE}"
    stub-addr: 127.0.0.1@{nsd_port}
    stub-prime: no
stub-zone:
    name: "."
    stub-addr: 127.0.0.1@{nsd_port}
    stub-prime: no
"""


def _start(d: Path, dot_cert: Path, dot_key: Path) -> tuple[Daemon, Daemon, tuple[int, int, int]]:
    nsd_port, unbound_port, dot_port = free_ports(3, udp_too=True)
    (d / "nsd.conf").write_text(_nsd_conf(d, nsd_port))
    (d / "unbound.conf").write_text(_unbound_conf(d, unbound_port, dot_port, nsd_port, dot_cert, dot_key))
    nsd = Daemon("nsd", ["nsd", "-d", "-c", str(d / "nsd.conf")], d / "nsd.stdout.log").start()
    try:
        nsd.wait_ready(lambda: _answers(nsd_port))
    except DaemonFailed as exc:
        nsd.stop()
        log = (d / "nsd.log").read_text(errors="replace")[-1500:] if (d / "nsd.log").exists() else ""
        raise DaemonFailed(f"{exc}\nnsd.log:\n{log}") from None
    unbound = Daemon("unbound", ["unbound", "-d", "-c", str(d / "unbound.conf")], d / "unbound.log").start()
    try:
        unbound.wait_ready(lambda: _answers(unbound_port))
    except DaemonFailed:
        unbound.stop()
        nsd.stop()
        raise
    return nsd, unbound, (nsd_port, unbound_port, dot_port)


@contextmanager
def dns_lab(directory: Path, dot_cert: Path, dot_key: Path, dot_ca: Path) -> Iterator[DnsLab]:
    """nsd and unbound running with the zones above; both stopped (by PID) on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "root.zone").write_text(_ROOT_ZONE)
    (directory / "interop.test.zone").write_text(_INTEROP_ZONE)
    holder: dict[str, object] = {}

    def start() -> Daemon:
        nsd, unbound, ports = _start(directory, dot_cert, dot_key)
        holder.update(nsd=nsd, ports=ports)
        return unbound

    unbound = start_with_fresh_ports(start)
    nsd: Daemon = holder["nsd"]  # type: ignore[assignment]
    nsd_port, unbound_port, dot_port = holder["ports"]  # type: ignore[misc]
    try:
        yield DnsLab(nsd_port, unbound_port, dot_port, dot_ca, (unbound, nsd))
    finally:
        unbound.stop()
        nsd.stop()
