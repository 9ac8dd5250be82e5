"""Failover groups (issue 19): a group item judged on the results of its members' own checks.

A member passes when every one of its critical checks passed (its warning-severity checks, and
results that are warnings of their own, do not count). The one item of a group has three states:
it passes when enough members pass and the preferred one (if any) is among them; it is a warning
(reason ``degraded``, a verdict of warning severity whatever the group's) when the preferred
member is down and others serve, naming them; it fails (``not_enough``) when fewer than
``min_passing`` pass. A group is never blocked by its members' failures: judging them is its
whole point. Members' checks not run in this session (deselected) make the item an ``error``
unless the members that did run already decide it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pytest_autoglm.core.records import CheckResult, effective_severity
from pytest_autoglm.core.vocabulary import Layer, Outcome, Reason
from pytest_autoglm.inventory.plan import Check, GroupSpec

#: Finds the result of a check of the run by id (None: it is not part of this run).
ResultOf = Callable[[str], Awaitable[CheckResult | None]]


async def member_states(spec: GroupSpec, result_of: ResultOf) -> dict[str, dict[str, Any]]:
    """Each member's state: ``passed``, ``failed`` (with the first failing check) or ``unknown``."""
    states: dict[str, dict[str, Any]] = {}
    for name, checks in spec.members:
        failing: tuple[str, CheckResult] | None = None
        missing = 0
        for check_id, severity in checks:
            result = await result_of(check_id)
            if result is None:
                missing += 1
            elif (
                result.outcome is not Outcome.PASSED
                and effective_severity(severity, result) != "warning"
                and failing is None
            ):
                failing = (check_id, result)
        if failing is not None:
            check_id, result = failing
            states[name] = {"state": "failed", "check": check_id, "reason": str(result.reason)}
        elif missing or not checks:
            states[name] = {"state": "unknown", "not_run": missing}
        else:
            states[name] = {"state": "passed"}
    return states


async def judge_group(check: Check, result_of: ResultOf) -> CheckResult:
    spec = check.spec
    assert isinstance(spec, GroupSpec)
    states = await member_states(spec, result_of)
    serving = [name for name, s in states.items() if s["state"] == "passed"]
    unknown = [name for name, s in states.items() if s["state"] == "unknown"]
    down = [f"{name} ({s['reason']} at {s['check']})" for name, s in states.items() if s["state"] == "failed"]
    details: dict[str, Any] = {
        "members": states,
        "serving": serving,
        "min_passing": spec.min_passing,
        "prefer": spec.prefer,
    }
    count = f"{len(serving)} of {len(states)} members pass"
    served = f"served by {', '.join(serving)}" if serving else "no member serves"
    down_text = f"; down: {', '.join(down)}" if down else ""
    if len(serving) < spec.min_passing:
        if len(serving) + len(unknown) >= spec.min_passing:
            return _not_run(check, unknown, details)
        return CheckResult(
            Outcome.FAILED,
            Layer.GROUP,
            Reason.NOT_ENOUGH,
            f"{count}, {spec.min_passing} needed; {served}{down_text}",
            details=details,
        )
    enough = f"{count}, {spec.min_passing} needed"
    if spec.prefer is None or states[spec.prefer]["state"] == "passed":
        preferred = f"the preferred {spec.prefer} serves; " if spec.prefer else ""
        return CheckResult(Outcome.PASSED, None, None, f"{preferred}{served} ({enough})", details=details)
    if states[spec.prefer]["state"] == "unknown":
        return _not_run(check, [spec.prefer], details)
    return CheckResult(
        Outcome.FAILED,
        Layer.GROUP,
        Reason.DEGRADED,
        f"the preferred {spec.prefer} is down; {served} ({enough}){down_text}",
        details=details,
        severity="warning",
    )


def _not_run(check: Check, members: list[str], details: dict[str, Any]) -> CheckResult:
    return CheckResult(
        Outcome.ERROR,
        Layer.GROUP,
        Reason.SETUP,
        f"cannot judge {check.target}: the checks of {', '.join(members)} did not run in this session "
        "(select them too, e.g. with -k)",
        details=details,
    )
