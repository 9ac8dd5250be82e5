"""The TCP layer: is a port open, refused, filtered or unreachable?

One probe is one non-blocking ``connect()`` on a fresh socket, bounded by an
``asyncio`` deadline. It is deliberately cheap (no streams, no transports, no
name resolution): a run checks thousands of ports and the timeouts overlap, so
the CPU per probe is what the engine competes on.

No pytest here, and nothing raises for a verdict: a refused or dropped port is a
:class:`Verdict`. Invalid input (not an IP literal, a bad ``expect``) raises
``ValueError`` because it is a bug of the caller, not a fact about the network.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import os
import select
import socket
from enum import StrEnum
from typing import Final

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.errmap import LOCAL_ERRNOS, connect_reason

__all__ = ["EXPECTATIONS", "PortState", "check_tcp", "describe_target", "expectation_reason", "observe_port"]


class PortState(StrEnum):
    """What one connection attempt observed."""

    OPEN = "open"  # the handshake completed
    REFUSED = "refused"  # RST: the host answers, nothing listens (or a reject rule)
    FILTERED = "filtered"  # no answer within the deadline (a firewall drops the SYN)
    UNREACHABLE = "unreachable"  # ICMP unreachable / no route / other socket error


#: For each expectation: the failure reason per observed state (None: the expectation holds).
_RULES: Final[dict[str, dict[PortState, Reason | None]]] = {
    "open": {
        PortState.OPEN: None,
        PortState.REFUSED: Reason.REFUSED,
        PortState.FILTERED: Reason.FILTERED,
        PortState.UNREACHABLE: Reason.UNREACHABLE,
    },
    "closed": {
        PortState.OPEN: Reason.UNEXPECTED_OPEN,
        PortState.REFUSED: None,
        PortState.FILTERED: None,
        PortState.UNREACHABLE: None,
    },
    "refused": {
        PortState.OPEN: Reason.UNEXPECTED_OPEN,
        PortState.REFUSED: None,
        PortState.FILTERED: Reason.FILTERED,
        PortState.UNREACHABLE: Reason.UNREACHABLE,
    },
    "filtered": {
        PortState.OPEN: Reason.UNEXPECTED_OPEN,
        PortState.REFUSED: Reason.UNEXPECTED_REFUSED,
        PortState.FILTERED: None,
        PortState.UNREACHABLE: Reason.UNREACHABLE,
    },
}

#: The expectations of an inventory's ``tcp:`` section.
EXPECTATIONS: Final = frozenset(_RULES)


class LocalSocketError(OSError):
    """The probe could not be carried out on this machine (out of fds, ports, buffers)."""


def describe_target(address: str, port: int, host: str | None = None) -> str:
    """``api.example.com (203.0.113.10) port 443``, or ``127.0.0.1 port 443`` without a distinct host."""
    if host and host != address:
        return f"{host} ({address}) port {port}"
    return f"{address} port {port}"


_IPV4_CHARACTERS = frozenset("0123456789.")


@functools.lru_cache(maxsize=65536)
def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``text`` as an IP address, or None for a name.

    Every check asks this of its host and addresses, several times: a name is told apart
    without raising (an IPv4 literal has only digits and dots; an IPv6 one has a colon),
    and answers are cached (5% of the engine's CPU on 10,000 checks went to ``ip_address``).
    """
    if ":" not in text and not _IPV4_CHARACTERS.issuperset(text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_ip_literal(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address rather than a name (no lookup, no SNI)."""
    return parse_ip(text) is not None


def _family(address: str) -> socket.AddressFamily:
    """The socket family of an IP literal; names are resolved by the caller, never here."""
    ip = parse_ip(address)
    if ip is None:
        raise ValueError(f"not an IP address: {address!r} (resolve the name before probing)")
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def _errno_text(exc: OSError) -> str:
    """``host unreachable (EHOSTUNREACH)`` - the strerror plus the symbolic name, which people search for."""
    code = exc.errno
    if code is None:
        return str(exc) or type(exc).__name__
    name = errno.errorcode.get(code, str(code))
    return f"{os.strerror(code).lower()} ({name})"


def _settled_state(sock: socket.socket) -> tuple[PortState, str] | None:
    """What the kernel knows of a connect whose deadline fired: None if it is still pending.

    A busy process can wake its event loop after the deadline although the handshake (or the
    RST) arrived in time; the socket itself tells, so a late wake-up never reads as silence.
    The socket's error must not have been read before (reading clears it): ``connect_socket``
    reads it once, here or in its writable callback, never both.
    """
    poller = select.poll()  # not select.select: descriptors above 1024 are common here
    poller.register(sock, select.POLLOUT)
    if not poller.poll(0):
        return None
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return _connect_outcome(error, sock) or (PortState.UNREACHABLE, _errno_text(OSError(error, os.strerror(error))))


def _connect_outcome(error: int, sock: socket.socket) -> tuple[PortState, str] | None:
    """The state a finished non-blocking connect's ``SO_ERROR`` stands for (None: none of ours)."""
    if error == 0:
        try:
            sock.getpeername()  # belt and braces: "open" only for a socket that has a peer
        except OSError:
            return None
        return PortState.OPEN, "open (handshake completed)"
    reason = connect_reason(error)
    if reason is Reason.REFUSED:
        return PortState.REFUSED, "connection refused (RST)"
    if reason is Reason.UNREACHABLE:
        return PortState.UNREACHABLE, _errno_text(OSError(error, os.strerror(error)))
    if reason is Reason.FILTERED:  # ETIMEDOUT: the kernel gave up on SYN retries first
        return PortState.FILTERED, f"no answer ({_errno_text(OSError(error, os.strerror(error)))})"
    return None


async def connect_socket(address: str, port: int, timeout: float) -> socket.socket | tuple[PortState, str]:
    """A connected non-blocking socket to ``address:port`` (the caller closes it), or the
    state the attempt found instead (refused, filtered, unreachable) and a short human text.

    Raises :class:`LocalSocketError` only for faults of this machine (EMFILE ...).

    The connect is driven by hand (not ``loop.sock_connect`` under a timeout): when the
    answer and the deadline are handled in one late loop iteration, asyncio's callback
    reads (and so clears) the socket's error, and the timer then cancels the wait: a
    refusal was lost and the socket, its error taken, read as open. Here one future gets
    whichever comes first, the socket's error or the deadline, and on the deadline the
    socket is asked once more.
    """
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range 1..65535")
    family = _family(address)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        if exc.errno in LOCAL_ERRNOS:
            raise LocalSocketError(exc.errno, f"cannot create a socket: {_errno_text(exc)}") from exc
        # e.g. EAFNOSUPPORT: this host has no IPv6 at all, so the address cannot be reached.
        return PortState.UNREACHABLE, f"cannot connect: {_errno_text(exc)}"
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    watching = False
    deadline_timer: asyncio.TimerHandle | None = None
    connected = False
    try:
        sock.setblocking(False)
        try:
            error = sock.connect_ex((address, port))
        except OSError as exc:  # e.g. a scoped IPv6 address whose interface does not exist
            return PortState.UNREACHABLE, f"cannot connect: {_errno_text(exc)}"
        if error == errno.EINPROGRESS:
            answer: asyncio.Future[int | None] = loop.create_future()

            def on_writable() -> None:
                loop.remove_writer(fd)
                if not answer.done():
                    answer.set_result(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))

            def on_deadline() -> None:
                if not answer.done():
                    answer.set_result(None)

            loop.add_writer(fd, on_writable)
            watching = True
            deadline_timer = loop.call_later(timeout, on_deadline)
            got = await answer
            outcome: tuple[PortState, str] | None
            if got is None:  # the deadline came first: the socket may still have answered in time
                outcome = _settled_state(sock) or (PortState.FILTERED, f"no answer within {format_duration(timeout)}")
            else:
                outcome = _connect_outcome(got, sock)
                error = got
        else:
            outcome = _connect_outcome(error, sock)
        if outcome is None:
            text = _errno_text(OSError(error, os.strerror(error)))
            if error in LOCAL_ERRNOS:
                raise LocalSocketError(error, f"cannot connect: {text}")
            return PortState.UNREACHABLE, text
        if outcome[0] is PortState.OPEN:
            connected = True
            return sock
        return outcome
    finally:
        if deadline_timer is not None:
            deadline_timer.cancel()
        if watching:
            loop.remove_writer(fd)
        if not connected:
            sock.close()


async def observe_port(address: str, port: int, timeout: float) -> tuple[PortState, str]:
    """Make one connection attempt to ``address:port`` and say what happened.

    Returns the state and a short human text (``connection refused (RST)``,
    ``no answer within 2s``). The socket is always closed; an open connection
    is closed at once, so the server sees a handshake and a FIN, nothing else.
    Raises :class:`LocalSocketError` only for faults of this machine (EMFILE ...).
    """
    result = await connect_socket(address, port, timeout)
    if isinstance(result, socket.socket):
        result.close()
        return PortState.OPEN, "open (handshake completed)"
    return result


def expectation_reason(expect: str, state: PortState) -> Reason | None:
    """The reason an observed state breaks ``expect`` (None: it holds); for probes that observe otherwise (proxies)."""
    rules = _RULES.get(expect)
    if rules is None:
        raise ValueError(f"unknown tcp expectation {expect!r}; expected one of {sorted(EXPECTATIONS)}")
    return rules[state]


async def check_tcp(address: str, port: int, expect: str, timeout: float, *, host: str | None = None) -> Verdict:
    """Judge ONE attempt of a ``tcp`` expectation (``open``, ``closed``, ``refused``, ``filtered``).

    Retrying is the engine's job: the verdict's ``transient`` flag (set from the
    reason) says whether another attempt could change the answer. A port that is
    open or answers RST against the expectation is a definite answer, not retried.
    A local fault (out of file descriptors ...) gives reason ``setup``.
    """
    rules = _RULES.get(expect)
    if rules is None:
        raise ValueError(f"unknown tcp expectation {expect!r}; expected one of {sorted(EXPECTATIONS)}")
    where = describe_target(address, port, host)
    try:
        state, text = await observe_port(address, port, timeout)
    except LocalSocketError as exc:
        return Verdict.fail(
            Layer.TCP,
            Reason.SETUP,
            f"{where}: could not probe: {exc.strerror}",
            address=address,
            details={"port": port},
        )
    details = {"state": state.value, "port": port}
    reason = rules[state]
    if reason is None:
        return Verdict.ok(f"{where}: {text}; expected {expect}", address=address, details=details)
    return Verdict.fail(Layer.TCP, reason, f"{where}: {text}; expected {expect}", address=address, details=details)
