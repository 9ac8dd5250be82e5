"""One TLS check attempt: handshake, then trust, name, validity, OCSP and versions judged in turn."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import SSL

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.errmap import (
    TIME_ERRORS,
    LocalSetupError,
    verify_text,
)
from pytest_autoglm.probes.tcp import (
    describe_target,
    is_ip_literal,
)
from pytest_autoglm.probes.tls.aia import fetch_issuer
from pytest_autoglm.probes.tls.chain import (
    cert_covers_name,
    day,
    details_of,
    hostname_text,
    idna,
    iso,
    leaf_sans,
    load_der,
    span,
    trust_problem,
    trust_reason,
    validity_problems,
    verified_chain,
    weak_key_problem,
)
from pytest_autoglm.probes.tls.enumerate import enumerate_server
from pytest_autoglm.probes.tls.expectation import VERSION_NUMBER, TlsExpectation, fail
from pytest_autoglm.probes.tls.handshake import Attempt, ContextKey, context, file_key, handshake
from pytest_autoglm.probes.tls.ocsp import issuer_of, judge_staple
from pytest_autoglm.probes.tls.oversized import OPENSSL_MAX_CERT_LIST, read_chain
from pytest_autoglm.probes.tls.oversized import details_of as oversized_details
from pytest_autoglm.probes.tls.oversized import verify as verify_oversized
from pytest_autoglm.probes.tls.policy import chain_keys, judge
from pytest_autoglm.probes.tls.revocation import ask as ask_revocation
from pytest_autoglm.probes.tls.versions import PRECEDENCE, handshake_failed, version_problems


@dataclass(frozen=True, slots=True)
class _Where:
    """Whom one attempt talks to, and by when."""

    address: str
    port: int
    name: str  # the name the certificate must cover
    sni: str | None
    text: str  # ``api.example.com (203.0.113.10) port 443`` for messages
    deadline: float  # loop time
    now: datetime  # the moment validity is judged at


Problems = list[tuple[Reason, str]]


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
    at = _where(host, address, expect, timeout, now)
    details: dict[str, Any] = {"address": address, "port": at.port, "sni": at.sni}
    try:
        key = _context_key(expect, ca_bundle)
        ctx = context(key)
    except LocalSetupError as exc:
        return fail(Layer.TLS, Reason.SETUP, at.text, f"cannot check: {exc}", address, details, transient=False)

    attempt = await handshake(address, at.port, ctx, key, at.sni, at.deadline, request_ocsp=True)
    if attempt.tcp is not None:
        reason, text = attempt.tcp
        return fail(Layer.TCP, reason, at.text, text, address, details)
    if attempt.timeout is not None:
        text = f"{attempt.timeout} within {format_duration(timeout)}"
        return fail(Layer.TLS, Reason.TIMEOUT, at.text, text, address, details)
    if attempt.conn is None and attempt.kind == "oversized":
        return await _judge_oversized(attempt, expect, key, at)
    if attempt.conn is None:
        failed = await handshake_failed(attempt, expect, key, address, at.port, at.sni, at.deadline, at.text, details)
        return await _policy_after_failure(failed, expect, at, details)
    return await _judge(attempt, attempt.conn, expect, key, at)


def _where(host: str, address: str, expect: TlsExpectation, timeout: float, now: datetime | None) -> _Where:
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    deadline = asyncio.get_running_loop().time() + timeout
    if not is_ip_literal(address.split("%", maxsplit=1)[0]):
        raise ValueError(f"not an IP address: {address!r} (resolve the name before probing)")
    name = expect.sni or host
    sni = None if is_ip_literal(name) else idna(name)
    if sni is not None and not sni.isascii():
        raise ValueError(f"not a valid TLS server name: {name!r}")
    return _Where(address, expect.port, name, sni, describe_target(address, expect.port, host), deadline, now)


def _context_key(expect: TlsExpectation, ca_bundle: Path | None) -> ContextKey:
    """The settings of the main handshake's context; raises LocalSetupError for an unusable file."""
    lowest = min(
        [VERSION_NUMBER["TLSv1.2"]]
        + [VERSION_NUMBER[v] for v in expect.accept]
        + ([VERSION_NUMBER[expect.min_version]] if expect.min_version else [])
    )
    return ContextKey(
        expect.verify,
        file_key(ca_bundle, "ca_bundle") if expect.verify else None,
        file_key(expect.client_cert, "client_cert"),
        file_key(expect.client_key, "client_key"),
        lowest,
        SSL.TLS1_3_VERSION,
    )


