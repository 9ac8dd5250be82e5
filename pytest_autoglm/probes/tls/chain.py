"""Facts about the certificate chain: names covered, trust problems in words, validity, key strength."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, SignatureAlgorithmOID
from OpenSSL import SSL, crypto

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.errmap import (
    CHAIN_ERRORS,
    TIME_ERRORS,
    V_DEPTH_ZERO_SELF_SIGNED,
    V_SELF_SIGNED_IN_CHAIN,
    V_UNABLE_TO_GET_ISSUER_CERT,
    V_UNABLE_TO_GET_ISSUER_LOCALLY,
    V_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    verify_text,
)
from pytest_autoglm.probes.tcp import (
    is_ip_literal,
    parse_ip,
)


def idna(name: str) -> str:
    """The A-label form of a DNS name, lower case, without a trailing dot."""
    name = name.rstrip(".").lower()
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        try:
            return name.encode("idna").decode("ascii")
        except UnicodeError:
            return name  # not a valid IDN: it can match nothing, and check_tls refuses it as an SNI
    return name


def _dns_pattern_matches(pattern: str, name: str) -> bool:
    """RFC 6125 as browsers apply it: ``*`` only as the whole left-most label, matching exactly one label."""
    pattern = pattern.rstrip(".").lower()
    if "*" not in pattern:
        return pattern == name
    labels = pattern.split(".")
    if labels[0] != "*" or any("*" in label for label in labels[1:]) or len(labels) < 3:
        return False  # partial (f*.x), deeper (a.*.x) or too broad (*.com) wildcards never match
    name_labels = name.split(".")
    return len(name_labels) == len(labels) and bool(name_labels[0]) and name_labels[1:] == labels[1:]


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a malformed extension: treat as absent rather than crash
        return None


def cert_covers_name(cert: x509.Certificate, name: str) -> bool:
    """Whether ``cert`` is valid for ``name`` (a DNS name or an IP literal).

    IP literals match IP SANs only; DNS names match SAN DNS names only. The subject
    CN is never consulted: RFC 9525 section 6.3 and the CA/Browser Forum baseline
    requirements removed that fallback, and Chrome (since 58) and Firefox reject it,
    so a certificate without a SAN covers no name at all.
    """
    san = _san(cert)
    if san is None:
        return False
    ip = parse_ip(name)
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    wanted = idna(name)
    return any(_dns_pattern_matches(p, wanted) for p in san.get_values_for_type(x509.DNSName))


def _sans(cert: x509.Certificate) -> list[str]:
    san = _san(cert)
    if san is None:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def load_der(der: bytes) -> x509.Certificate:
    """A DER certificate, loaded without cryptography's deprecation warning for a negative or zero serial.

    RFC 5280 forbids such serials but old CAs issued them and browsers accept them; the
    certificate is judged like any other (its serial shown with :func:`serial_text`). Raises
    ``ValueError`` if a future cryptography refuses it: the caller reports that, never crashes.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)


def _from_openssl(certs: Sequence[crypto.X509] | None) -> list[x509.Certificate]:
    return [load_der(crypto.dump_certificate(crypto.FILETYPE_ASN1, c)) for c in certs or []]


def peer_certificates(conn: SSL.Connection) -> tuple[x509.Certificate | None, list[x509.Certificate]]:
    """The leaf and the chain the server sent (leaf first)."""
    leaf = conn.get_peer_certificate()
    sent = _from_openssl(conn.get_peer_cert_chain())
    return (_from_openssl([leaf])[0] if leaf is not None else None), sent


def verified_chain(conn: SSL.Connection) -> list[x509.Certificate]:
    return _from_openssl(conn.get_verified_chain())


def serial_number(cert: x509.Certificate) -> int:
    """``cert.serial_number`` without the deprecation warning cryptography gives for a negative one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return cert.serial_number


def serial_text(serial: int) -> str:
    """A serial number in hex; a negative one (RFC 5280 forbids it, old CAs made them) says so."""
    if serial <= 0:
        return f"-{-serial:x} (negative: RFC 5280 forbids it)" if serial else "0 (zero: RFC 5280 forbids it)"
    return f"{serial:x}"


def leaf_sans(cert: x509.Certificate) -> list[str]:
    """Every DNS and IP SAN of ``cert``, as text."""
    return _sans(cert)


def _short_name(name: x509.Name) -> str:
    """``CN`` if there is one, else the full RFC 4514 string: what people recognise in a message."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def short_name(name: x509.Name) -> str:
    """The CN of ``name`` (or its RFC 4514 string): what people recognise in a message."""
    return _short_name(name)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def span(delta: timedelta) -> str:
    """``5 days``, ``3 hours``, ``1 minute``: how far a date is, in the largest whole unit."""
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


