"""The TCP probe against real sockets: loopback for open/refused, a netns lab for the rest.

No mocks: every state comes from a real peer, and each expectation x state case
first checks (positive control) that the peer really is in that state, so a
pass cannot come from a broken fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.tcp import PortState, check_tcp, is_ip_literal, observe_port, parse_ip
from tests.fakes.netns import STANDARD_PORTS as LAB
from tests.fakes.netns import NetnsLab
from tests.fakes.tcp_servers import HAS_IPV6_LOOPBACK, free_port, refused_port, silent_listener, tcp_listener
from tests.timing import Seconds, Stopwatch

R = Reason
netns = pytest.mark.netns
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6_LOOPBACK, reason="no IPv6 loopback (::1) on this machine")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def timed(coro: Any) -> tuple[Any, Seconds]:
    """The result and its duration; upper bounds on it leave out our own waits for a CPU (tests/timing.py)."""
    with Stopwatch() as watch:
        result = run(coro)
    return result, watch.elapsed


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- loopback: open and refused ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def test_open_port_on_loopback(host: str) -> None:
    with tcp_listener(host) as listener:
        assert run(observe_port(host, listener.port, 2)) == (PortState.OPEN, "open (handshake completed)")
        verdict = run(check_tcp(host, listener.port, "open", 2))
    assert verdict == Verdict.ok(
        f"{host} port {listener.port}: open (handshake completed); expected open",
        address=host,
        details={"state": "open", "port": listener.port},
    )


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def test_refused_port_on_loopback(host: str) -> None:
    port = free_port(host)
    (state, text), elapsed = timed(observe_port(host, port, 2))
    assert (state, text) == (PortState.REFUSED, "connection refused (RST)")
    assert elapsed < 0.5  # an RST answers at once; nothing waited for the timeout


def test_refused_message_and_fields() -> None:
    with refused_port() as port:
        verdict = run(check_tcp("127.0.0.1", port, "open", 2))
    assert not verdict.passed
    assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.TCP, Reason.REFUSED, True)
    assert verdict.message == f"127.0.0.1 port {port}: connection refused (RST); expected open"
    assert verdict.address == "127.0.0.1"
    assert verdict.details == {"state": "refused", "port": port}


def test_host_is_named_before_the_address() -> None:
    with refused_port() as port:
        named = run(check_tcp("127.0.0.1", port, "open", 1, host="api.example.com"))
        same = run(check_tcp("127.0.0.1", port, "open", 1, host="127.0.0.1"))
    assert named.message.startswith(f"api.example.com (127.0.0.1) port {port}: ")
    assert same.message.startswith(f"127.0.0.1 port {port}: ")


def test_listener_that_never_speaks_is_open_and_the_probe_closes_at_once() -> None:
    with silent_listener() as listener:
        (state, _), elapsed = timed(observe_port("127.0.0.1", listener.port, 2))
        deadline = time.monotonic() + 2
        while listener.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert state is PortState.OPEN
    assert elapsed < 0.5  # a handshake is enough; the probe never waits for a banner
    assert listener.accepted == 1


def test_sockets_are_always_closed() -> None:
    before = open_fds()
    with tcp_listener() as listener, refused_port() as closed:

        async def many() -> list[tuple[PortState, str]]:
            probes = [observe_port("127.0.0.1", listener.port, 2) for _ in range(100)]
            probes += [observe_port("127.0.0.1", closed, 2) for _ in range(100)]
            return await asyncio.gather(*probes)

        states = [state for state, _ in run(many())]
        after = open_fds()
    assert states.count(PortState.OPEN) == 100 and states.count(PortState.REFUSED) == 100
    assert after - before <= 3  # the listener and the held port, nothing per probe


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: check_tcp("127.0.0.1", 80, "opened", 1), "unknown tcp expectation"),
        (lambda: check_tcp("localhost", 80, "open", 1), "not an IP address"),
        (lambda: observe_port("127.0.0.1", 0, 1), "out of range"),
        (lambda: observe_port("127.0.0.1", 65536, 1), "out of range"),
    ],
)
def test_caller_bugs_raise_instead_of_giving_a_verdict(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run(call())


@pytest.mark.parametrize(
    ("seconds", "text"), [(2, "2s"), (0.25, "250ms"), (1.5, "1.5s"), (0.0015, "1.5ms"), (30, "30s"), (0.5, "500ms")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# -- the netns lab: filtered, unreachable, reset ------------------------------------------------


@netns
def test_filtered_port_waits_out_the_timeout_only(netns_lab: NetnsLab) -> None:
    verdict, elapsed = timed(check_tcp(netns_lab.address, LAB.dropped, "open", 0.5, host="api.example.com"))
    assert 0.45 <= elapsed < 1.5
    assert (verdict.passed, verdict.layer, verdict.reason, verdict.transient) == (False, Layer.TCP, R.FILTERED, True)
    where = f"api.example.com ({netns_lab.address}) port {LAB.dropped}"
    assert verdict.message == f"{where}: no answer within 500ms; expected open"
    assert verdict.details == {"state": "filtered", "port": LAB.dropped}


@netns
def test_icmp_host_unreachable(netns_lab: NetnsLab) -> None:
    (state, text), elapsed = timed(observe_port(netns_lab.address, LAB.unreachable, 2))
    assert state is PortState.UNREACHABLE
    assert "EHOSTUNREACH" in text
    assert elapsed < 1
    verdict = run(check_tcp(netns_lab.address, LAB.unreachable, "open", 2))
    assert (verdict.reason, verdict.transient) == (Reason.UNREACHABLE, True)
    assert verdict.message == f"{netns_lab.address} port {LAB.unreachable}: {text}; expected open"


@netns
def test_unreachable_stays_unreachable_in_a_burst(netns_lab: NetnsLab) -> None:
    """The lab lifts the kernel's ICMP rate limit; otherwise most of these would look filtered."""

    async def burst() -> list[tuple[PortState, str]]:
        return await asyncio.gather(*(observe_port(netns_lab.address, LAB.unreachable, 1) for _ in range(100)))

    results, elapsed = timed(burst())
    assert [state for state, _ in results] == [PortState.UNREACHABLE] * 100
    assert elapsed < 1


