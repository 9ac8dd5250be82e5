"""A tiny pytest plugin ``bench.py`` loads (``-p bench_phases``) to split a run's wall time into phases.

Session-level hooks only (nothing per item except one timestamp when the last item's report
arrives), so it costs nothing measurable. Writes ``$BENCH_PHASES_OUT.<worker or main>.json``
with wall-clock (``time.time()``) stamps the benchmark lines up with its own start time.
Does nothing when ``BENCH_PHASES_OUT`` is unset.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from typing import Any

import pytest

_OUT = os.environ.get("BENCH_PHASES_OUT")
_stamps: dict[str, Any] = {"imported": time.time()}


def _mark(name: str) -> None:
    if _OUT and name not in _stamps:
        _stamps[name] = time.time()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Plugins are imported and options parsed; no pytest_configure has run yet."""
    _mark("plugins_imported")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """After every plugin's pytest_configure (autoglm's loads the inventory and builds the plan)."""
    _mark("configured")
    _stamps["worker"] = getattr(config, "workerinput", {}).get("workerid", "main")


def pytest_sessionstart(session: pytest.Session) -> None:
    _mark("sessionstart")


def pytest_collection_finish(session: pytest.Session) -> None:
    _mark("collected")
    _stamps["items"] = len(session.items)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtestloop(session: pytest.Session):  # type: ignore[no-untyped-def]
    _mark("runtestloop")
    if _OUT:
        _watch_engine(session)
    result = yield
    _mark("runtestloop_end")
    return result


def _watch_engine(session: pytest.Session) -> None:
    """Stamp when the engine has published its last result (private API: best effort)."""
    try:
        from pytest_autoglm.plugin.state import get_state

        state = get_state(session.config)
        futures = list(state.engine._futures.values()) if state is not None else []
    except Exception:
        return
    if not futures:
        return
    left = [len(futures)]
    first = [0.0]

    def done(_: Any) -> None:
        if not first[0]:
            first[0] = time.time()
            _stamps["engine_first_result"] = first[0]
        left[0] -= 1
        if left[0] == 0:
            _stamps["engine_all_results"] = time.time()

    for future in futures:
        future.add_done_callback(done)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _mark("sessionfinish")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _mark("unconfigure")


def _write() -> None:
    """At interpreter exit: after pytest's own cleanups (its gc.collect() rounds), before teardown."""
    if not _OUT or "worker" not in _stamps:
        return
    _stamps["atexit"] = time.time()
    _stamps["maxrss_kb_self"] = _maxrss()
    name = f"{_OUT}.{_stamps.get('worker', 'main')}.json"
    with open(name, "w") as handle:
        json.dump(_stamps, handle)


atexit.register(_write)


def _maxrss() -> int:
    import resource

    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value // 1024 if sys.platform == "darwin" else value