def _days_left(cert: x509.Certificate, now: datetime) -> int:
    return math.floor((cert.not_valid_after_utc - now) / timedelta(days=1))


def _key_info(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    """Key type, size in bits, and curve name (EC only)."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return type(key).__name__, None, None


#: Signature algorithms by their RFC names, from cryptography's public OID constants (its own
#: name table is private); anything else is shown by its dotted OID.
_SIGNATURE_NAMES: Final[dict[x509.ObjectIdentifier, str]] = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "dsa-with-sha1",
    SignatureAlgorithmOID.DSA_WITH_SHA224: "dsa-with-sha224",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa-with-sha256",
    SignatureAlgorithmOID.ED25519: "ed25519",
    SignatureAlgorithmOID.ED448: "ed448",
}


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return _SIGNATURE_NAMES.get(oid, oid.dotted_string)


def aia_url(cert: x509.Certificate, method: x509.ObjectIdentifier) -> str | None:
    """The certificate's Authority Information Access URL for ``method`` (CA issuers or OCSP), if any."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for desc in aia:
        if desc.access_method == method and isinstance(desc.access_location, x509.UniformResourceIdentifier):
            return str(desc.access_location.value)
    return None


def _aia_issuer_url(cert: x509.Certificate) -> str | None:
    return aia_url(cert, AuthorityInformationAccessOID.CA_ISSUERS)


def key_info(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    """Key type, size in bits, and curve name (EC only)."""
    return _key_info(cert)


def signature_algorithm(cert: x509.Certificate) -> str:
    return _signature_algorithm(cert)


def aia_issuer_url(cert: x509.Certificate) -> str | None:
    """The leaf's "CA Issuers" URL (Authority Information Access), if it names one."""
    return _aia_issuer_url(cert)


def trust_reason(text: str) -> Reason:
    """``incomplete_chain`` when the problem is surely the server's missing intermediate, else ``untrusted``."""
    return Reason.INCOMPLETE_CHAIN if text.startswith("incomplete chain") else Reason.UNTRUSTED


def trust_problem(
    errors: Sequence[tuple[int, int]], sent: Sequence[x509.Certificate], built: Sequence[x509.Certificate]
) -> str | None:
    """Why the chain does not lead to an anchor, in the words an engineer acts on (None: it does)."""
    errors = [(code, depth) for code, depth in errors if code not in TIME_ERRORS]
    if not errors:
        return None
    code, depth = next(((c, d) for c, d in errors if c in CHAIN_ERRORS), errors[0])
    chain = list(built) or list(sent)
    leaf = chain[0] if chain else None
    if code == V_DEPTH_ZERO_SELF_SIGNED and leaf is not None:
        return f"self-signed certificate '{_short_name(leaf.subject)}' (not a trust anchor; add it to ca_bundle to trust it)"
    if code == V_SELF_SIGNED_IN_CHAIN and chain:
        root = chain[min(depth, len(chain) - 1)]
        return f"unknown CA: the chain ends in the self-signed root '{_short_name(root.subject)}', which is not a trust anchor"
    if (
        code in (V_UNABLE_TO_GET_ISSUER_LOCALLY, V_UNABLE_TO_GET_ISSUER_CERT, V_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
        and chain
    ):
        top = chain[min(depth, len(chain) - 1)]
        issuer = _short_name(top.issuer)
        if top is not chain[0] or depth > 0:
            return f"unknown CA: '{issuer}', the issuer of intermediate '{_short_name(top.subject)}', is not a trust anchor"
        if len(sent) > 1:
            return (
                f"incomplete chain: the certificates the server sent do not include the leaf's issuer '{issuer}'"
                " (wrong intermediate configured?)"
            )
        url = _aia_issuer_url(top)
        if url is not None:
            return f"incomplete chain: the server did not send the intermediate certificate '{issuer}' (published at {url})"
        return (
            f"unknown issuer '{issuer}': it is not a trust anchor and the server sent no intermediate certificate"
            " (an unknown CA, or an incomplete chain with the intermediate missing)"
        )
    return depth_text(code, depth, chain)


#: Depth-0 texts of the security-level codes (OpenSSL's name "a CA certificate" whatever the depth).
_CA_WORDED: Final = {
    66: "the server's certificate's key is too weak",
    67: "the server's certificate's key is too weak",
    68: "the server's certificate's signature algorithm is too weak",
}
_V_INVALID_PURPOSE: Final = 26


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def depth_text(code: int, depth: int, chain: Sequence[x509.Certificate]) -> str:
    """A verification error in words that say WHICH certificate: depth 0 is the server's own."""
    if depth == 0 and chain and _is_ca(chain[0]) and code in (_V_INVALID_PURPOSE, 24, 37):
        return (
            f"the server's certificate '{_short_name(chain[0].subject)}' is a CA certificate (basicConstraints CA:TRUE),"
            " not a server certificate: the server is configured with a CA's certificate instead of its own"
        )
    if depth == 0 and code in _CA_WORDED:
        return _CA_WORDED[code]
    if depth == 0:
        return f"the server's certificate: {verify_text(code)}"
    if 0 < depth < len(chain):
        return f"{verify_text(code)} (CA certificate '{_short_name(chain[depth].subject)}', depth {depth})"
    return f"{verify_text(code)} (depth {depth})"


#: OpenSSL's default security level here (2): RSA/DSA keys of fewer bits, EC keys of fewer bits, are refused.
_MIN_RSA_BITS = 2048


_MIN_EC_BITS = 224


def weak_key_problem(chain: Sequence[x509.Certificate]) -> str | None:
    for index, cert in enumerate(chain):
        kind, bits, _ = _key_info(cert)
        floor = {"RSA": _MIN_RSA_BITS, "DSA": _MIN_RSA_BITS, "EC": _MIN_EC_BITS}.get(kind)
        if bits is not None and floor is not None and bits < floor:
            whose = "the server's certificate" if index == 0 else f"CA certificate '{_short_name(cert.subject)}'"
            return f"the key of {whose} is too weak ({kind} {bits} bits)"
    return None


def validity_problems(chain: Sequence[x509.Certificate], now: datetime) -> list[tuple[Reason, str]]:
    """Expired / not yet valid certificates of the chain, leaf first."""
    problems: list[tuple[Reason, str]] = []
    for index, cert in enumerate(chain):
        what = (
            "certificate"
            if index == 0
            else f"{'intermediate' if index < len(chain) - 1 else 'CA'} certificate '{_short_name(cert.subject)}'"
        )
        if cert.not_valid_after_utc < now:
            when = cert.not_valid_after_utc
            problems.append((Reason.EXPIRED, f"{what} expired on {day(when)} ({span(now - when)} ago)"))
        elif cert.not_valid_before_utc > now:
            when = cert.not_valid_before_utc
            problems.append((Reason.NOT_YET_VALID, f"{what} is not valid before {day(when)} (in {span(when - now)})"))
    return problems


def details_of(
    conn: SSL.Connection, address: str, port: int, sni: str | None, now: datetime
) -> tuple[dict[str, Any], x509.Certificate | None, list[x509.Certificate]]:
    """JSON-ready facts of a completed handshake, the leaf, and the chain as sent."""
    leaf, sent = peer_certificates(conn)
    sent = sent or ([leaf] if leaf is not None else [])
    details: dict[str, Any] = {
        "address": address,
        "port": port,
        "sni": sni,
        "version": conn.get_protocol_version_name(),
        "cipher": conn.get_cipher_name(),
    }
    if leaf is not None:
        key_type, key_size, key_curve = _key_info(leaf)
        details.update(
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            sans=_sans(leaf),
            not_before=iso(leaf.not_valid_before_utc),
            not_after=iso(leaf.not_valid_after_utc),
            days_left=_days_left(leaf, now),
            serial=serial_text(serial_number(leaf)),
            key_type=key_type,
            key_size=key_size,
            key_curve=key_curve,
            signature_algorithm=_signature_algorithm(leaf),
        )
    details["chain"] = [{"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string()} for c in sent]
    details["ocsp_status"] = None
    return details, leaf, list(sent)


def hostname_text(leaf: x509.Certificate, name: str, from_sni: bool) -> str:
    sans = _sans(leaf)
    shown = ", ".join(sans[:6]) + (f" and {len(sans) - 6} more" if len(sans) > 6 else "")
    subject = f"certificate does not cover {name}" + (" (the sni)" if from_sni else "")
    if _san(leaf) is None:
        return (
            f"{subject}: it has no subjectAltName extension, and its subject CN '{_short_name(leaf.subject)}'"
            " is not used for name matching (RFC 9525; browsers reject such certificates)"
        )
    if not sans:
        return f"{subject}: its subjectAltName lists no DNS name or IP address"
    if is_ip_literal(name):
        return f"{subject}: no IP address SAN matches (SANs: {shown})"
    return f"{subject} (SANs: {shown})"