@netns
@pytest.mark.parametrize("port", [LAB.reset, LAB.refused], ids=["reject-with-tcp-reset", "nothing-listens"])
def test_reset_is_refused(netns_lab: NetnsLab, port: int) -> None:
    (state, _), elapsed = timed(observe_port(netns_lab.address, port, 2))
    assert state is PortState.REFUSED
    assert elapsed < 1


@netns
@pytest.mark.parametrize("port", [LAB.open, LAB.silent], ids=["accepts-and-closes", "never-speaks"])
def test_open_in_the_lab(netns_lab: NetnsLab, port: int) -> None:
    assert run(observe_port(netns_lab.address, port, 2))[0] is PortState.OPEN


@netns
def test_lab_has_no_default_route(netns_lab: NetnsLab) -> None:
    routes = subprocess.run(
        ["ip", "-n", netns_lab.name, "route", "show", "default"], capture_output=True, text=True, timeout=10, check=True
    )
    assert routes.stdout.strip() == ""
    assert netns_lab.address.startswith("198.18.") or netns_lab.address.startswith("198.19.")


@netns
def test_200_concurrent_dropped_probes_overlap(netns_lab: NetnsLab) -> None:
    ports = list(LAB.dropped_range)[:200]
    before_fds, before_cpu = open_fds(), time.process_time()

    async def many() -> list[tuple[PortState, str]]:
        return await asyncio.gather(*(observe_port(netns_lab.address, p, 1.0) for p in ports))

    results, elapsed = timed(many())
    cpu = time.process_time() - before_cpu
    assert [state for state, _ in results] == [PortState.FILTERED] * 200
    assert elapsed < 2.0, f"200 probes with a 1s timeout took {elapsed:.2f}s: they did not run concurrently"
    assert cpu < 2.0, f"200 probes used {cpu:.2f}s of CPU"  # ~0.25 ms each is typical; this only catches spinning
    assert open_fds() - before_fds <= 0


@netns
def test_lab_recovers_from_a_stale_namespace_and_cleans_up(netns_lab: NetnsLab) -> None:
    name = f"agl-stale-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=10, check=False)  # a "crashed run"
    with NetnsLab(name=name, dropped=[7000], reset=[7001]) as lab:
        assert lab.address != netns_lab.address  # a /30 of its own: labs do not clash
        assert run(observe_port(lab.address, 7001, 1))[0] is PortState.REFUSED
        lab.set_ports(dropped=[7001], reset=[7000])
        assert run(observe_port(lab.address, 7000, 1))[0] is PortState.REFUSED
        assert run(observe_port(lab.address, 7001, 0.2))[0] is PortState.FILTERED
        host_if = lab.host_if
    netns_list = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True, timeout=10).stdout
    assert name not in netns_list.split()
    assert subprocess.run(["ip", "link", "show", host_if], check=False, capture_output=True, timeout=10).returncode != 0


# -- every expectation x every state -------------------------------------------------------------