async def _judge(
    attempt: Attempt, conn: SSL.Connection, expect: TlsExpectation, key: ContextKey, at: _Where
) -> Verdict:
    """A completed handshake: every problem found, the first by precedence is the verdict."""
    try:
        details, leaf, sent = details_of(conn, at.address, at.port, at.sni, at.now)
    except ValueError as exc:  # a certificate cryptography refuses to load
        details = {"address": at.address, "port": at.port, "sni": at.sni}
        text = f"the server sent a certificate that cannot be parsed ({exc})"
        return fail(Layer.TLS, Reason.HANDSHAKE, at.text, text, at.address, details, transient=False)
    details["client_cert_requested"] = attempt.state.cert_requested
    if leaf is None:
        return fail(Layer.TLS, Reason.HANDSHAKE, at.text, "the server sent no certificate", at.address, details)
    built = verified_chain(conn) if expect.verify else []
    problems: Problems = []
    errors = attempt.state.verify_errors
    if expect.verify and expect.aia_fetch and errors:
        errors, built = await _aia_complete(key, leaf, sent, errors, built, at, details)
    if expect.verify:
        problems += _trust_and_name(errors, expect, key, leaf, sent, built, at.name, details)
    # Validity: the whole verified chain when verifying, else the leaf alone.
    problems += validity_problems(built if expect.verify and built else [leaf], at.now)
    problems += _expiring(expect, leaf, at.now)
    staple_problems, staple_good = _staple(attempt, expect, leaf, sent, built, at.now, details)
    problems += staple_problems
    if (expect.revocation_ocsp or expect.revocation_crl) and details.get("ocsp_status") not in ("good", "revoked"):
        problems += await _revocation(expect, leaf, sent, built, at, details)
    problems += await _versions_and_policy(expect, key, at, sent, details)
    if problems:
        return _worst(problems, at, details)
    summary = _summary(attempt, expect, leaf, at.now, details, staple_good)
    if unknown := [w for w in details.get("warnings", []) if w["reason"] == Reason.REVOCATION_UNKNOWN.value]:
        # Not a failure of the certificate, but not vouched for either: a warning whatever the check's severity.
        text = f"{unknown[0]['message']} ({summary})"
        return fail(Layer.TLS, Reason.REVOCATION_UNKNOWN, at.text, text, at.address, details, severity="warning")
    warnings = "".join(f"; warning ({w['reason']}): {w['message']}" for w in details.get("warnings", []))
    return Verdict.ok(f"{at.text}: {summary}{warnings}", address=at.address, details=details)


def _trust_and_name(
    verify_errors: list[tuple[int, int]],
    expect: TlsExpectation,
    key: ContextKey,
    leaf: x509.Certificate,
    sent: list[x509.Certificate],
    built: list[x509.Certificate],
    name: str,
    details: dict[str, Any],
) -> Problems:
    problems: Problems = []
    trust = trust_problem(verify_errors, sent, built)
    if trust is None and key.lowest < SSL.TLS1_2_VERSION:
        # Offering TLS 1.0/1.1 needs @SECLEVEL=0, which also stops OpenSSL refusing weak keys
        # in the chain: apply the default level's key rule ourselves so `accept` never weakens trust.
        trust = weak_key_problem(built or [leaf])
    if trust is not None:
        reason = _chain_reason(verify_errors, trust) if verify_errors else Reason.WEAK_KEY  # our key rule
        problems.append((reason, trust))
        details["verify_errors"] = [{"code": c, "depth": d, "text": verify_text(c)} for c, d in verify_errors]
    if not cert_covers_name(leaf, name):
        problems.append((Reason.HOSTNAME, hostname_text(leaf, name, expect.sni is not None)))
    return problems


