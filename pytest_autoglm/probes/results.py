"""Result vocabulary shared by probes, the engine and the reports.

The string values are the contract of ``results.md``: scripts and dashboards
key on them, so they are never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Layer(StrEnum):
    """Where a fault lies, in the order an engineer troubleshoots."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    CORS = "cors"


class Outcome(StrEnum):
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
    # http
    STATUS = "status"
    BODY = "body"
    SLOW = "slow"
    AUTH = "auth"
    PROTOCOL = "protocol"
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


#: Reasons whose failure may be transient, so an attempt that ends with one is retried.
TRANSIENT_REASONS = frozenset(
    {
        Reason.TIMEOUT,
        Reason.SERVFAIL,
        Reason.REFUSED,
        Reason.FILTERED,
        Reason.UNREACHABLE,
        Reason.HANDSHAKE,
        Reason.PROTOCOL,
    }
)

#: DNS reasons meaning "the name does not resolve": they block higher layers.
NAME_DOES_NOT_RESOLVE = frozenset({Reason.NXDOMAIN, Reason.SERVFAIL, Reason.REFUSED, Reason.TIMEOUT})

#: The CORS misconfiguration probes (``probes.cors``), each its own check of every ``cors`` entry.
CORS_HOLES: tuple[str, ...] = (
    "reflect_any_origin",
    "null_origin",
    "suffix_bypass",
    "prefix_bypass",
    "wildcard_credentials",
    "vary_origin",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one attempt of one check.

    Probes never raise for a verdict: a refused port or an NXDOMAIN is a
    ``Verdict(passed=False, ...)``. ``transient`` tells the engine whether
    another attempt could change the answer (timeouts, SERVFAIL, resets);
    a definite wrong answer is not retried.
    """

    passed: bool
    layer: Layer | None = None
    reason: Reason | None = None
    message: str = ""
    address: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    transient: bool = False

    @classmethod
    def ok(cls, message: str = "", *, address: str | None = None, details: dict[str, Any] | None = None) -> Verdict:
        return cls(True, None, None, message, address, details or {})

    @classmethod
    def fail(
        cls,
        layer: Layer,
        reason: Reason,
        message: str,
        *,
        address: str | None = None,
        details: dict[str, Any] | None = None,
        transient: bool | None = None,
    ) -> Verdict:
        if transient is None:
            transient = reason in TRANSIENT_REASONS
        return cls(False, layer, reason, message, address, details or {}, transient)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The final result of one check (one pytest item), after retries."""

    outcome: Outcome
    layer: Layer | None
    reason: Reason | None
    message: str
    address: str | None = None
    attempts: int = 1
    duration_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "layer": None if self.layer is None else str(self.layer),
            "reason": None if self.reason is None else str(self.reason),
            "message": self.message,
            "address": self.address,
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 1),
            "details": self.details,
        }
