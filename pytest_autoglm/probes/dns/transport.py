"""The wire to one resolver: UDP (one socket per resolver in a :class:`DnsSession`), TCP, DoT and DoH."""

from __future__ import annotations

import asyncio
import functools
import importlib
import socket
import ssl
from collections.abc import Callable
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

from pytest_autoglm.core.resolvers import (
    ResolverSpec,
)
from pytest_autoglm.probes.dns.answers import DnsAnswer, ip_literal
from pytest_autoglm.probes.dns.system import getaddrinfo_in_thread

_MAX_DOH_BODY = 65535  # a DNS message never exceeds this; a bigger body is a broken server


class UdpChannel:
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
    def for_resolver(cls, channels: dict[tuple[str, int], UdpChannel], host: str, port: int) -> UdpChannel:
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
        self.channels: dict[tuple[str, int], UdpChannel] = {}

    def close(self) -> None:
        """Close the UDP sockets (on the loop's thread); the session may be used again after."""
        for channel in self.channels.values():
            channel.close()
        self.channels.clear()


async def exchange(
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
            channel = UdpChannel.for_resolver(session.channels, spec.host, spec.port)
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
    where = ip_literal(spec.host) or await _first_address(spec.host)
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