async def _judge_oversized(attempt: Attempt, expect: TlsExpectation, key: ContextKey, at: _Where) -> Verdict:
    """OpenSSL refused the chain for its size: read it from the wire and judge it (``oversized``)."""
    hello = await read_chain(at.address, at.port, at.sni, at.deadline)
    details = oversized_details(hello, at.address, at.port, at.sni)
    if not hello.certificates:
        why = hello.error or (f"alert {hello.alert}" if hello.alert is not None else "no certificate in the answer")
        text = f"{attempt.error}; reading it from a TLS 1.2 handshake failed too ({why}: TLS 1.3 only?)"
        return fail(Layer.TLS, Reason.HANDSHAKE, at.text, text, at.address, details, transient=False)
    try:
        sent = [load_der(der) for der in hello.certificates]
        errors, built = verify_oversized(key, sent) if expect.verify else ([], [])
    except LocalSetupError as exc:
        return fail(Layer.TLS, Reason.SETUP, at.text, f"cannot check: {exc}", at.address, details, transient=False)
    except ValueError as exc:
        text = f"the server sent a certificate that cannot be parsed ({exc})"
        return fail(Layer.TLS, Reason.HANDSHAKE, at.text, text, at.address, details, transient=False)
    leaf = sent[0]
    details.update(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        sans_count=len(leaf_sans(leaf)),
        not_after=iso(leaf.not_valid_after_utc),
        chain=[{"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string()} for c in sent],
    )
    problems: Problems = []
    if expect.verify:
        problems += _trust_and_name(errors, expect, key, leaf, sent, built, at.name, details)
    problems += validity_problems(built if expect.verify and built else [leaf], at.now)
    problems += _expiring(expect, leaf, at.now)
    if expect.ocsp_stapling == "required":
        problems.append((Reason.NO_OCSP_STAPLE, "no OCSP staple could be read (the chain was read without OpenSSL)"))
    if expect.policy is not None or expect.enumerate:  # what the server accepts is asked on the wire anyway
        accepted = await enumerate_server(at.address, at.port, at.sni, at.deadline)
        details["accepted"] = accepted.as_details()
        details["chain_keys"] = chain_keys(sent)
        if expect.policy is not None:
            problems += judge(expect.policy, accepted, sent)
    if problems:
        return _worst(problems, at, details)
    left = leaf.not_valid_after_utc - at.now
    text = (
        f"{details['version']} {details['cipher']}; certificate valid until {day(leaf.not_valid_after_utc)}"
        f" ({span(left)} left); its {hello.certificate_bytes // 1024} KiB certificate list exceeds OpenSSL's"
        f" {OPENSSL_MAX_CERT_LIST // 1024} KiB limit and was read from the wire"
    )
    return Verdict.ok(f"{at.text}: {text}", address=at.address, details=details)


async def _versions_and_policy(
    expect: TlsExpectation, key: ContextKey, at: _Where, sent: list[x509.Certificate], details: dict[str, Any]
) -> Problems:
    """Version probes and, with a policy (or ``enumerate``), everything the server accepts: at once."""
    versions = version_problems(expect, key, at.address, at.port, at.sni, at.deadline, details)
    if expect.policy is None and not expect.enumerate:
        return await versions
    problems, accepted = await asyncio.gather(versions, enumerate_server(at.address, at.port, at.sni, at.deadline))
    details["accepted"] = accepted.as_details()
    details["chain_keys"] = chain_keys(sent)
    if accepted.errors:
        problems.append((Reason.TIMEOUT, f"enumeration incomplete: {'; '.join(accepted.errors[:3])}"))
    if expect.policy is not None:
        problems += judge(expect.policy, accepted, sent)
    return problems


async def _policy_after_failure(
    failed: Verdict, expect: TlsExpectation, at: _Where, details: dict[str, Any]
) -> Verdict:
    """Our handshake failed (OpenSSL here refuses e.g. a 1024-bit DH group): what the server
    accepts is still known from the wire, and a policy it breaks is the better verdict."""
    if (expect.policy is None and not expect.enumerate) or at.deadline <= asyncio.get_running_loop().time():
        return failed
    accepted = await enumerate_server(at.address, at.port, at.sni, at.deadline)
    details["accepted"] = accepted.as_details()
    problems = judge(expect.policy, accepted, []) if expect.policy is not None else []
    if not problems:
        return failed
    details["handshake_error"] = failed.message
    problems.append((Reason.HANDSHAKE, failed.message.removeprefix(f"{at.text}: ")))
    problems.sort(key=lambda p: PRECEDENCE.index(p[0]) if p[0] in PRECEDENCE else len(PRECEDENCE))
    reason, text = problems[0]
    details["problems"] = [{"reason": r.value, "message": t} for r, t in problems[1:]]
    return fail(Layer.TLS, reason, at.text, text, at.address, details)


async def _aia_complete(
    key: ContextKey,
    leaf: x509.Certificate,
    sent: list[x509.Certificate],
    errors: list[tuple[int, int]],
    built: list[x509.Certificate],
    at: _Where,
    details: dict[str, Any],
) -> tuple[list[tuple[int, int]], list[x509.Certificate]]:
    """``aia_fetch``: an incomplete chain completed from the leaf's AIA URL, verified again (and said so)."""
    if trust_reason(trust_problem(errors, sent, built) or "") != Reason.INCOMPLETE_CHAIN:
        return errors, built
    fetched = await fetch_issuer(leaf, at.deadline)
    if fetched is None:
        return errors, built
    details["aia_fetch"] = {"url": fetched.url, "note": fetched.note}
    if fetched.certificate is None:
        return errors, built
    new_errors, new_built = verify_oversized(key, [leaf, fetched.certificate, *sent[1:]])
    if new_errors:
        details["aia_fetch"]["note"] += "; the chain still does not verify with it"
        return errors, built
    details["aia_fetch"]["note"] += "; the chain verifies with it (the server should send it: Firefox does not fetch)"
    return [], new_built


async def _revocation(
    expect: TlsExpectation,
    leaf: x509.Certificate,
    sent: list[x509.Certificate],
    built: list[x509.Certificate],
    at: _Where,
    details: dict[str, Any],
) -> Problems:
    """No usable staple: ask the OCSP responder and/or the CRL. No answer is not a problem here but a
    ``details["warnings"]`` entry, which :func:`_judge` turns into a warning-severity verdict."""
    issuer = (built[1] if len(built) > 1 else None) or issuer_of(leaf, sent)
    answers = await ask_revocation(
        leaf, issuer, at.now, at.deadline, use_ocsp=expect.revocation_ocsp, use_crl=expect.revocation_crl
    )
    details["revocation"] = [{"source": a.source, "url": a.url, "status": a.status, "note": a.note} for a in answers]
    revoked = [a for a in answers if a.status == "revoked"]
    if revoked:
        return [(Reason.REVOKED, revoked[0].note)]
    if not any(a.status == "good" for a in answers):
        text = "no revocation answer: " + "; ".join(a.note for a in answers)
        details.setdefault("warnings", []).append({"reason": Reason.REVOCATION_UNKNOWN.value, "message": text})
    return []


#: OpenSSL's security-level refusals (EE/CA key too small, CA digest too weak): the chain is sound
#: but weak, as Chrome's ERR_CERT_WEAK_KEY / ERR_CERT_WEAK_SIGNATURE_ALGORITHM say.
_WEAK_KEY_CODES = frozenset({66, 67})
_WEAK_DIGEST_CODE = 68


def _chain_reason(verify_errors: list[tuple[int, int]], trust: str) -> Reason:
    codes = {code for code, _ in verify_errors if code not in TIME_ERRORS}
    if codes and codes <= _WEAK_KEY_CODES | {_WEAK_DIGEST_CODE}:
        return Reason.WEAK_SIGNATURE if _WEAK_DIGEST_CODE in codes else Reason.WEAK_KEY
    return trust_reason(trust)


def _expiring(expect: TlsExpectation, leaf: x509.Certificate, now: datetime) -> Problems:
    if expect.min_days_valid is None or now > leaf.not_valid_after_utc:
        return []
    left = leaf.not_valid_after_utc - now
    if left >= timedelta(days=expect.min_days_valid):
        return []
    text = (
        f"certificate expires on {day(leaf.not_valid_after_utc)} ({span(left)} left,"
        f" fewer than min_days_valid {expect.min_days_valid})"
    )
    return [(Reason.EXPIRING, text)]


def _staple(
    attempt: Attempt,
    expect: TlsExpectation,
    leaf: x509.Certificate,
    sent: list[x509.Certificate],
    built: list[x509.Certificate],
    now: datetime,
    details: dict[str, Any],
) -> tuple[Problems, bool]:
    """The OCSP staple's problems, and whether it was a good one."""
    issuer = (built[1] if len(built) > 1 else None) or issuer_of(leaf, sent)
    staple = judge_staple(attempt.state.staple, leaf, issuer, now)
    details["ocsp_status"] = staple.status
    if staple.note and staple.status is not None:
        details["ocsp_note"] = staple.note
    if staple.status == "revoked":
        return [(Reason.REVOKED, staple.note)], False
    if expect.ocsp_stapling == "required" and staple.status != "good":
        text = staple.note if staple.status is None else f"no usable OCSP staple: {staple.note}"
        return [(Reason.NO_OCSP_STAPLE, f"{text} (ocsp_stapling: required)")], False
    return [], staple.status == "good"


def _worst(problems: Problems, at: _Where, details: dict[str, Any]) -> Verdict:
    """The verdict of the first problem by precedence; the others go to ``details["problems"]``."""
    problems.sort(key=lambda p: PRECEDENCE.index(p[0]))
    reason, text = problems[0]
    if len(problems) > 1:
        details["problems"] = [{"reason": r.value, "message": t} for r, t in problems[1:]]
    layer = Layer.TCP if reason in (Reason.REFUSED, Reason.FILTERED, Reason.UNREACHABLE) else Layer.TLS
    return fail(layer, reason, at.text, text, at.address, details)


def _summary(
    attempt: Attempt,
    expect: TlsExpectation,
    leaf: x509.Certificate,
    now: datetime,
    details: dict[str, Any],
    staple_good: bool,
) -> str:
    left = leaf.not_valid_after_utc - now
    summary = (
        f"{details['version']} {details['cipher']}; certificate valid until {day(leaf.not_valid_after_utc)}"
        f" ({span(left)} left)"
    )
    if staple_good:
        summary += "; OCSP staple good"
    if "aia_fetch" in details and "verifies" in details["aia_fetch"]["note"]:
        summary += f"; intermediate missing from the server's chain, fetched from {details['aia_fetch']['url']}"
    if attempt.state.cert_requested and expect.client_cert is None:
        # nginx's "ssl_verify_client on" completes the handshake and rejects at HTTP (400): say so here.
        summary += "; the server asked for a client certificate (none configured)"
    return summary
