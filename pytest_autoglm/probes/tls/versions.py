"""Protocol versions and the precedence of problems: extra handshakes pinned to one version each."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from OpenSSL import SSL

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.errmap import handshake_transient
from pytest_autoglm.probes.tls.expectation import TLS_VERSIONS, VERSION_NUMBER, TlsExpectation, fail
from pytest_autoglm.probes.tls.handshake import Attempt, ContextKey, context, handshake

#: The precedence of certificate and protocol failures (module docstring).
PRECEDENCE: Final[tuple[Reason, ...]] = (
    Reason.UNTRUSTED,
    Reason.INCOMPLETE_CHAIN,
    Reason.HOSTNAME,
    Reason.REVOKED,
    Reason.EXPIRED,
    Reason.NOT_YET_VALID,
    Reason.EXPIRING,
    Reason.NO_OCSP_STAPLE,
    Reason.OLD_PROTOCOL,
    Reason.WEAK_KEY,
    Reason.WEAK_SIGNATURE,
    Reason.WEAK_KEY_EXCHANGE,
    Reason.WEAK_CIPHER,
    Reason.PROTOCOL_UNSUPPORTED,
    Reason.TIMEOUT,  # a version probe that got no answer
    Reason.REFUSED,  # a version probe whose TCP connect failed
    Reason.FILTERED,
    Reason.UNREACHABLE,
)


async def _probe_version(
    address: str, port: int, version: str, base: ContextKey, sni: str | None, deadline: float
) -> tuple[str, str, Reason | None]:
    """Whether the server completes a handshake pinned to ``version``: (state, text, TCP reason).

    state: ``accepted`` | ``refused`` | ``timeout`` | ``no connection`` (then the TCP reason is set).
    """
    number = VERSION_NUMBER[version]
    key = ContextKey(False, None, base.client_cert, base.client_key, number, number)
    attempt = await handshake(address, port, context(key), key, sni, deadline, request_ocsp=False)
    if attempt.conn is not None:
        return "accepted", "", None
    if attempt.tcp is not None:
        return "no connection", attempt.tcp[1], attempt.tcp[0]
    if attempt.timeout is not None:
        return "timeout", attempt.timeout, None
    return "refused", attempt.error or "handshake failed", None


async def version_problems(
    expect: TlsExpectation,
    key: ContextKey,
    address: str,
    port: int,
    sni: str | None,
    deadline: float,
    details: dict[str, Any],
) -> list[tuple[Reason, str]]:
    """Extra handshakes pinned to single versions, run at once, within the same deadline."""
    negotiated = str(details.get("version"))
    below = [
        v for v in TLS_VERSIONS if expect.min_version and TLS_VERSIONS.index(v) < TLS_VERSIONS.index(expect.min_version)
    ]
    wanted = list(dict.fromkeys([*below, *expect.accept]))
    if not wanted:
        return []
    states: dict[str, tuple[str, str, Reason | None]] = {}
    if negotiated in wanted:
        states[negotiated] = ("accepted", "", None)
    to_probe = [v for v in wanted if v not in states]
    results = await asyncio.gather(*(_probe_version(address, port, v, key, sni, deadline) for v in to_probe))
    states.update(zip(to_probe, results, strict=True))
    details["versions"] = {v: states[v][0] for v in TLS_VERSIONS if v in states}
    problems: list[tuple[Reason, str]] = []
    old = [v for v in below if states[v][0] == "accepted"]
    if old:
        problems.append((Reason.OLD_PROTOCOL, f"accepts {' and '.join(old)}, below min_version {expect.min_version}"))
    refused = [v for v in expect.accept if states[v][0] == "refused"]
    if refused:
        why = "; ".join(f"{v}: {states[v][1]}" for v in refused)
        problems.append((Reason.PROTOCOL_UNSUPPORTED, f"refuses {' and '.join(refused)} (listed in accept): {why}"))
    for version, (state, text, tcp_reason) in states.items():
        if state == "timeout" and version in below:
            # Silence to an old ClientHello is a refusal (some servers and firewalls drop them):
            # the main handshake worked, so the server is up and the old version did not get through.
            details["versions"][version] = "refused (no answer)"
        elif state == "timeout":
            problems.append((Reason.TIMEOUT, f"no answer to a {version} handshake: {text}"))
        elif tcp_reason is not None:
            problems.append((tcp_reason, f"while probing {version}: {text}"))
    return problems


async def handshake_failed(
    attempt: Attempt,
    expect: TlsExpectation,
    key: ContextKey,
    address: str,
    port: int,
    sni: str | None,
    deadline: float,
    where: str,
    details: dict[str, Any],
) -> Verdict:
    """The main handshake failed. If for want of a common version, find out which old one the server speaks."""
    text = attempt.error or "the handshake failed"
    if attempt.kind == "version" and key.lowest > SSL.TLS1_VERSION:
        older = [v for v in TLS_VERSIONS if VERSION_NUMBER[v] < key.lowest]
        results = await asyncio.gather(*(_probe_version(address, port, v, key, sni, deadline) for v in older))
        spoken = [v for v, result in zip(older, results, strict=True) if result[0] == "accepted"]
        details["versions"] = {v: result[0] for v, result in zip(older, results, strict=True)}
        if spoken and expect.min_version is not None:
            return fail(
                Layer.TLS,
                Reason.OLD_PROTOCOL,
                where,
                f"accepts only {' and '.join(spoken)}, below min_version {expect.min_version}; {text}",
                address,
                details,
            )
        if spoken:
            text += f"; it speaks only {' and '.join(spoken)} (allow it with accept or min_version)"
        return fail(Layer.TLS, Reason.HANDSHAKE, where, text, address, details, transient=False)
    state = attempt.state
    definite = attempt.kind != "other" or not handshake_transient(
        text, alert=state.alert_received is not None, eof=state.eof
    )
    return fail(Layer.TLS, Reason.HANDSHAKE, where, text, address, details, transient=not definite)
