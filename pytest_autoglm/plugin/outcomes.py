"""Scheduling every probe at once, result facts on reports, and warning severity."""

from __future__ import annotations

import gc
from collections.abc import Generator

import pytest

from pytest_autoglm.plugin.collect import CheckItem, result_key
from pytest_autoglm.plugin.state import get_state
from pytest_autoglm.plugin.xdist import my_share
from pytest_autoglm.core.vocabulary import Outcome
from pytest_autoglm.reporting.diagnosis import render_diagnosis

#: The attribute carrying a result across xdist (builtin types only: pytest serializes report.__dict__).
REPORT_ATTR = "autoglm"


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collection built: it stays alive to the end of the session, and pytest's
    gc passes (and the interpreter's exit) would otherwise walk it all again (~0.5 s per 10k
    checks); a forked engine then starts from the frozen heap too. No collection before the
    freeze: it found about 60 unreachable objects among 115,000 and cost 0.06 s."""
    state = get_state(session.config)
    if state is not None and any(slot.checks for slot in state.slots):
        gc.freeze()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Start the probes of every selected item before pytest walks them (in any order).

    Here, not when collection ends: pytest calls ``pytest_collection_finish`` also for
    ``--fixtures`` and after a failed collection, and nothing may be probed then.
    """
    state = get_state(session.config)
    option = session.config.option
    collection_failed = session.testsfailed and not option.continue_on_collection_errors  # pytest stops then
    if state is not None and not option.collectonly and not collection_failed:
        share = my_share(session.config, [item.nodeid for item in session.items])
        checks = [
            item.check
            for index, item in enumerate(session.items)
            if isinstance(item, CheckItem) and (share is None or index in share)
        ]
        if checks:
            state.items.schedule(checks)
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Freeze the run's results and reports too, when the session ran inventory items only.

    pytest's five gc passes at unconfigure then skip them (they are kept to the end anyway).
    With users' tests in the session they still run in full: they are how pytest reports
    ``__del__`` errors of the garbage those tests left behind.
    """
    if session.items and all(isinstance(item, CheckItem) for item in session.items):
        gc.freeze()


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
    facts = {
        "id": check.id,
        "environment": check.environment,
        "inventory": check.inventory,
        "target": check.target,
        "check": str(check.kind),
        "subject": check.subject,
        "severity": check.severity,
        "order": check.index,
        **item.redactor.redact_data(result.to_dict()),
    }
    state = get_state(item.config)
    warned = (
        report.when == "call"
        and report.failed
        and result.outcome is Outcome.FAILED  # not a strict XPASS, which pytest fails on the item's mark
        and check.severity == "warning"
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
