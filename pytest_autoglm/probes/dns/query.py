"""One question to one resolver, bounded by its timeout, shared within a :class:`DnsSession`."""

from __future__ import annotations

import asyncio
import ssl
import time

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

from pytest_autoglm.core.resolvers import (
    ResolverSpec,
)
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes import dnswire
from pytest_autoglm.probes.dns import system  # system.system_nameservers: tests point it at a fake server
from pytest_autoglm.probes.dns.answers import (
    EDNS_PAYLOAD,
    NOT_RESOLVING,
    DnsAnswer,
    error_answer,
    from_response,
    question_name,
    rcode_failure,
    records_answer,
)
from pytest_autoglm.probes.dns.system import hosts_file_records
from pytest_autoglm.probes.dns.transport import DnsSession, UdpChannel, exchange


async def _query_system(
    name: str, qname: dns.name.Name, rdtype: str, timeout: float, session: DnsSession | None
) -> DnsAnswer:
    """Ask the resolv.conf nameservers in order until one gives a definite answer.

    Each server gets a fair share of the time left, so one silent server does
    not use up the whole timeout; SERVFAIL/REFUSED/no answer moves on to the next.
    """
    from_hosts = hosts_file_records(name, rdtype)
    if from_hosts:  # the stub resolver answers these before DNS, so applications see them
        return DnsAnswer("system", from_hosts, None, "from /etc/hosts", False)
    servers = system.system_nameservers()
    if not servers:
        return DnsAnswer("system", (), Reason.SETUP, "no nameserver in /etc/resolv.conf")
    deadline = time.monotonic() + timeout
    last: DnsAnswer | None = None
    for index, (address, port) in enumerate(servers):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        share = remaining / (len(servers) - index)
        spec = ResolverSpec("udp", address, port, None, "system")
        answer = await query(name, rdtype, spec, share, session=session)
        where = f"{address}" if port == 53 else f"{address}:{port}"
        answer = DnsAnswer(
            "system", answer.records, answer.reason, f"{answer.message} (nameserver {where})", answer.used_tcp
        )
        if answer.reason not in NOT_RESOLVING:
            return answer
        last = answer
    if last is None or last.reason is Reason.TIMEOUT:
        return DnsAnswer(
            "system",
            (),
            Reason.TIMEOUT,
            f"no answer within {format_duration(timeout)} from {len(servers)} nameserver(s)",
        )
    return last


async def query(
    name: str,
    rdtype: str,
    resolver: ResolverSpec,
    timeout: float,
    *,
    ssl_context: ssl.SSLContext | None = None,
    session: DnsSession | None = None,
) -> DnsAnswer:
    """One question to one resolver, bounded by ``timeout``; never raises for an answer."""
    if session is None:
        return await _query(name, rdtype, resolver, timeout, ssl_context, None)
    cache = session.answers
    # Not keyed by the timeout: attempts of the same question differ in what is left of their
    # budget, and each waits only as long as its own timeout allows.
    key = (resolver.text, name.lower().rstrip("."), rdtype.upper(), id(ssl_context))
    shared = cache.get(key)
    if shared is None:
        shared = asyncio.ensure_future(_query(name, rdtype, resolver, timeout, ssl_context, session))
        cache[key] = shared

        def forget_transient(done: asyncio.Future[DnsAnswer]) -> None:
            if done.cancelled() or done.exception() is not None or done.result().reason in NOT_RESOLVING:
                if cache.get(key) is done:
                    del cache[key]

        shared.add_done_callback(forget_transient)
        return await asyncio.shield(shared)  # bounded by this attempt's own timeout inside _query
    if shared.done():
        return shared.result()
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(shared)
    except TimeoutError:
        if shared.done() and not shared.cancelled():
            return shared.result()  # answered in time; the loop woke late
        return DnsAnswer(resolver.text, (), Reason.TIMEOUT, f"no answer within {format_duration(timeout)}")


async def _query(
    name: str,
    rdtype: str,
    resolver: ResolverSpec,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    session: DnsSession | None,
) -> DnsAnswer:
    rdtype = rdtype.upper()
    try:
        qname = question_name(name, rdtype)
        dns.rdatatype.from_text(rdtype)
    except Exception as exc:
        return DnsAnswer(resolver.text, (), Reason.SETUP, f"cannot ask for {name!r} {rdtype}: {exc}")
    if resolver.kind == "system":
        return await _query_system(name, qname, rdtype, timeout, session)
    if session is not None and resolver.kind == "udp" and rdtype in dnswire.RDTYPES:
        plain = await _plain_query(session.channels, name, qname, rdtype, resolver, timeout)
        if plain is not None:
            return plain
    q = dns.message.make_query(qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
    try:
        async with asyncio.timeout(timeout):
            response, used_tcp = await exchange(q, resolver, timeout, ssl_context, session)
    except Exception as exc:
        return error_answer(resolver.text, exc, timeout)
    return from_response(resolver.text, response, qname, rdtype, used_tcp)


async def _plain_query(
    channels: dict[tuple[str, int], UdpChannel],
    name: str,
    qname: dns.name.Name,
    rdtype: str,
    resolver: ResolverSpec,
    timeout: float,
) -> DnsAnswer | None:
    """A or AAAA of a plain name over the engine's UDP socket, without dnspython (see ``dnswire``).

    None when the name is not plain. An answer that is not plain (a CNAME chain ...) is parsed
    by dnspython here; a truncated one is asked again over TCP, as ``exchange`` does.
    """
    assert resolver.host is not None and resolver.port is not None
    try:
        channel = UdpChannel.for_resolver(channels, resolver.host, resolver.port)
    except OSError as exc:
        return error_answer(resolver.text, exc, timeout)
    query = dnswire.plain_query(channel.free_id(), name, rdtype, EDNS_PAYLOAD)
    if query is None:
        return None

    def read(data: bytes) -> dnswire.PlainAnswer | dns.message.Message | None:
        answer = dnswire.read_answer(data, query)
        if answer is dnswire.FULL_PARSE:  # a CNAME chain, truncation ...
            return dns.message.from_wire(data, ignore_trailing=True, one_rr_per_rrset=False)
        return answer  # type: ignore[return-value]

    try:
        async with asyncio.timeout(timeout):
            answer = await channel.exchange(query.qid, query.wire, read)
            used_tcp = not isinstance(answer, dnswire.PlainAnswer) and bool(answer.flags & dns.flags.TC)
            if used_tcp:  # truncated: ask again over TCP, within the same deadline
                q = dns.message.make_query(qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
                answer = await dns.asyncquery.tcp(q, resolver.host, timeout=timeout, port=resolver.port)
    except Exception as exc:
        return error_answer(resolver.text, exc, timeout)
    if isinstance(answer, dnswire.PlainAnswer):
        return rcode_failure(resolver.text, answer.rcode, False) or records_answer(
            resolver.text, answer.records, (), rdtype, False
        )
    return from_response(resolver.text, answer, qname, rdtype, used_tcp)
