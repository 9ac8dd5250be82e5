"""Revocation beyond stapling: ask the CA's OCSP responder and/or fetch its CRL, within the deadline.

Used only when the inventory asks (``revocation: {ocsp: true, crl: true}``) and the handshake
carried no usable staple. The URLs are the leaf's own (AIA "OCSP", CRL distribution points);
only ``http://`` is followed, as RFC 5280 and every CA publish them. An OCSP answer is judged
like a staple (signed by the issuer or its delegated responder, fresh, about this serial); a CRL
must be signed by the issuer and current. Both questions are asked at once.

Outcome: ``revoked`` when either says so; ``good`` when one vouches and none says revoked;
``unknown`` (no answer, a refusal, a bad signature, a stale list) becomes reason
``revocation_unknown``, a verdict of warning severity (warned, not failed, unless
``--autoglm-fail-on warning``), also listed in ``details["warnings"]``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from pytest_autoglm.probes.tls.chain import aia_url, day, serial_number
from pytest_autoglm.probes.tls.ocsp import judge_staple

_MAX_BYTES = 4 * 1024 * 1024
_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Answer:
    source: str  # "ocsp" | "crl"
    url: str | None
    status: str  # "good" | "revoked" | "unknown"
    note: str


def _ocsp_url(cert: x509.Certificate) -> str | None:
    return aia_url(cert, AuthorityInformationAccessOID.OCSP)


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        str(name.value)
        for point in points
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


async def _http(method: str, url: str, deadline: float, body: bytes | None = None) -> bytes | str:
    """The response body, or a text saying why there is none."""
    if not url.lower().startswith("http://"):
        return f"only http:// URLs are followed ({url})"
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return "no time left in the attempt"
    headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
    try:
        async with httpx.AsyncClient(timeout=remaining, follow_redirects=False, trust_env=False) as client:
            response = await client.request(method, url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{url}: {type(exc).__name__} {exc}".rstrip()
    if response.status_code != 200:
        return f"{url} answered HTTP {response.status_code}"
    return response.content[:_MAX_BYTES]


async def ask_ocsp(leaf: x509.Certificate, issuer: x509.Certificate, now: datetime, deadline: float) -> Answer:
    url = _ocsp_url(leaf)
    if url is None:
        return Answer("ocsp", None, "unknown", "the certificate names no OCSP responder")
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    body = await _http("POST", url, deadline, request.public_bytes(serialization.Encoding.DER))
    if isinstance(body, str):
        return Answer("ocsp", url, "unknown", f"no OCSP answer: {body}")
    verdict = judge_staple(body, leaf, issuer, now)
    note = verdict.note.replace("per the stapled OCSP response", f"per the OCSP responder {url}")
    note = note.replace("the stapled OCSP response", f"the answer of the OCSP responder {url}")
    note = note.replace("OCSP staple: good", f"OCSP responder {url}: good")
    status = verdict.status if verdict.status in ("good", "revoked") and verdict.usable else "unknown"
    return Answer("ocsp", url, status, note)


async def ask_crl(leaf: x509.Certificate, issuer: x509.Certificate, now: datetime, deadline: float) -> Answer:
    urls = _crl_urls(leaf)
    if not urls:
        return Answer("crl", None, "unknown", "the certificate names no CRL distribution point")
    url = urls[0]
    body = await _http("GET", url, deadline)
    if isinstance(body, str):
        return Answer("crl", url, "unknown", f"no CRL: {body}")
    try:
        crl = x509.load_pem_x509_crl(body) if body.lstrip().startswith(b"-----BEGIN") else x509.load_der_x509_crl(body)
    except ValueError:
        return Answer("crl", url, "unknown", f"{url} did not serve a CRL")
    try:
        signed = crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (InvalidSignature, TypeError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        return Answer("crl", url, "unknown", f"the CRL at {url} is not signed by the certificate's issuer")
    if crl.next_update_utc is not None and crl.next_update_utc < now - _CLOCK_SKEW:
        return Answer("crl", url, "unknown", f"the CRL at {url} is stale (next update was {day(crl.next_update_utc)})")
    entry = crl.get_revoked_certificate_by_serial_number(serial_number(leaf))
    if entry is not None:
        when = day(entry.revocation_date_utc)
        return Answer("crl", url, "revoked", f"certificate revoked on {when} per the CRL at {url}")
    return Answer("crl", url, "good", f"not on the CRL at {url}")


async def ask(
    leaf: x509.Certificate,
    issuer: x509.Certificate | None,
    now: datetime,
    deadline: float,
    *,
    use_ocsp: bool,
    use_crl: bool,
) -> list[Answer]:
    """Every revocation source asked, at once."""
    if issuer is None:
        return [Answer("ocsp" if use_ocsp else "crl", None, "unknown", "the issuer certificate is unknown")]
    questions = ([ask_ocsp(leaf, issuer, now, deadline)] if use_ocsp else []) + (
        [ask_crl(leaf, issuer, now, deadline)] if use_crl else []
    )
    return list(await asyncio.gather(*questions))
