"""Fast path, part ``runloop``: walk an inventory-only run's items in the order their probes finish.

pytest walks items in collection order, so one dropped port early in the inventory holds up
every item behind it for a whole timeout: the process sits idle while most results are
ready, then reports them all in a rush after the engine is done. An inventory-only run has
no fixtures and no ordering between items (lower-layer dependencies are settled in the
engine), so its items can be reported as their results arrive instead. The JSON and HTML
reports keep inventory order whatever the walk.

``--autoglm-order auto`` (the default) walks as ready only when the probes run in a forked
child (``engine/process.py``), which has a core of its own. When they run on a thread of
this process, pytest's per-item work would compete with the engine for the interpreter lock
while the engine is still starting probes, which pushes every timer later: on the 1000-target
benchmark that walk was slower than collection order (docs/performance.md).
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
from collections.abc import Generator

import pytest

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.engine.process import ProcessRunner
from pytest_autoglm.engine.router import VantageRouter
from pytest_autoglm.engine.runner import Runner
from pytest_autoglm.plugin.collect import CheckItem
from pytest_autoglm.plugin.state import RunState, get_state, is_xdist_worker

#: How often a wait for the next result checks that the engine still runs.
LIVENESS_POLL_S = 1.0


def _forked(state: RunState) -> bool:
    runner = state.runner.local if isinstance(state.runner, VantageRouter) else state.runner  # issue 17
    return isinstance(runner, ProcessRunner) and runner.forked


#: Options that ask pytest for an order of their own (stepwise also relies on it to know which
#: items "already passed"), so the walk keeps collection order.
_ORDERING_OPTIONS = ("stepwise", "stepwise_skip", "failedfirst", "newfirst")


def _walks_as_ready(session: pytest.Session) -> bool:
    state = get_state(session.config)
    option = session.config.option
    if state is None or state.options.order == "inventory":
        return False
    # auto: as ready only in a forked child, and for one inventory (several walked as ready
    # would interleave their files in pytest's progress lines).
    if state.options.order == "auto" and (not _forked(state) or len({item.path for item in session.items}) > 1):
        return False
    return (
        not option.collectonly
        and not any(getattr(option, name, False) for name in _ORDERING_OPTIONS)
        and not is_xdist_worker(session.config)
        and not (session.testsfailed and not option.continue_on_collection_errors)
        and len(session.items) > 1
        and all(isinstance(item, CheckItem) for item in session.items)
    )


def _skipped_without_a_result(item: CheckItem) -> bool:
    """An item with a skip mark is walked at once: it will never wait for its probe."""
    return next(item.iter_markers("skip"), None) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """pytest's loop (the same protocol per item, ``-x`` and ``--maxfail``), in finishing order."""
    if not _walks_as_ready(session):
        return None
    state = get_state(session.config)
    assert state is not None
    items: list[CheckItem] = session.items  # type: ignore[assignment]
    session.config.stash[positions_key] = {item.nodeid: index for index, item in enumerate(items)}
    runner = state.items
    ready: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index, item in enumerate(items):
        if _skipped_without_a_result(item):
            ready.put(index)
        else:
            runner.when_done(item.check, functools.partial(_settled, ready, index))
    walked = [False] * len(items)
    first_left = 0  # every item before this one has been walked
    for _ in range(len(items)):
        index = _next_ready(ready, runner, first_left, walked)
        walked[index] = True
        while first_left < len(items) and walked[first_left]:
            first_left += 1
        # No next item: the next one walked is not known yet, and an item that takes pytest's
        # full protocol (a mark, --setup-show) then tears its collectors down, as pytest's
        # last item does; the next such item sets them up again (inventory nodes: no-ops).
        items[index].config.hook.pytest_runtest_protocol(item=items[index], nextitem=None)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
    return True


def _settled(ready: queue.SimpleQueue[int], index: int, _future: concurrent.futures.Future[CheckResult]) -> None:
    ready.put(index)


def _next_ready(ready: queue.SimpleQueue[int], runner: Runner, first_left: int, walked: list[bool]) -> int:
    """The next item whose result is in; if the engine is gone, the first left (its wait reports that)."""
    while True:
        alive = runner.alive()  # once it is gone, nothing more will arrive: never wait again
        try:
            index = ready.get(block=alive, timeout=LIVENESS_POLL_S if alive else None)
        except queue.Empty:
            if alive:
                continue
            return first_left
        if not walked[index]:
            return index


#: Each item's place in collection order, when the walk did not follow it (for the short summary).
positions_key = pytest.StashKey[dict[str, int]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outside pytest's own wrapper, which writes the summary last
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> Generator[None, None, None]:
    """pytest's short summary (``FAILED ...`` lines) in inventory order, whatever order the walk took."""
    positions = config.stash.get(positions_key, None)
    if positions is None:
        return (yield)
    stats = terminalreporter.stats
    saved = {key: reports for key, reports in stats.items() if key != "warnings"}
    for key, reports in saved.items():
        stats[key] = sorted(reports, key=lambda report: positions.get(getattr(report, "nodeid", ""), -1))
    try:
        return (yield)
    finally:
        for key, reports in saved.items():  # keep what was recorded meanwhile
            stats[key] = reports + stats[key][len(reports) :]
