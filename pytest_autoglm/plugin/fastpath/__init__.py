"""The fast path: everything that bends pytest's or pytest-xdist's normal flow, behind one switch.

``--autoglm-fast-path on|off`` (ini ``autoglm_fast_path``, default ``on``). With it on, and
only when an inventory is named, this plugin registers its parts, each a plugin of its own:

- ``protocol``: a lean run protocol for inventory items, and pytest's failure summary kept
  linear in the number of items (passed set-up/teardown reports set aside while it runs);
- ``runloop``: an inventory-only run walks its items as their probes finish
  (``--autoglm-order``), with the short summary sorted back into inventory order;
- ``xdist``: an inventory-only run ignores ``-n`` (the options are restored at unconfigure); under
  ``--dist load`` a distributed run sends each worker whole targets (the one documented use of
  xdist's private API, see that module);
- ``gcfreeze``: ``gc.freeze()`` of what collection built and of the run's results, undone
  (``gc.unfreeze()``) when the config is cleaned up, after pytest's own gc passes.

With it off, none of them is registered: pytest's full protocol for every item, collection
order, pytest's own summary, xdist as the command line says, no gc freeze. Verdicts and
reports are the same either way (``tests/plugin/test_fastpath.py`` compares them); only
time differs (docs/performance.md). Starting the probes ahead of the items is not part of
the fast path: it is what the plugin is (``plugin/prefetch.py``, public APIs only).

This module imports nothing heavy: a session that names no inventory loads no part.
"""

from __future__ import annotations

import pytest

OPTION = "--autoglm-fast-path"
INI = "autoglm_fast_path"
HELP = (
    "'on' (default): the plugin's shortcuts around pytest's and xdist's normal flow (lean item protocol, "
    "items walked as their probes finish, -n ignored by inventory-only runs, gc freeze); 'off': pytest's "
    "and xdist's own flow, same verdicts and reports, slower"
)

#: The parts, registered under these plugin names when the switch is on.
PARTS = {
    "autoglm-fastpath-protocol": "pytest_autoglm.plugin.fastpath.protocol",
    "autoglm-fastpath-runloop": "pytest_autoglm.plugin.fastpath.runloop",
    "autoglm-fastpath-xdist": "pytest_autoglm.plugin.fastpath.xdist",
    "autoglm-fastpath-gcfreeze": "pytest_autoglm.plugin.fastpath.gcfreeze",
}

_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autoglm", "network expectations (pytest-autoglm)")
    group.addoption(OPTION, metavar="on|off", default=None, help=HELP)
    parser.addini(INI, HELP, default=None)


def enabled(config: pytest.Config) -> bool:
    """The switch: the option, else the ini key, else on; anything else is a usage error."""
    value = config.getoption(OPTION, None)
    where = OPTION
    if value is None:
        value = config.getini(INI)
        where = f"ini key {INI}"
    if value in (None, ""):
        return True
    text = str(value).strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise pytest.UsageError(f"{where}: expected 'on' or 'off', got {value!r}")


def _names_an_inventory(config: pytest.Config) -> bool:
    return bool(config.getoption("--autoglm-target", None) or config.getini("autoglm_target"))


def pytest_configure(config: pytest.Config) -> None:
    """Register the parts (after the plugin's state is built, before xdist's trylast configure).

    Each part's own ``pytest_configure`` runs as it is registered (pytest replays it).
    """
    if not enabled(config) or not _names_an_inventory(config):
        return
    import importlib

    for name, module in PARTS.items():
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.register(importlib.import_module(module), name)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if enabled(config) or not _names_an_inventory(config):
        return []
    return [f"autoglm: fast path off ({OPTION} off): pytest's own protocol, item order and xdist distribution"]
