"""The records results travel in: a probe's :class:`Verdict` and the engine's :class:`CheckResult`.

Frozen and built from builtin values only, so they cross threads and processes (pickled by
the forked runner) unchanged. The words they hold come from :mod:`pytest_autoglm.core.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_autoglm.core.vocabulary import TRANSIENT_REASONS, Layer, Outcome, Reason

#: Masks secrets in a text; every message and detail a probe returns goes through one.
Redact = Callable[[str], str]


def no_redaction(text: str) -> str:
    """The :data:`Redact` of a run without secrets."""
    return text


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one attempt of one check.

    Probes never raise for a verdict: a refused port or an NXDOMAIN is a
    ``Verdict(passed=False, ...)``. ``transient`` tells the engine whether
    another attempt could change the answer (timeouts, SERVFAIL, resets);
    a definite wrong answer is not retried.

    ``severity`` (``"warning"``), when set, lowers this failure to a warning whatever the
    check's severity: for a verdict that is a warning by its nature (``revocation_unknown``,
    a group's ``degraded``) while the check's other failures stay critical.
    """

    passed: bool
    layer: Layer | None = None
    reason: Reason | None = None
    message: str = ""
    address: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    transient: bool = False
    severity: str | None = None

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
        severity: str | None = None,
    ) -> Verdict:
        if transient is None:
            transient = reason in TRANSIENT_REASONS
        return cls(False, layer, reason, message, address, details or {}, transient, severity)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The final result of one check (one pytest item), after retries.

    ``severity`` is the verdict's own (see :class:`Verdict`): None means the check's; read it
    through :func:`effective_severity`. A builtin ``str`` so the result pickles across processes.
    """

    outcome: Outcome
    layer: Layer | None
    reason: Reason | None
    message: str
    address: str | None = None
    attempts: int = 1
    duration_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None

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


def effective_severity(check_severity: str, result: CheckResult | None) -> str:
    """The severity this result counts with: the result's own when it has one, except that a
    ``warning`` check stays a warning (a result's severity can only lower, never raise)."""
    if result is None or result.severity is None or check_severity == "warning":
        return check_severity
    return result.severity