MATRIX: list[tuple[str, PortState, Reason | None]] = [
    ("open", PortState.OPEN, None),
    ("open", PortState.REFUSED, R.REFUSED),
    ("open", PortState.FILTERED, R.FILTERED),
    ("open", PortState.UNREACHABLE, R.UNREACHABLE),
    ("closed", PortState.OPEN, R.UNEXPECTED_OPEN),
    ("closed", PortState.REFUSED, None),
    ("closed", PortState.FILTERED, None),
    ("closed", PortState.UNREACHABLE, None),
    ("refused", PortState.OPEN, R.UNEXPECTED_OPEN),
    ("refused", PortState.REFUSED, None),
    ("refused", PortState.FILTERED, R.FILTERED),
    ("refused", PortState.UNREACHABLE, R.UNREACHABLE),
    ("filtered", PortState.OPEN, R.UNEXPECTED_OPEN),
    ("filtered", PortState.REFUSED, R.UNEXPECTED_REFUSED),
    ("filtered", PortState.FILTERED, None),
    ("filtered", PortState.UNREACHABLE, R.UNREACHABLE),
]
#: Reasons another attempt could change; a port open or answering RST against the expectation is definite.
TRANSIENT = {
    R.REFUSED: True,
    R.FILTERED: True,
    R.UNREACHABLE: True,
    R.UNEXPECTED_OPEN: False,
    R.UNEXPECTED_REFUSED: False,
}
NEEDS_LAB = {PortState.FILTERED, PortState.UNREACHABLE}  # loopback cannot produce these


@contextlib.contextmanager
def endpoint(state: PortState, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A real peer in ``state``: loopback for open/refused, the netns lab for the others."""
    if state is PortState.OPEN:
        with tcp_listener() as listener:
            yield listener.address
    elif state is PortState.REFUSED:
        with refused_port() as port:
            yield ("127.0.0.1", port)
    else:
        lab: NetnsLab = request.getfixturevalue("netns_lab")
        yield (lab.address, LAB.dropped if state is PortState.FILTERED else LAB.unreachable)


@pytest.mark.parametrize(
    ("expect", "state", "reason"),
    [pytest.param(*c, marks=[netns] if c[1] in NEEDS_LAB else [], id=f"{c[0]}-vs-{c[1]}") for c in MATRIX],
)
def test_expectation_against_state(
    expect: str, state: PortState, reason: Reason | None, request: pytest.FixtureRequest
) -> None:
    timeout = 0.3  # only the filtered cases wait for it
    with endpoint(state, request) as (address, port):
        assert run(observe_port(address, port, timeout))[0] is state  # positive control: the peer is what we think
        verdict = run(check_tcp(address, port, expect, timeout, host="svc.test"))
    assert verdict.address == address
    assert verdict.details == {"state": str(state), "port": port}
    assert verdict.message.startswith(f"svc.test ({address}) port {port}: ")
    assert verdict.message.endswith(f"; expected {expect}")
    if reason is None:
        assert verdict.passed, verdict.message
        assert (verdict.layer, verdict.reason, verdict.transient) == (None, None, False)
    else:
        assert not verdict.passed
        assert (verdict.layer, verdict.reason, verdict.transient) == (Layer.TCP, reason, TRANSIENT[reason])


def test_every_expectation_has_a_passing_state() -> None:
    """Each expectation is satisfiable (a control for the matrix above, not a copy of the rules)."""
    for expect in ("open", "closed", "refused", "filtered"):
        assert any(e == expect and r is None for e, _, r in MATRIX), expect


def test_a_late_loop_does_not_turn_an_answer_into_silence() -> None:
    """The loop is stuck past the probe's deadline while the kernel completes the handshake:
    the verdict must follow the socket (open), not the late timer (filtered)."""
    import time

    from pytest_autoglm.probes.tcp import observe_port

    with tcp_listener() as listener:

        async def main() -> tuple[PortState, str]:
            probe = asyncio.create_task(observe_port("127.0.0.1", listener.port, 0.1))
            await asyncio.sleep(0)  # the probe starts its connect
            time.sleep(0.3)  # a busy process: nothing runs on the loop meanwhile
            return await probe

        state, _ = asyncio.run(main())
    assert state is PortState.OPEN


def test_a_late_loop_does_not_turn_a_refusal_into_an_open_port() -> None:
    """The RST and the deadline are handled in the same late loop iteration: the refusal
    must win. (With asyncio's sock_connect, its callback read the socket's error first, the
    timer then cancelled the wait, and the socket, with its error already taken, read as open:
    39 of 500 refused ports passed as open in a 5000-target run.)"""
    import time

    from pytest_autoglm.probes.tcp import observe_port

    refused = free_port()

    async def main() -> tuple[PortState, str]:
        probe = asyncio.create_task(observe_port("127.0.0.1", refused, 0.1))
        await asyncio.sleep(0)  # the probe starts its connect
        time.sleep(0.3)  # the RST is in, the deadline has passed, and nothing ran meanwhile
        return await probe

    for _ in range(5):
        state, text = asyncio.run(main())
        assert state is PortState.REFUSED, text


@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=6).map(lambda ip: f"{ip}%eth0"),
        st.from_regex(r"[0-9a-fA-F:.%]{0,45}", fullmatch=True),
        st.text(max_size=40),
    )
)
def test_parse_ip_agrees_with_ipaddress(text):
    """The fast path (a name is told apart without parsing) never changes the answer."""
    try:
        expected = ipaddress.ip_address(text)
    except ValueError:
        expected = None
    assert parse_ip(text) == expected
    assert is_ip_literal(text) is (expected is not None)
