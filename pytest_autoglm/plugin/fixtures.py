"""Fixtures for users' own tests: ``autoglm_target`` parametrized from the inventories,
``autoglm_probe`` bound to them, ``autoglm_engine`` for advanced uses.

Only names with the plugin's prefix are claimed: a test's own ``target``, ``probe`` or
``host`` argument or fixture is left to pytest and the test suite. A test marked ``@tls``
(``pytest.mark.tls``) asking for ``autoglm_target`` runs once per target that has a ``tls``
section; several kind markers require all sections.

This module is registered in every session, so it imports the engine and the inventory
models (``prober.py``) only when a test asks for one of the fixtures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_autoglm.plugin.state import get_state

if TYPE_CHECKING:
    from pytest_autoglm.engine.runner import Engine
    from pytest_autoglm.plugin.prober import Prober

#: The parameter the plugin fills from the inventories' targets.
TARGET_ARG = "autoglm_target"
#: Kind markers that narrow the targets to those with the matching section.
KINDS = ("dns", "tcp", "tls", "http", "cors")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if TARGET_ARG not in metafunc.fixturenames:
        return
    state = get_state(metafunc.config)
    if state is None or not state.loaded:
        metafunc.parametrize(TARGET_ARG, [])  # no inventory: pytest skips it ("got empty parameter set")
        return
    from pytest_autoglm.plugin.prober import targets_for

    wanted = [m.name for m in metafunc.definition.iter_markers() if m.name in KINDS]
    targets = targets_for(state.loaded, wanted)
    metafunc.parametrize(TARGET_ARG, targets, ids=[str(t) for t in targets])


@pytest.fixture(scope="session")
def autoglm_engine(pytestconfig: pytest.Config) -> Engine:
    """The run's probe engine (its event loop runs in a background thread)."""
    from pytest_autoglm.plugin.configure import ensure_state

    return ensure_state(pytestconfig).engine


@pytest.fixture
def autoglm_probe(autoglm_engine: Engine, pytestconfig: pytest.Config) -> Prober:
    """Probe functions bound to the environment's settings: ``autoglm_probe.tcp(autoglm_target, 443)``."""
    from pytest_autoglm.inventory.plan import RunSettings
    from pytest_autoglm.plugin.configure import ensure_state
    from pytest_autoglm.plugin.prober import Prober

    state = ensure_state(pytestconfig)
    redactors = {inv.environment: inv.redactor for inv in state.loaded}
    return Prober(autoglm_engine, RunSettings(state.options.timeout, state.options.retries), redactors)
