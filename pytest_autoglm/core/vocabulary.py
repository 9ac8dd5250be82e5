"""The project's words: layers, outcomes, reasons, severities and the sets the rules are made of.

Every other module imports these names from here and defines none of its own. The string
values are the contract of ``results.md``: scripts and dashboards key on them, so they are
never renamed (new ones may be added). No imports beyond the standard library.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Layer(StrEnum):
    """Where a fault lies, in the order an engineer troubleshoots."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    CORS = "cors"
    # the rest of the troubleshooting path (issue 19)
    GRPC = "grpc"
    GROUP = "group"
    ICMP = "icmp"


class Outcome(StrEnum):
    """The pytest outcome of one check; ``error`` means it could not be carried out here."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


class Reason(StrEnum):
    """Stable reason codes (results.md). ``refused`` and ``timeout`` serve several layers."""

    UPSTREAM = "upstream"
    TIMEOUT = "timeout"
    # dns
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    MISMATCH = "mismatch"
    UNEXPECTED = "unexpected"
    INCONSISTENT = "inconsistent"
    # tcp
    FILTERED = "filtered"
    UNREACHABLE = "unreachable"
    UNEXPECTED_OPEN = "unexpected_open"
    UNEXPECTED_REFUSED = "unexpected_refused"
    # tls
    HANDSHAKE = "handshake"
    UNTRUSTED = "untrusted"
    HOSTNAME = "hostname"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRING = "expiring"
    REVOKED = "revoked"
    NO_OCSP_STAPLE = "no_ocsp_staple"
    OLD_PROTOCOL = "old_protocol"
    PROTOCOL_UNSUPPORTED = "protocol_unsupported"
    WEAK_CIPHER = "weak_cipher"  # extension: the server accepts a suite its policy forbids
    WEAK_KEY_EXCHANGE = "weak_key_exchange"  # extension: no forward secrecy, a group, a DH group's size or prime
    WEAK_KEY = "weak_key"  # extension: a certificate key below the policy's size or of another type
    WEAK_SIGNATURE = "weak_signature"  # extension: a certificate signed with SHA-1 or MD5
    INCOMPLETE_CHAIN = "incomplete_chain"  # extension: the server did not send the intermediate(s)
    REVOCATION_UNKNOWN = "revocation_unknown"  # extension: no revocation answer (warning)
    # http
    STATUS = "status"
    BODY = "body"
    SLOW = "slow"
    AUTH = "auth"
    PROTOCOL = "protocol"
    HSTS = "hsts"  # extension: Strict-Transport-Security missing or weaker than expected
    HEADER = "header"  # extension: a security header missing, or one present that must not be
    # cors
    NOT_ALLOWED = "not_allowed"
    ALLOWED = "allowed"
    REFLECTS_ANY_ORIGIN = "reflects_any_origin"
    WILDCARD_CREDENTIALS = "wildcard_credentials"
    CREDENTIALS = "credentials"
    PREFLIGHT = "preflight"
    VARY_MISSING = "vary_missing"  # extension: the allowed origin varies and Vary: Origin is missing
    # extensions of this implementation (documented in docs/reports.md)
    SETUP = "setup"  # the check could not be carried out locally (outcome error)
    # grpc (health-checking protocol)
    NOT_SERVING = "not_serving"
    UNIMPLEMENTED = "unimplemented"
    UNAVAILABLE = "unavailable"
    DEADLINE = "deadline"
    # http streams
    STREAM_SLOW = "stream_slow"
    STREAM_INCOMPLETE = "stream_incomplete"
    # proxies: the proxy a layer needed refused or was down (not the target's fault)
    PROXY = "proxy"
    # icmp (unreachable: as for tcp)
    LOSS = "loss"
    UNEXPECTED_REPLY = "unexpected_reply"
    # failover groups
    DEGRADED = "degraded"
    NOT_ENOUGH = "not_enough"
    OVERLOADED = "overloaded"  # the checker itself was too late to judge a time-based verdict (outcome error)
    # multi-vantage (issue 17): the place a check runs from could not run it (outcome error)
    VANTAGE_UNREACHABLE = "vantage_unreachable"


class Severity(StrEnum):
    """How much a failed check counts (inventory ``severity``; ``--autoglm-fail-on``)."""

    CRITICAL = "critical"
    WARNING = "warning"


class Retry(StrEnum):
    """Whether a failed attempt with a given reason is worth another (the engine's one retry rule)."""

    TRANSIENT = "transient"  # retried unless the probe saw a definite answer (a timeout may be a lost packet)
    IF_NOT_DEFINITE = "if not definite"  # retried only when the probe says the answer was cut, not given
    DEFINITE = "definite"  # never retried: the peer (or this machine's policy) answered


#: The one table of which reasons may be transient (docs/reports.md "Which failures are retried").
#: Reasons not listed are definite answers: a wrong record, an expired certificate, a 404, a CORS
#: header the server sent. ``handshake`` is retried only when the connection was cut without an
#: answer (EOF, reset), never for an alert or a local refusal ("dh key too small", "excessive
#: message size"); ``status`` and ``preflight`` only for a 5xx.
RETRY_RULES: Final[dict[Reason, Retry]] = {
    Reason.TIMEOUT: Retry.TRANSIENT,
    Reason.SERVFAIL: Retry.TRANSIENT,
    Reason.REFUSED: Retry.TRANSIENT,
    Reason.FILTERED: Retry.TRANSIENT,
    Reason.UNREACHABLE: Retry.TRANSIENT,
    Reason.PROTOCOL: Retry.TRANSIENT,
    Reason.UNAVAILABLE: Retry.TRANSIENT,
    Reason.DEADLINE: Retry.TRANSIENT,
    Reason.PROXY: Retry.TRANSIENT,
    Reason.HANDSHAKE: Retry.IF_NOT_DEFINITE,
    Reason.STATUS: Retry.IF_NOT_DEFINITE,
    Reason.PREFLIGHT: Retry.IF_NOT_DEFINITE,
}

#: Reasons transient by default: a probe's Verdict with one of these is retried unless it says otherwise.
TRANSIENT_REASONS: Final = frozenset(r for r, rule in RETRY_RULES.items() if rule is Retry.TRANSIENT)

#: Reasons whose verdict is a time measurement: they stand only when the time passed on the wire,
#: not while the checker itself was late (engine: spoiled attempts, reason ``overloaded``).
TIME_REASONS: Final = frozenset({Reason.TIMEOUT, Reason.FILTERED, Reason.SLOW})


def retry_rule(reason: Reason | None) -> Retry:
    """The retry rule of a reason (definite when it is not in :data:`RETRY_RULES`)."""
    return Retry.DEFINITE if reason is None else RETRY_RULES.get(reason, Retry.DEFINITE)


def worth_retrying(reason: Reason | None, transient: bool) -> bool:
    """Whether a failed attempt is retried: its reason may be transient and its probe saw no definite answer."""
    return transient and retry_rule(reason) is not Retry.DEFINITE


#: Reasons of a check that could not be carried out (outcome ``error``, never ``failed``): the checker's
#: own fault or its place's, not the target's.
ERROR_REASONS: Final = frozenset({Reason.SETUP, Reason.OVERLOADED, Reason.VANTAGE_UNREACHABLE})

#: DNS reasons meaning "the name does not resolve": they block higher layers.
NAME_DOES_NOT_RESOLVE: Final = frozenset({Reason.NXDOMAIN, Reason.SERVFAIL, Reason.REFUSED, Reason.TIMEOUT})

#: The CORS misconfiguration probes (``probes.cors``), each its own check of every ``cors`` entry.
CORS_HOLES: Final[tuple[str, ...]] = (
    "reflect_any_origin",
    "null_origin",
    "suffix_bypass",
    "prefix_bypass",
    "wildcard_credentials",
    "vary_origin",
)

#: The CORS probes a server that echoes any Origin fails anyway: with ``reflect_any_origin`` failed
#: (reason ``reflects_any_origin``) they, and the entry's ``deny`` origins, are its consequences
#: (reason ``upstream``), so one misconfiguration is one red item.
REFLECTION_IMPLIES: Final = frozenset({"null_origin", "suffix_bypass", "prefix_bypass"})

#: CORS misconfigurations reported with warning severity whatever the target's severity.
WARNING_MISCONFIGURATIONS: Final = frozenset({"vary_origin"})
