"""Judging a stapled OCSP response against the leaf and its issuer (nothing is fetched)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from pytest_autoglm.probes.tls.chain import day, iso, serial_number

_OCSP_CLOCK_SKEW: Final = timedelta(minutes=5)


@dataclass
class _StapleVerdict:
    status: str | None  # "good" | "revoked" | "unknown" | None (no staple)
    note: str = ""  # why a staple was not usable, or what it said
    usable: bool = False


def issuer_of(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject == cert.issuer and candidate is not cert:
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            return candidate
    return None


def _signature_ok(key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _key_hash(subject_cert: x509.Certificate, key_owner: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """The OCSP hash of ``key_owner``'s public key (computed by cryptography's request builder)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(subject_cert, key_owner, algorithm).build()
    return request.issuer_key_hash


def _responder_signed(resp: ocsp.OCSPResponse, leaf: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The response is signed by the issuer, or by a responder the issuer delegated (id-kp-OCSPSigning)."""
    candidates = [issuer, *resp.certificates]
    for responder in candidates:
        if resp.responder_name is not None and responder.subject != resp.responder_name:
            continue
        if resp.responder_key_hash is not None and _key_hash(leaf, responder, hashes.SHA1()) != resp.responder_key_hash:
            continue
        if responder is not issuer:
            try:
                responder.verify_directly_issued_by(issuer)
                eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, x509.ExtensionNotFound):
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                continue
        if _signature_ok(
            responder.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm
        ):
            return True
    return False


def judge_staple(
    staple: bytes | None, leaf: x509.Certificate, issuer: x509.Certificate | None, now: datetime
) -> _StapleVerdict:
    """What the stapled OCSP response says about ``leaf``, if it can be believed."""
    if not staple:
        return _StapleVerdict(None, "no OCSP staple in the handshake")
    try:
        resp = ocsp.load_der_ocsp_response(staple)
    except ValueError:
        return _StapleVerdict("unknown", "the stapled OCSP response cannot be parsed")
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return _StapleVerdict("unknown", f"the stapled OCSP response has status {resp.response_status.name.lower()}")
    single = next((r for r in resp.responses if r.serial_number == serial_number(leaf)), None)
    if single is None:
        return _StapleVerdict("unknown", "the stapled OCSP response is about another certificate (serial number)")
    if issuer is not None:
        if _key_hash(leaf, issuer, single.hash_algorithm) != single.issuer_key_hash:
            return _StapleVerdict("unknown", "the stapled OCSP response is about another issuer")
        if not _responder_signed(resp, leaf, issuer):
            return _StapleVerdict("unknown", "the stapled OCSP response's signature does not verify")
    if single.this_update_utc > now + _OCSP_CLOCK_SKEW:
        return _StapleVerdict(
            "unknown", f"the stapled OCSP response is from the future ({iso(single.this_update_utc)})"
        )
    if single.next_update_utc is not None and single.next_update_utc < now - _OCSP_CLOCK_SKEW:
        return _StapleVerdict(
            "unknown", f"the stapled OCSP response is stale (next update was {iso(single.next_update_utc)})"
        )
    status = single.certificate_status.name.lower()
    unverified = "" if issuer is not None else " (signature not checked: the issuer certificate is unknown)"
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        when = single.revocation_time_utc
        why = f", reason {single.revocation_reason.name}" if single.revocation_reason is not None else ""
        note = f"certificate revoked on {day(when) if when else '?'} per the stapled OCSP response{why}{unverified}"
        return _StapleVerdict("revoked", note, usable=True)
    if single.certificate_status == ocsp.OCSPCertStatus.UNKNOWN:
        return _StapleVerdict("unknown", "the stapled OCSP response says the certificate is unknown to the responder")
    return _StapleVerdict(status, f"OCSP staple: good{unverified}", usable=True)
