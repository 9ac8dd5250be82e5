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
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.resolvers import (
    SUPPORTED_TYPES,
    ResolverSpec,
    normalize_rdata,
    parse_resolver,
    validate_record_value,
)
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes import dnswire
from pytest_autoglm.probes.errmap import lookup_reason
from pytest_autoglm.probes.tcp import parse_ip

MODES = ("equal", "present", "absent", "contains")
_MAX_CNAME_CHAIN = 16
_MAX_DOH_BODY = 65535  # a DNS message never exceeds this; a bigger body is a broken server
_EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 size: avoids fragmentation, rarely truncates
_NOT_RESOLVING = (Reason.TIMEOUT, Reason.SERVFAIL, Reason.REFUSED, Reason.SETUP)

SYSTEM = parse_resolver("system")


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


# --------------------------------------------------------------------------- helpers


def _fmt_set(values: Sequence[str]) -> str:
    return "{" + ", ".join(sorted(values)) + "}"


def _ip_literal(text: str) -> str | None:
    ip = parse_ip(text.strip("[]"))
    return None if ip is None else ip.compressed


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


def _qname(name: str, rdtype: str) -> dns.name.Name:
    """The name to ask for; a PTR question about an IP literal asks for its reverse name."""
    ip = _ip_literal(name)
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


def _from_response(
    resolver: str, response: dns.message.Message, qname: dns.name.Name, rdtype: str, used_tcp: bool
) -> DnsAnswer:
    failure = _rcode_failure(resolver, response.rcode(), used_tcp)
    if failure is not None:
        return failure
    records, chain = _extract(response, qname, rdtype)
    return _records_answer(resolver, records, chain, rdtype, used_tcp)


def _rcode_failure(resolver: str, rcode: int, used_tcp: bool) -> DnsAnswer | None:
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


def _records_answer(
    resolver: str, records: Sequence[str], chain: Sequence[str], rdtype: str, used_tcp: bool
) -> DnsAnswer:
    """The answer of a NOERROR response: its records, or NODATA (saying through which CNAMEs)."""
    if not records:
        via = f" (via CNAME {' -> '.join(chain)})" if chain else ""
        return DnsAnswer(resolver, (), Reason.NODATA, f"NODATA (the name exists, no {rdtype} record){via}", used_tcp)
    unique = tuple(sorted(set(records)))
    return DnsAnswer(resolver, unique, None, _fmt_set(unique), used_tcp)


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


def _error_answer(resolver: str, exc: BaseException, timeout: float) -> DnsAnswer:
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


# --------------------------------------------------------------------------- one query


class _UdpChannel:
    """One connected UDP socket per resolver and event loop; answers matched to questions by id.

    A socket per query costs more than the query itself when thousands are in flight. The socket
    is connected, so a closed resolver port shows as "connection refused" (ICMP) at once, and its
    receive buffer is large, so a burst of answers is not dropped by the kernel. It is read here
    rather than through an asyncio transport, which takes one datagram per loop iteration: in a
    burst, answers would then wait in the buffer behind every other ready callback until their
    questions timed out.
    """

    RECEIVE_BUFFER = 4 * 1024 * 1024
    #: Datagrams read per wake-up, so one busy resolver cannot starve the rest of the loop.
    READ_BATCH = 256

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.loop = loop
        self.closed = False
        self.pending: dict[int, tuple[Callable[[bytes], Any], asyncio.Future[Any]]] = {}
        loop.add_reader(sock.fileno(), self._drain)

    @classmethod
    def for_resolver(cls, channels: dict[tuple[str, int], _UdpChannel], host: str, port: int) -> _UdpChannel:
        key = (host, port)
        channel = channels.get(key)
        if channel is None or channel.closed:
            sock = socket.socket(dns.inet.af_for_address(host), socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cls.RECEIVE_BUFFER)
                sock.setblocking(False)
                sock.connect((host, port))
            except OSError:
                sock.close()
                raise
            channel = channels[key] = cls(sock, asyncio.get_running_loop())
        return channel

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self._fail_all(ConnectionResetError("resolver socket closed"))

    def free_id(self) -> int:
        """A query id not in flight on this socket (ids are random; a clash is rare)."""
        qid = dns.entropy.random_16()
        while qid in self.pending:
            qid = dns.entropy.random_16()
        return qid

    async def ask(self, q: dns.message.Message) -> dns.message.Message:
        """Send ``q``; its answer, parsed by dnspython (a datagram that does not answer it is ignored)."""
        if q.id in self.pending:
            q.id = self.free_id()

        def read(data: bytes) -> dns.message.Message | None:
            response = dns.message.from_wire(data, ignore_trailing=True, one_rr_per_rrset=False)
            return response if q.is_response(response) else None

        return await self.exchange(q.id, q.to_wire(), read)  # type: ignore[no-any-return]

    async def exchange(self, qid: int, wire: bytes, read: Callable[[bytes], Any]) -> Any:
        """Send ``wire`` (query id ``qid``); the first non-None ``read`` of a datagram with that id.

        ``read`` runs as the datagram arrives; an exception it raises is the question's error.
        """
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[qid] = (read, future)
        try:
            try:
                self.sock.send(wire)
            except BlockingIOError:  # the send buffer is full: wait for room
                await self.loop.sock_sendall(self.sock, wire)
            try:
                return await future  # the caller's asyncio.timeout bounds this
            except asyncio.CancelledError:
                if future.done() and not future.cancelled() and future.exception() is None:
                    # The answer came in time; the deadline fired only because a busy loop
                    # woke late. Keep the answer (asyncio.timeout then reports no timeout).
                    return future.result()
                raise
        finally:
            self.pending.pop(qid, None)

    def _drain(self) -> None:
        for _ in range(self.READ_BATCH):
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP port unreachable: every question in flight is refused
                self._fail_all(exc)
                continue
            self._answer(data)

    def _answer(self, data: bytes) -> None:
        if len(data) < 2:
            return
        entry = self.pending.get(int.from_bytes(data[:2], "big"))
        if entry is None or entry[1].done():
            return  # late or stray: the question is gone
        read, future = entry
        try:
            value = read(data)
        except Exception as exc:
            future.set_exception(exc)
            return
        if value is not None:
            future.set_result(value)

    def _fail_all(self, exc: BaseException) -> None:
        for _, future in list(self.pending.values()):
            if not future.done():
                future.set_exception(exc)


