"""Result facts on reports, and warning severity (a failed ``warning`` check is reported as passed, "W").

The severity is the result's effective one (:func:`effective_severity`): a verdict may be a warning
of its own (``degraded``, ``revocation_unknown``) in a critical check; the JSON shows that one.

Starting the probes is ``plugin/prefetch.py``; gc freezing is part of the fast path (``plugin/fastpath``)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_autoglm.core.records import effective_severity
from pytest_autoglm.core.vocabulary import Outcome
from pytest_autoglm.plugin.collect import CheckItem, result_key
from pytest_autoglm.plugin.state import get_state
from pytest_autoglm.reporting.diagnosis import render_diagnosis
from pytest_autoglm.reporting.records import REPORT_ATTR


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not isinstance(item, CheckItem):
        return report
    result = item.stash.get(result_key, None)
    # Facts go on the call report, or on a setup report that ends the item: a failed one, or
    # an error the user's xfail mark turned into "xfailed" (no call phase follows either).
    xfailed_setup = report.when == "setup" and getattr(report, "wasxfail", None) is not None
    if result is None or (report.when != "call" and not report.failed and not xfailed_setup):
        return report
    check = item.check
    if item.redactor and report.sections:  # captured logs (httpx logs request URLs) may hold a secret
        report.sections = [(title, item.redactor(text)) for title, text in report.sections]
    if report.when == "setup" and report.failed:
        report.longrepr = render_diagnosis(check, result, item.redactor)
    severity = effective_severity(check.severity, result)
    facts = {
        "id": check.id,
        "environment": check.environment,
        "inventory": check.inventory,
        "target": check.target,
        "check": str(check.kind),
        "subject": check.subject,
        "severity": severity,
        "order": check.index,
        **item.redactor.redact_data(result.to_dict()),
    }
    if check.vantage is not None:
        facts["vantage"] = check.vantage
    state = get_state(item.config)
    warned = (
        report.when == "call"
        and report.failed
        and result.outcome is Outcome.FAILED  # not a strict XPASS, which pytest fails on the item's mark
        and severity == "warning"
        and state is not None
        and state.options.fail_on != "warning"
    )
    if warned:
        report.outcome = "passed"
        facts["warned"] = True
    report.__dict__[REPORT_ATTR] = facts
    return report


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    facts = getattr(report, REPORT_ATTR, None)
    if report.when == "call" and isinstance(facts, dict) and facts.get("warned"):
        return "warned", "W", ("WARNED", {"yellow": True})
    return None
