"""Fast path, part ``protocol``: a lean run protocol for inventory items, with the same hooks and
reports, without the per-item machinery they never use.

pytest's own protocol runs ``pytest_runtest_setup/call/teardown`` for each phase, and with them
output capture, log capture, fixture set-up and mark evaluation: about 1 ms per item, which is
more than a probe costs. An inventory item has no fixtures, prints nothing and runs no code of
the user's; its result comes from the engine. So it gets only what reporters, xdist, junitxml,
pytest-html and ``-x`` rely on: ``logstart``, a setup, call and teardown report made through
``pytest_runtest_makereport`` and published through ``pytest_runtest_logreport``, and
``logfinish``. Anything unusual (skip or xfail marks, ``--setup-show``, a user test next in line,
whose fixtures pytest tears down between items) takes pytest's full protocol instead.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Literal

import pytest

from pytest_autoglm.plugin.collect import CheckItem

#: Marks that pytest evaluates in its own setup hooks.
_MARKS_NEEDING_PYTEST = ("skip", "skipif", "xfail")


def _lean_protocol_fits(item: CheckItem, nextitem: pytest.Item | None) -> bool:
    option = item.config.option
    if (
        getattr(option, "setupshow", False)
        or getattr(option, "setuponly", False)
        or getattr(option, "setupplan", False)
    ):
        return False
    if nextitem is not None and not isinstance(nextitem, CheckItem):
        return False  # pytest's teardown decides what the next item's fixtures need
    return not any(next(item.iter_markers(name), None) is not None for name in _MARKS_NEEDING_PYTEST)


@pytest.hookimpl
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if not isinstance(item, CheckItem) or not _lean_protocol_fits(item, nextitem):
        return None  # pytest's protocol
    ihook = item.ihook
    reraise: tuple[type[BaseException], ...] = (pytest.exit.Exception,)
    if not getattr(item.config.option, "usepdb", False):  # absent with -p no:debugging
        reraise += (KeyboardInterrupt,)

    def phase(when: Literal["setup", "call", "teardown"], func: Callable[[], None]) -> pytest.TestReport:
        call = pytest.CallInfo.from_call(func, when=when, reraise=reraise)
        report: pytest.TestReport = ihook.pytest_runtest_makereport(item=item, call=call)
        ihook.pytest_runtest_logreport(report=report)
        return report

    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    if phase("setup", item.setup).passed:
        phase("call", item.runtest)
    phase("teardown", item.teardown)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None, None, None]:
    """Keep pytest's failure summary linear in the number of items.

    For each failure, pytest looks for the test's teardown output among all setup and teardown
    reports, which costs failures x items (0.2 s for 200 failures among 2,000 items). Passed
    setup and teardown reports without output contribute nothing to any summary, so they are
    set aside while the summary is written, and put back after.
    """
    stats = terminalreporter.stats
    quiet = stats.get("")
    if not quiet:
        return (yield)
    stats[""] = [
        r for r in quiet if not (isinstance(r, pytest.TestReport) and r.passed and r.when != "call" and not r.sections)
    ]
    try:
        return (yield)
    finally:
        stats[""] = quiet