class DnsSession:
    """What a run's DNS queries share, owned by one engine and used on its event loop only.

    ``answers``: the same question to the same resolver is asked once, as a target's ``dns: A``
    item and the address lookup of its ``tcp`` items both ask it; answers that another attempt
    could change (timeout, SERVFAIL ...) are never reused. ``channels``: one UDP socket per
    resolver for the whole run. Without a session (``session=None``) every query stands alone.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str, str, int], asyncio.Future[DnsAnswer]] = {}
        self.channels: dict[tuple[str, int], _UdpChannel] = {}

    def close(self) -> None:
        """Close the UDP sockets (on the loop's thread); the session may be used again after."""
        for channel in self.channels.values():
            channel.close()
        self.channels.clear()


async def _exchange(
    q: dns.message.Message,
    spec: ResolverSpec,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    session: DnsSession | None,
) -> tuple[dns.message.Message, bool]:
    """Send ``q`` to one (non-system) resolver; return (response, used_tcp)."""
    assert spec.host is not None and spec.port is not None
    if spec.kind == "udp":
        if session is not None:  # inside an engine: one socket per resolver for the whole run
            channel = _UdpChannel.for_resolver(session.channels, spec.host, spec.port)
            response = await channel.ask(q)
            if response.flags & dns.flags.TC:  # truncated: ask again over TCP
                return await dns.asyncquery.tcp(q, spec.host, timeout=timeout, port=spec.port), True
            return response, False
        # A connected socket, so a closed port shows as "connection refused" (ICMP)
        # at once instead of a timeout.
        backend = dns.asyncbackend.get_backend("asyncio")
        af = dns.inet.af_for_address(spec.host)
        udp_sock = await backend.make_socket(af, socket.SOCK_DGRAM, 0, None, (spec.host, spec.port))
        async with udp_sock:
            return await dns.asyncquery.udp_with_fallback(
                q, spec.host, timeout=timeout, port=spec.port, udp_sock=udp_sock, backend=backend
            )
    if spec.kind == "tcp":
        return await dns.asyncquery.tcp(q, spec.host, timeout=timeout, port=spec.port), True
    if spec.kind == "tls":
        return await _dot(q, spec, timeout, ssl_context), True
    if spec.kind == "https":
        return await _doh(q, spec, timeout, ssl_context), True
    raise ValueError(f"unknown resolver kind {spec.kind!r}")


@functools.cache
def _default_context(protocol: str) -> ssl.SSLContext:
    """The system trust store, built once (in a worker thread: loading it would stall the loop)."""
    if protocol == "dot":
        return dns.query.make_ssl_context(True, True, ["dot"])
    return ssl.create_default_context()


async def _dot(
    q: dns.message.Message, spec: ResolverSpec, timeout: float, ssl_context: ssl.SSLContext | None
) -> dns.message.Message:
    """DNS over TLS (RFC 7858) on a connection we own, so it is closed when we are done.

    dnspython's own ``tls()`` only starts the TLS close; when the event loop ends
    right after (``asyncio.run`` per attempt) or the query is cancelled by our
    deadline, the socket would leak. Aborting the transport closes it at once.
    """
    assert spec.host is not None and spec.port is not None
    where = _ip_literal(spec.host) or await _first_address(spec.host)
    context = ssl_context if ssl_context is not None else await asyncio.to_thread(_default_context, "dot")
    backend = dns.asyncbackend.get_backend("asyncio")
    af = dns.inet.af_for_address(where)
    sock = await backend.make_socket(af, socket.SOCK_STREAM, 0, None, (where, spec.port), timeout, context, spec.host)
    try:
        return await dns.asyncquery.tls(q, where, timeout=timeout, port=spec.port, sock=sock, backend=backend)
    finally:
        sock.writer.transport.abort()
        await asyncio.sleep(0)  # let the loop run the close it scheduled


async def _first_address(host: str) -> str:
    """The first address of a named DoT server, through the system resolver."""
    infos = await getaddrinfo_in_thread(host)
    return str(infos[0][4][0])


def _doh_client(verify: ssl.SSLContext) -> httpx.AsyncClient:
    """Made in a worker thread: the first client (and first connection) import a lot, which would stall the loop."""
    importlib.import_module(ANYIO_ASYNCIO_BACKEND)

    return httpx.AsyncClient(verify=verify, trust_env=False)


async def _doh(
    q: dns.message.Message, spec: ResolverSpec, timeout: float, ssl_context: ssl.SSLContext | None
) -> dns.message.Message:
    """DNS over HTTPS (RFC 8484, POST) with httpx.

    dnspython 2.9's own DoH needs ``httpx2``, which this project does not
    depend on; httpx is already a dependency and the protocol is one POST.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    q.id = 0  # RFC 8484 4.1: id 0 for cache friendliness
    wire = q.to_wire()
    headers = {"content-type": "application/dns-message", "accept": "application/dns-message"}
    verify = ssl_context if ssl_context is not None else await asyncio.to_thread(_default_context, "doh")
    client = await asyncio.to_thread(_doh_client, verify)
    left = max(timeout - (loop.time() - started), 0.001)
    async with client:
        # httpx's own connect timeout fires before our deadline: cancelling httpx in
        # the middle of a TLS handshake leaks the socket, its own timeout does not.
        limits = httpx.Timeout(left, connect=left * 0.45)
        async with client.stream("POST", spec.url or "", content=wire, headers=headers, timeout=limits) as reply:
            if reply.status_code != 200:
                raise dns.exception.DNSException(f"DoH server answered HTTP {reply.status_code}")
            body = b""
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > _MAX_DOH_BODY:
                    raise dns.exception.DNSException("DoH reply larger than any DNS message")
    response = dns.message.from_wire(body)
    if not q.is_response(response):
        raise dns.exception.DNSException("DoH reply does not answer the question")
    return response


#: The one private module name this package relies on, as a documented, version-pinned exception
#: (anyio 4.x): importing anyio's asyncio backend here, in a worker thread, keeps httpcore from
#: importing it on the event loop at the first DoH connection (a stall of every probe in flight).
#: Nothing of it is called; tests/probes/test_private_apis.py fails loudly if anyio moves it.
ANYIO_ASYNCIO_BACKEND = "anyio._backends._asyncio"

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
    servers = system_nameservers()
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
        if answer.reason not in _NOT_RESOLVING:
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
            if done.cancelled() or done.exception() is not None or done.result().reason in _NOT_RESOLVING:
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
        qname = _qname(name, rdtype)
        dns.rdatatype.from_text(rdtype)
    except Exception as exc:
        return DnsAnswer(resolver.text, (), Reason.SETUP, f"cannot ask for {name!r} {rdtype}: {exc}")
    if resolver.kind == "system":
        return await _query_system(name, qname, rdtype, timeout, session)
    if session is not None and resolver.kind == "udp" and rdtype in dnswire.RDTYPES:
        plain = await _plain_query(session.channels, name, qname, rdtype, resolver, timeout)
        if plain is not None:
            return plain
    q = dns.message.make_query(qname, rdtype, use_edns=0, payload=_EDNS_PAYLOAD)
    try:
        async with asyncio.timeout(timeout):
            response, used_tcp = await _exchange(q, resolver, timeout, ssl_context, session)
    except Exception as exc:
        return _error_answer(resolver.text, exc, timeout)
    return _from_response(resolver.text, response, qname, rdtype, used_tcp)


async def _plain_query(
    channels: dict[tuple[str, int], _UdpChannel],
    name: str,
    qname: dns.name.Name,
    rdtype: str,
    resolver: ResolverSpec,
    timeout: float,
) -> DnsAnswer | None:
    """A or AAAA of a plain name over the engine's UDP socket, without dnspython (see ``dnswire``).

    None when the name is not plain. An answer that is not plain (a CNAME chain ...) is parsed
    by dnspython here; a truncated one is asked again over TCP, as ``_exchange`` does.
    """
    assert resolver.host is not None and resolver.port is not None
    try:
        channel = _UdpChannel.for_resolver(channels, resolver.host, resolver.port)
    except OSError as exc:
        return _error_answer(resolver.text, exc, timeout)
    query = dnswire.plain_query(channel.free_id(), name, rdtype, _EDNS_PAYLOAD)
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
                q = dns.message.make_query(qname, rdtype, use_edns=0, payload=_EDNS_PAYLOAD)
                answer = await dns.asyncquery.tcp(q, resolver.host, timeout=timeout, port=resolver.port)
    except Exception as exc:
        return _error_answer(resolver.text, exc, timeout)
    if isinstance(answer, dnswire.PlainAnswer):
        return _rcode_failure(resolver.text, answer.rcode, False) or _records_answer(
            resolver.text, answer.records, (), rdtype, False
        )
    return _from_response(resolver.text, answer, qname, rdtype, used_tcp)


# --------------------------------------------------------------------------- one check attempt


def _got(answer: DnsAnswer) -> str:
    return _fmt_set(answer.records) if answer.records else answer.message


def _expected(mode: str, rdtype: str, values: Sequence[str]) -> str:
    if mode == "equal":
        return _fmt_set(values)
    if mode == "contains":
        return f"at least {_fmt_set(values)}"
    if mode == "present":
        return f"any {rdtype} record"
    return f"no {rdtype} record"


def _judge(mode: str, expected: frozenset[str], answer: DnsAnswer) -> tuple[Reason, str] | None:
    """Why ``answer`` breaks the expectation (reason, what came), or None if it holds."""
    if answer.reason in _NOT_RESOLVING:
        return answer.reason, answer.message
    got = set(answer.records)
    if mode == "absent":
        return (Reason.UNEXPECTED, f"got {_fmt_set(answer.records)}") if got else None
    if answer.reason is not None:  # NXDOMAIN or NODATA where records were expected
        return answer.reason, answer.message
    if mode == "equal" and got != expected:
        return Reason.MISMATCH, f"got {_fmt_set(answer.records)}"
    if mode == "contains" and not expected <= got:
        missing = _fmt_set(sorted(expected - got))
        return Reason.MISMATCH, f"got {_fmt_set(answer.records)}, missing {missing}"
    return None


def _details(
    name: str, rdtype: str, mode: str, values: Sequence[str], answers: Sequence[DnsAnswer]
) -> dict[str, object]:
    return {
        "name": name,
        "type": rdtype,
        "mode": mode,
        "expected": sorted(values),
        "answers": {a.resolver: list(a.records) if a.reason is None else str(a.reason) for a in answers},
    }


async def check_dns(
    name: str,
    rdtype: str,
    mode: str,
    values: tuple[str, ...],
    resolvers: Sequence[ResolverSpec],
    *,
    consistent: bool,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
    session: DnsSession | None = None,
) -> Verdict:
    """One attempt of one DNS expectation against every resolver (queried concurrently).

    The first resolver (in inventory order) that breaks the expectation decides
    the verdict; with ``consistent`` and every resolver passing on its own, the
    answers must also agree.
    """
    rdtype = str(rdtype).upper()
    subject = f"{name} {rdtype}"
    if rdtype not in SUPPORTED_TYPES or mode not in MODES:
        return Verdict.fail(Layer.DNS, Reason.SETUP, f"{subject}: unsupported type or mode {mode!r}", transient=False)
    try:
        expected = frozenset(validate_record_value(rdtype, v) for v in values)
    except ValueError as exc:
        return Verdict.fail(Layer.DNS, Reason.SETUP, f"{subject}: {exc}", transient=False)
    if mode == "equal" and not expected:
        mode = "absent"  # an empty answer set is what "no record" means
    resolvers = list(resolvers) or [SYSTEM]

    if len(resolvers) == 1:  # the usual case: no gather, no extra task
        answers = [await query(name, rdtype, resolvers[0], timeout, ssl_context=ssl_context, session=session)]
    else:
        answers = await asyncio.gather(
            *(query(name, rdtype, r, timeout, ssl_context=ssl_context, session=session) for r in resolvers)
        )
    details = _details(name, rdtype, mode, sorted(expected), answers)
    want = _expected(mode, rdtype, sorted(expected))

    for answer in answers:
        broken = _judge(mode, expected, answer)
        if broken is not None:
            reason, got = broken
            got = got if got.startswith("got ") else f"got {got}"
            return Verdict.fail(
                Layer.DNS, reason, f"{subject} via {answer.resolver}: {got}, expected {want}", details=details
            )

    if consistent and len(answers) > 1:
        views = {a.resolver: (a.records if a.records else str(a.reason)) for a in answers}
        if len(set(views.values())) > 1:
            said = "; ".join(f"{a.resolver} gave {_got(a)}" for a in answers)
            return Verdict.fail(
                Layer.DNS, Reason.INCONSISTENT, f"{subject}: resolvers disagree: {said}", details=details
            )

    via = ", ".join(a.resolver for a in answers)
    return Verdict.ok(f"{subject} via {via}: {_got(answers[0])}", details=details)


# --------------------------------------------------------------------------- addresses of a host


def _order_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
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


async def _getaddrinfo(host: str, timeout: float) -> tuple[tuple[str, ...], Verdict | None]:
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
    addresses = [a for a in addresses if _ip_literal(a.split("%")[0]) is not None]  # skip odd families
    if not addresses:
        return (), Verdict.fail(Layer.DNS, Reason.NODATA, f"{host} via system: the name has no address")
    return _order_addresses_keep_scope(addresses), None


def _order_addresses_keep_scope(addresses: Sequence[str]) -> tuple[str, ...]:
    """Like ``_order_addresses``, keeping a link-local scope (``fe80::1%eth0``) intact."""
    scoped = {a for a in addresses if "%" in a}
    plain = _order_addresses([a for a in addresses if "%" not in a])
    return plain + tuple(sorted(scoped))


async def resolve_addresses(
    host: str,
    resolvers: Sequence[ResolverSpec],
    timeout: float,
    *,
    ssl_context: ssl.SSLContext | None = None,
    session: DnsSession | None = None,
) -> tuple[tuple[str, ...], Verdict | None]:
    """The addresses (IPv4 then IPv6) a TCP/TLS check of ``host`` is made against.

    Returns (addresses, None) on success, or ((), a failed DNS verdict). An IP
    literal is its own address. With ``system`` first (or no resolver) the
    system's getaddrinfo is used, so /etc/hosts and ``localhost`` work as the
    user's other tools see them; otherwise A and AAAA are asked of the first
    resolver.
    """
    literal = _ip_literal(host)
    if literal is not None:
        return (literal,), None
    first = resolvers[0] if resolvers else SYSTEM
    if first.kind == "system":
        return await _getaddrinfo(host, timeout)

    # Both questions at once, with one task rather than gather's two.
    asking_aaaa = asyncio.ensure_future(query(host, "AAAA", first, timeout, ssl_context=ssl_context, session=session))
    try:
        a = await query(host, "A", first, timeout, ssl_context=ssl_context, session=session)
        aaaa = await asking_aaaa
    finally:
        if not asking_aaaa.done():  # cancelled (or failed) before the AAAA answer came
            asking_aaaa.cancel()
    addresses = [*a.records, *aaaa.records]
    if addresses:
        return _order_addresses(addresses), None
    reasons = [a.reason, aaaa.reason]
    failure = next((r for r in _NOT_RESOLVING if r in reasons), None)  # a retry may help: say so first
    reason: Reason
    if failure is not None:
        bad = a if a.reason is failure else aaaa
        kind = "A" if bad is a else "AAAA"
        reason, what = failure, f"{kind}: {bad.message}"
    elif reasons == [Reason.NXDOMAIN, Reason.NXDOMAIN]:
        reason, what = Reason.NXDOMAIN, "NXDOMAIN (the name does not exist)"
    else:
        reason, what = Reason.NODATA, "no A or AAAA record"
    return (), Verdict.fail(Layer.DNS, reason, f"{host} via {first.text}: {what}")
