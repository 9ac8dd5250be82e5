"""The short diagnosis printed for a failed item: root cause first, never a traceback."""

from __future__ import annotations

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.inventory.plan import Check
from pytest_autoglm.inventory.secrets import Redactor


def render_diagnosis(check: Check, result: CheckResult, redactor: Redactor) -> str:
    lines = [
        f"{check.id} {result.outcome}",
        f"  layer:    {result.layer or '-'}",
        f"  reason:   {result.reason or '-'}",
    ]
    if result.address:
        lines.append(f"  address:  {result.address}")
    lines.append(f"  message:  {redactor(result.message)}")
    if result.reason is Reason.UPSTREAM:
        lines.append(f"  root cause: {result.details.get('upstream', '?')} (fix that first)")
    else:
        lines.append(
            f"  attempts: {result.attempts} in {result.duration_ms / 1000:.2f}s (timeout {check.timeout:g}s, retries {check.retries})"
        )
    return "\n".join(lines)
