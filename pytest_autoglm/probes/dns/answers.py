"""What a resolver said, read from a DNS response without I/O: :class:`DnsAnswer`, rcodes, CNAME chains, errors."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass

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
import httpx

from pytest_autoglm.core.resolvers import (
    normalize_rdata,
)
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tcp import parse_ip

_MAX_CNAME_CHAIN = 16


EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 size: avoids fragmentation, rarely truncates


NOT_RESOLVING = (Reason.TIMEOUT, Reason.SERVFAIL, Reason.REFUSED, Reason.SETUP)


@dataclass(frozen=True)
class DnsAnswer:
    """What one resolver said about one (name, type).

    ``reason`` is None for NOERROR with records, else NODATA, NXDOMAIN, SERVFAIL,
    REFUSED, TIMEOUT (or SETUP when the query could not even be formed).
    ``message`` describes the answer for a human ("NXDOMAIN", "no answer within 2s").
    """

    resolver: str
    records: tuple[str, ...]
    reason: Reason | None
    message: str
    used_tcp: bool = False


def fmt_set(values: Sequence[str]) -> str:
    return "{" + ", ".join(sorted(values)) + "}"


def ip_literal(text: str) -> str | None:
    ip = parse_ip(text.strip("[]"))
    return None if ip is None else ip.compressed


def question_name(name: str, rdtype: str) -> dns.name.Name:
    """The name to ask for; a PTR question about an IP literal asks for its reverse name."""
    ip = ip_literal(name)
    if rdtype == "PTR" and ip is not None:
        return dns.reversename.from_address(ip)
    return dns.name.from_text(name)


def _extract(response: dns.message.Message, qname: dns.name.Name, rdtype: str) -> tuple[list[str], list[str]]:
    """The records of ``rdtype`` for ``qname``, following a CNAME chain in the answer section.

    Returns (records, chain of names followed). For a CNAME question the CNAME
    target itself is the record.
    """
    wanted = dns.rdatatype.from_text(rdtype)
    name = qname
    chain: list[str] = []
    for _ in range(_MAX_CNAME_CHAIN):
        rrset = response.get_rrset(response.answer, name, dns.rdataclass.IN, wanted)
        if rrset is not None:
            return [normalize_rdata(rd) for rd in rrset], chain
        if wanted == dns.rdatatype.CNAME:
            break
        cname = response.get_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            break
        name = next(iter(cname)).target
        chain.append(name.to_text())
    return [], chain


def from_response(
    resolver: str, response: dns.message.Message, qname: dns.name.Name, rdtype: str, used_tcp: bool
) -> DnsAnswer:
    failure = rcode_failure(resolver, response.rcode(), used_tcp)
    if failure is not None:
        return failure
    records, chain = _extract(response, qname, rdtype)
    return records_answer(resolver, records, chain, rdtype, used_tcp)


def rcode_failure(resolver: str, rcode: int, used_tcp: bool) -> DnsAnswer | None:
    """The answer for a response whose rcode is an error (None for NOERROR)."""
    if rcode == dns.rcode.NOERROR:
        return None
    if rcode == dns.rcode.NXDOMAIN:
        return DnsAnswer(resolver, (), Reason.NXDOMAIN, "NXDOMAIN (the name does not exist)", used_tcp)
    if rcode == dns.rcode.SERVFAIL:
        return DnsAnswer(resolver, (), Reason.SERVFAIL, "SERVFAIL", used_tcp)
    if rcode == dns.rcode.REFUSED:
        return DnsAnswer(resolver, (), Reason.REFUSED, "REFUSED", used_tcp)
    text = dns.rcode.to_text(rcode)  # type: ignore[arg-type]  # takes any int
    return DnsAnswer(resolver, (), Reason.SERVFAIL, f"rcode {text}", used_tcp)


def records_answer(
    resolver: str, records: Sequence[str], chain: Sequence[str], rdtype: str, used_tcp: bool
) -> DnsAnswer:
    """The answer of a NOERROR response: its records, or NODATA (saying through which CNAMEs)."""
    if not records:
        via = f" (via CNAME {' -> '.join(chain)})" if chain else ""
        return DnsAnswer(resolver, (), Reason.NODATA, f"NODATA (the name exists, no {rdtype} record){via}", used_tcp)
    unique = tuple(sorted(set(records)))
    return DnsAnswer(resolver, unique, None, fmt_set(unique), used_tcp)


def _root_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in the chain (httpx wraps the OSError that matters)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def error_answer(resolver: str, exc: BaseException, timeout: float) -> DnsAnswer:
    """Map an exception of one exchange to an answer (see the module docstring)."""
    stalled = _root_cause(exc, ssl.SSLWantReadError) or _root_cause(exc, ssl.SSLWantWriteError)
    if stalled is not None or isinstance(exc, (TimeoutError, dns.exception.Timeout, httpx.TimeoutException)):
        # a TLS handshake that never completes is a resolver that does not answer, not a TLS failure
        return DnsAnswer(resolver, (), Reason.TIMEOUT, f"no answer within {format_duration(timeout)}")
    if _root_cause(exc, ConnectionRefusedError) is not None:
        return DnsAnswer(resolver, (), Reason.REFUSED, "connection refused (nothing listens on the resolver's port)")
    tls_error = _root_cause(exc, ssl.SSLError)
    if tls_error is not None:
        return DnsAnswer(resolver, (), Reason.SERVFAIL, f"TLS with the resolver failed: {tls_error}")
    detail = str(exc) or type(exc).__name__
    return DnsAnswer(resolver, (), Reason.SERVFAIL, f"resolver error: {type(exc).__name__}: {detail}")
