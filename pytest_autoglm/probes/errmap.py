"""Where foreign errors become reason codes: one table per protocol family, nowhere else.

The probes meet three families of low-level errors, and each is translated here once, in
the way httpx maps httpcore's exceptions in one place:

- **OS socket errors** (``errno`` of a connect): :func:`connect_reason`, :data:`LOCAL_ERRNOS`.
- **Name lookups** (``getaddrinfo``'s ``EAI_*`` codes): :func:`lookup_reason`.
- **X.509 verification** (OpenSSL's ``X509_V_ERR_*`` codes): :func:`verify_reason`,
  :func:`verify_text`.

A probe that cannot be carried out on this machine raises :class:`LocalSetupError` inside
itself and returns reason ``setup`` at its boundary; it never escapes a probe.
"""

from __future__ import annotations

import errno
import socket
from typing import Final

from pytest_autoglm.core.vocabulary import Reason


class LocalSetupError(Exception):
    """A local precondition is missing (an unreadable CA bundle or client certificate): reason ``setup``."""


# --------------------------------------------------------------------------- OS socket errors

#: errno values that mean "the host or network cannot be reached".
UNREACHABLE_ERRNOS: Final = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN})

#: errno values that are facts about *this* machine, not about the target: running out
#: of file descriptors, buffers or ephemeral ports must not be reported as "unreachable".
LOCAL_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL})

_CONNECT_REASONS: Final[dict[int, Reason]] = {
    errno.ECONNREFUSED: Reason.REFUSED,
    errno.ETIMEDOUT: Reason.FILTERED,  # the kernel gave up on its SYN retries first
    **dict.fromkeys(UNREACHABLE_ERRNOS, Reason.UNREACHABLE),
}


def connect_reason(number: int | None) -> Reason | None:
    """The TCP reason a failed connect's errno stands for (None: not one of ours, or a local fault)."""
    return None if number is None else _CONNECT_REASONS.get(number)


# --------------------------------------------------------------------------- name lookups

_EAI_NODATA: Final = getattr(socket, "EAI_NODATA", None)


def lookup_reason(code: int | None) -> Reason:
    """The DNS reason of a ``socket.gaierror`` code: the name does not exist, has no address, or
    the lookup itself failed (``servfail``: the stub resolver gave up, or no usable nameserver)."""
    if code == socket.EAI_NONAME:
        return Reason.NXDOMAIN
    if code is not None and code == _EAI_NODATA:
        return Reason.NODATA
    return Reason.SERVFAIL


# --------------------------------------------------------------------------- X.509 verification

# X509_V_ERR_* codes told apart by the probes (OpenSSL include/openssl/x509_vfy.h; stable across 1.1 and 3.x).
V_UNABLE_TO_GET_ISSUER_CERT: Final = 2
V_CERT_NOT_YET_VALID: Final = 9
V_CERT_HAS_EXPIRED: Final = 10
V_DEPTH_ZERO_SELF_SIGNED: Final = 18
V_SELF_SIGNED_IN_CHAIN: Final = 19
V_UNABLE_TO_GET_ISSUER_LOCALLY: Final = 20
V_UNABLE_TO_VERIFY_LEAF_SIGNATURE: Final = 21
V_CERT_REVOKED: Final = 23
V_HOSTNAME_MISMATCH: Final = 62
V_IP_ADDRESS_MISMATCH: Final = 64

#: The chain does not lead to a trust anchor.
CHAIN_ERRORS: Final = frozenset(
    {
        V_UNABLE_TO_GET_ISSUER_CERT,
        V_DEPTH_ZERO_SELF_SIGNED,
        V_SELF_SIGNED_IN_CHAIN,
        V_UNABLE_TO_GET_ISSUER_LOCALLY,
        V_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    }
)
#: Validity-period errors of certificates and CRLs.
TIME_ERRORS: Final = frozenset({9, 10, 11, 12, 13, 14, 15, 16})

_VERIFY_REASONS: Final[dict[int, Reason]] = {
    V_CERT_NOT_YET_VALID: Reason.NOT_YET_VALID,
    V_CERT_HAS_EXPIRED: Reason.EXPIRED,
    V_CERT_REVOKED: Reason.REVOKED,
    V_HOSTNAME_MISMATCH: Reason.HOSTNAME,
    V_IP_ADDRESS_MISMATCH: Reason.HOSTNAME,
    **dict.fromkeys(CHAIN_ERRORS | {24, 27, 28}, Reason.UNTRUSTED),
}


