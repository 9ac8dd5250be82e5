"""Vantages in a run (issue 17): route the checks, say how they run, close every gateway.

When the run has vantages other than ``local`` (``RunState.vantage_specs``, filled from the
inventories and ``--autoglm-vantage``), :func:`route` puts a
:class:`~pytest_autoglm.engine.router.VantageRouter` in front of the local runner: each remote
vantage gets a :class:`~pytest_autoglm.engine.vantage.GatewayRunner`, whose gateway opens when
its first check is scheduled (so a vantage the selected items do not use is never opened).

Under pytest-xdist, vantages and workers compose: every worker builds its own router and opens
its own gateway to each vantage it has items for; the controller opens none and says so in
one header line. A vantage that could not run its checks gets one line in the environment's
terminal summary (``reporting/terminal.py``, from the results, so also when workers ran them).
"""

from __future__ import annotations

import pytest

from pytest_autoglm.plugin.state import RunState, get_state, is_xdist_worker


def route(state: RunState) -> None:
    """Put a router in front of the run's runner when the run has remote vantages (once)."""
    from pytest_autoglm.engine.router import VantageRouter
    from pytest_autoglm.engine.vantage import GatewayRunner

    if not state.vantage_specs or isinstance(state.runner, VantageRouter):
        return
    concurrency = state.options.concurrency
    remotes = {name: GatewayRunner(name, spec, concurrency=concurrency) for name, spec in state.vantage_specs.items()}
    state.runner = VantageRouter(state.items, remotes)


@pytest.hookimpl(trylast=True)  # after every pytest_configure that may fill vantage_specs
def pytest_configure(config: pytest.Config) -> None:
    state = get_state(config)
    if state is None or not state.vantage_specs:
        return
    route(state)


def _workers(config: pytest.Config) -> int:
    """How many xdist workers this run starts (0: none, or ``-n`` not used)."""
    if config.getoption("dist", "no") == "no" or not config.getoption("tx", None):
        return 0
    return len(config.getoption("tx", None) or [])


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = get_state(config)
    if state is None or not state.vantage_specs or is_xdist_worker(config):
        return []
    names = ", ".join(state.vantage_specs)
    workers = _workers(config)
    if workers:
        return [
            f"autoglm: vantages and xdist workers compose: each of the {workers} workers opens its own execnet "
            f"gateway to each vantage it has items for ({names}); this process opens none"
        ]
    return [f"autoglm: remote vantages {names}: one execnet gateway each, opened when its first check starts"]


@pytest.hookimpl(tryfirst=True)  # before configure's, which closes the local runner
def pytest_unconfigure(config: pytest.Config) -> None:
    """Close every gateway (bounded: exit, then kill)."""
    from pytest_autoglm.engine.router import VantageRouter

    state = get_state(config)
    if state is not None and isinstance(state.runner, VantageRouter):
        state.runner.close_remotes()
