"""The DNS layer: one query, one DNS check attempt, and the addresses of a host.

Resolvers are queried directly (not through a ``dns.resolver.Resolver``) so the
rcode the server sent (SERVFAIL, REFUSED, NXDOMAIN) is what the report shows,
instead of a generic "all nameservers failed". Every network operation is
bounded by the timeout it is given; nothing here raises for a verdict.

Answers and expectations are compared as sets of normalized text (see
``inventory.resolvers.normalize_rdata``).

Failures that are not DNS rcodes map onto the DNS reason codes as follows:
nothing listening on the resolver's port -> ``refused``; a resolver that cannot
be used (TLS verification failure, a broken or non-DNS reply, HTTP error of a
DoH server, an rcode such as NOTIMP or FORMERR) -> ``servfail``; a name or
expectation that cannot be expressed at all -> ``setup``. The message always
says which it was.

The parts: ``answers`` (responses read without I/O), ``transport`` (UDP, TCP, DoT, DoH and the
run's :class:`DnsSession`), ``system`` (/etc/hosts, resolv.conf, getaddrinfo), ``query`` (one
question to one resolver) and ``check`` (one check attempt, the addresses of a host).
"""

from pytest_autoglm.probes.dns.answers import DnsAnswer
from pytest_autoglm.probes.dns.check import MODES, SYSTEM, check_dns, resolve_addresses
from pytest_autoglm.probes.dns.query import query
from pytest_autoglm.probes.dns.system import getaddrinfo_in_thread, hosts_file_records, system_nameservers
from pytest_autoglm.probes.dns.transport import DnsSession

__all__ = [
    "MODES",
    "SYSTEM",
    "DnsAnswer",
    "DnsSession",
    "check_dns",
    "getaddrinfo_in_thread",
    "hosts_file_records",
    "query",
    "resolve_addresses",
    "system_nameservers",
]
