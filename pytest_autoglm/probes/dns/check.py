"""One DNS check attempt against every resolver, and the addresses a TCP/TLS/HTTP check connects to."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.resolvers import (
    SUPPORTED_TYPES,
    ResolverSpec,
    parse_resolver,
    validate_record_value,
)
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.dns.answers import NOT_RESOLVING, DnsAnswer, fmt_set, ip_literal
from pytest_autoglm.probes.dns.query import query
from pytest_autoglm.probes.dns.system import getaddrinfo, order_addresses
from pytest_autoglm.probes.dns.transport import DnsSession

MODES = ("equal", "present", "absent", "contains")


SYSTEM = parse_resolver("system")


def _got(answer: DnsAnswer) -> str:
    return fmt_set(answer.records) if answer.records else answer.message


def _expected(mode: str, rdtype: str, values: Sequence[str]) -> str:
    if mode == "equal":
        return fmt_set(values)
    if mode == "contains":
        return f"at least {fmt_set(values)}"
    if mode == "present":
        return f"any {rdtype} record"
    return f"no {rdtype} record"


def _judge(mode: str, expected: frozenset[str], answer: DnsAnswer) -> tuple[Reason, str] | None:
    """Why ``answer`` breaks the expectation (reason, what came), or None if it holds."""
    if answer.reason in NOT_RESOLVING:
        return answer.reason, answer.message
    got = set(answer.records)
    if mode == "absent":
        return (Reason.UNEXPECTED, f"got {fmt_set(answer.records)}") if got else None
    if answer.reason is not None:  # NXDOMAIN or NODATA where records were expected
        return answer.reason, answer.message
    if mode == "equal" and got != expected:
        return Reason.MISMATCH, f"got {fmt_set(answer.records)}"
    if mode == "contains" and not expected <= got:
        missing = fmt_set(sorted(expected - got))
        return Reason.MISMATCH, f"got {fmt_set(answer.records)}, missing {missing}"
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
    literal = ip_literal(host)
    if literal is not None:
        return (literal,), None
    first = resolvers[0] if resolvers else SYSTEM
    if first.kind == "system":
        return await getaddrinfo(host, timeout)

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
        return order_addresses(addresses), None
    reasons = [a.reason, aaaa.reason]
    failure = next((r for r in NOT_RESOLVING if r in reasons), None)  # a retry may help: say so first
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
