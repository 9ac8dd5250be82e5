"""One TLS check attempt: handshake, then trust, name, validity, OCSP and versions judged in turn."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import SSL

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.errmap import (
    LocalSetupError,
    verify_text,
)
from pytest_autoglm.probes.tcp import (
    describe_target,
    is_ip_literal,
)
from pytest_autoglm.probes.tls.chain import (
    cert_covers_name,
    day,
    details_of,
    hostname_text,
    idna,
    span,
    trust_problem,
    validity_problems,
    weak_key_problem,
)
from pytest_autoglm.probes.tls.expectation import VERSION_NUMBER, TlsExpectation, fail
from pytest_autoglm.probes.tls.handshake import ContextKey, context, file_key, handshake
from pytest_autoglm.probes.tls.ocsp import issuer_of, judge_staple
from pytest_autoglm.probes.tls.versions import PRECEDENCE, handshake_failed, version_problems


async def check_tls(
    host: str,
    address: str,
    expect: TlsExpectation,
    *,
    timeout: float,
    ca_bundle: Path | None = None,
    now: datetime | None = None,
) -> Verdict:
    """Judge ONE attempt of a ``tls`` expectation against one resolved ``address`` of ``host``.

    Everything (TCP connect, handshake, version probes) is bounded by ``timeout``
    in total. TCP connect failures are reported at layer ``tcp``; a silent or
    stalling server gives ``timeout`` at layer ``tls``. ``now`` (default: the
    clock) is the moment validity is judged at. Raises ``ValueError`` only for
    caller bugs: ``address`` not an IP literal, an invalid server name.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if not is_ip_literal(address.split("%", maxsplit=1)[0]):
        raise ValueError(f"not an IP address: {address!r} (resolve the name before probing)")
    port = expect.port
    where = describe_target(address, port, host)
    name = expect.sni or host  # the name the certificate must cover
    sni = None if is_ip_literal(name) else idna(name)
    if sni is not None and not sni.isascii():
        raise ValueError(f"not a valid TLS server name: {name!r}")
    base_details: dict[str, Any] = {"address": address, "port": port, "sni": sni}

    lowest = min(
        [VERSION_NUMBER["TLSv1.2"]]
        + [VERSION_NUMBER[v] for v in expect.accept]
        + ([VERSION_NUMBER[expect.min_version]] if expect.min_version else [])
    )
    try:
        key = ContextKey(
            expect.verify,
            file_key(ca_bundle, "ca_bundle") if expect.verify else None,
            file_key(expect.client_cert, "client_cert"),
            file_key(expect.client_key, "client_key"),
            lowest,
            SSL.TLS1_3_VERSION,
        )
        ctx = context(key)
    except LocalSetupError as exc:
        return fail(Layer.TLS, Reason.SETUP, where, f"cannot check: {exc}", address, base_details, transient=False)

    attempt = await handshake(address, port, ctx, key, sni, deadline, request_ocsp=True)
    if attempt.tcp is not None:
        reason, text = attempt.tcp
        return fail(Layer.TCP, reason, where, text, address, base_details)
    if attempt.timeout is not None:
        text = f"{attempt.timeout} within {format_duration(timeout)}"
        return fail(Layer.TLS, Reason.TIMEOUT, where, text, address, base_details)
    if attempt.conn is None:
        return await handshake_failed(attempt, expect, key, address, port, sni, deadline, where, base_details)

    details, leaf, sent = details_of(attempt.conn, address, port, sni, now)
    details["client_cert_requested"] = attempt.state.cert_requested
    if leaf is None:
        return fail(Layer.TLS, Reason.HANDSHAKE, where, "the server sent no certificate", address, details)
    problems: list[tuple[Reason, str]] = []

    # Trust and name.
    built: list[x509.Certificate] = []
    if expect.verify:
        built = list(attempt.conn.get_verified_chain(as_cryptography=True) or [])
        trust = trust_problem(attempt.state.verify_errors, sent, built)
        if trust is None and key.lowest < SSL.TLS1_2_VERSION:
            # Offering TLS 1.0/1.1 needs @SECLEVEL=0, which also stops OpenSSL refusing weak keys
            # in the chain: apply the default level's key rule ourselves so `accept` never weakens trust.
            trust = weak_key_problem(built or [leaf])
        if trust is not None:
            problems.append((Reason.UNTRUSTED, trust))
            details["verify_errors"] = [
                {"code": c, "depth": d, "text": verify_text(c)} for c, d in attempt.state.verify_errors
            ]
        if not cert_covers_name(leaf, name):
            problems.append((Reason.HOSTNAME, hostname_text(leaf, name, expect.sni is not None)))

    # Validity: the whole verified chain when verifying, else the leaf alone.
    problems.extend(validity_problems(built if expect.verify and built else [leaf], now))
    if expect.min_days_valid is not None and now <= leaf.not_valid_after_utc:
        left = leaf.not_valid_after_utc - now
        if left < timedelta(days=expect.min_days_valid):
            problems.append(
                (
                    Reason.EXPIRING,
                    (
                        f"certificate expires on {day(leaf.not_valid_after_utc)} ({span(left)} left,"
                        f" fewer than min_days_valid {expect.min_days_valid})"
                    ),
                )
            )

    # OCSP stapling.
    issuer = (built[1] if len(built) > 1 else None) or issuer_of(leaf, sent)
    staple = judge_staple(attempt.state.staple, leaf, issuer, now)
    details["ocsp_status"] = staple.status
    if staple.note and staple.status is not None:
        details["ocsp_note"] = staple.note
    if staple.status == "revoked":
        problems.append((Reason.REVOKED, staple.note))
    elif expect.ocsp_stapling == "required" and staple.status != "good":
        text = staple.note if staple.status is None else f"no usable OCSP staple: {staple.note}"
        problems.append((Reason.NO_OCSP_STAPLE, f"{text} (ocsp_stapling: required)"))

    # Protocol versions.
    problems.extend(await version_problems(expect, key, address, port, sni, deadline, details))

    if problems:
        problems.sort(key=lambda p: PRECEDENCE.index(p[0]))
        reason, text = problems[0]
        if len(problems) > 1:
            details["problems"] = [{"reason": r.value, "message": t} for r, t in problems[1:]]
        layer = Layer.TCP if reason in (Reason.REFUSED, Reason.FILTERED, Reason.UNREACHABLE) else Layer.TLS
        return fail(layer, reason, where, text, address, details)
    left = leaf.not_valid_after_utc - now
    summary = (
        f"{details['version']} {details['cipher']}; certificate valid until {day(leaf.not_valid_after_utc)}"
        f" ({span(left)} left)"
    )
    if staple.status == "good":
        summary += "; OCSP staple good"
    if attempt.state.cert_requested and expect.client_cert is None:
        # nginx's "ssl_verify_client on" completes the handshake and rejects at HTTP (400): say so here.
        summary += "; the server asked for a client certificate (none configured)"
    return Verdict.ok(f"{where}: {summary}", address=address, details=details)