def verify_reason(code: int | None) -> Reason:
    """The TLS reason of a verification error code; an unknown code is a failed ``handshake``."""
    return Reason.HANDSHAKE if code is None else _VERIFY_REASONS.get(code, Reason.HANDSHAKE)


#: What a verification code means, in the words an engineer acts on (ours where OpenSSL's are terse).
_VERIFY_TEXTS: Final[dict[int, str]] = {
    1: "unspecified certificate verification error",
    2: "unable to get issuer certificate",
    3: "unable to get certificate CRL",
    4: "unable to decrypt certificate's signature",
    5: "unable to decrypt CRL's signature",
    6: "unable to decode issuer public key",
    7: "a certificate signature does not verify",
    8: "CRL signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    11: "CRL is not yet valid",
    12: "CRL has expired",
    17: "out of memory",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    22: "the certificate chain is too long",
    23: "certificate revoked",
    24: "a certificate in the chain is not a valid CA certificate",
    25: "a path length constraint is exceeded",
    26: "the certificate is not meant for TLS servers (extended key usage)",
    27: "the certificate is not trusted",
    28: "the certificate is rejected",
    29: "subject issuer mismatch",
    30: "authority and subject key identifier mismatch",
    31: "authority and issuer serial number mismatch",
    32: "key usage does not include certificate signing",
    33: "unable to get CRL issuer certificate",
    34: "unhandled critical extension",
    35: "key usage does not include CRL signing",
    36: "unhandled critical CRL extension",
    37: "invalid non-CA certificate (has CA markings)",
    38: "proxy path length constraint exceeded",
    39: "key usage does not include digital signature",
    40: "proxy certificates not allowed",
    41: "invalid or inconsistent certificate extension",
    42: "invalid or inconsistent certificate policy extension",
    43: "no explicit policy",
    44: "different CRL scope",
    45: "unsupported extension feature",
    46: "RFC 3779 resource not subset of parent's resources",
    47: "permitted subtree violation",
    48: "excluded subtree violation",
    49: "name constraints minimum and maximum not supported",
    50: "application verification failure",
    51: "unsupported name constraint type",
    52: "unsupported or invalid name constraint syntax",
    53: "unsupported or invalid name syntax",
    54: "CRL path validation error",
    55: "path loop",
    62: "hostname mismatch",
    63: "email address mismatch",
    64: "IP address mismatch",
    65: "no matching DANE TLSA records",
    66: "the server certificate's key is too weak",
    67: "a CA certificate's key is too weak",
    68: "a CA certificate's signature algorithm is too weak",
    69: "invalid certificate verification context",
    70: "issuer certificate lookup error",
}


def verify_text(code: int) -> str:
    """A verification code in words (a static table: no private OpenSSL binding is needed)."""
    return _VERIFY_TEXTS.get(code, f"certificate verification error {code}")


# --------------------------------------------------------------------------- TLS handshake failures

#: Words of an OpenSSL error (library reason codes, lower-cased, ``_`` as spaces) that mean the
#: handshake was cut rather than answered: only these make a failed handshake worth a retry.
_CUT_WORDS: Final = (
    "unexpected eof",
    "eof occurred",
    "connection reset",
    "reset by peer",
    "broken pipe",
    "connection aborted",
    "closed the connection",
)


def handshake_transient(text: str, *, alert: bool = False, eof: bool = False) -> bool:
    """Whether a failed TLS handshake may succeed on another attempt (the retry rule of ``handshake``).

    An alert from the server (``handshake_failure``, ``protocol_version``, ...) and a refusal by the
    local library ("dh key too small", "excessive message size", "wrong version number", a failed
    verification) are definite answers. Only a connection cut without an answer (EOF, reset) is
    transient: a restarting server or a dropped connection.
    """
    words = text.lower().replace("_", " ")
    if alert or " alert " in f" {words} ":
        return False
    return eof or any(w in words for w in _CUT_WORDS)
