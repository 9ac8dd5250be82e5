"""Starting the probes before pytest walks the items: which checks each process starts, and when.

The engine probes every check of a process concurrently, so an item must not be the first
to ask for its result: its probe is started ahead, with the others. This is what the plugin
is, not a shortcut around pytest, so it runs whether the fast path is on or off
(``plugin/fastpath``), and it uses public pytest and pytest-xdist APIs only.

In one process (no xdist), every selected item's check starts at the start of the run loop.

An xdist worker does not know in advance which items the controller will send it. It starts
the probes of a whole *unit* when the first item of that unit reaches it, where a unit is what
xdist keeps together on one worker, by ``--dist`` mode:

- the fast path's partition (``plugin/fastpath/xdist.py``, under ``--dist load``) and
  ``loadgroup`` (with the ``xdist_group`` mark this module puts on each inventory item): the
  items of one target share a group, and targets are dealt round-robin into as many groups as
  there are workers, so each worker starts its whole share at once. (pytest-xdist 3.8 on
  pytest 9.2 does not group by mark: its issue 1386. Verdicts stay the same, as below.)
- ``loadscope``, ``loadfile``: the inventory file;
- anything else (``load``, ``worksteal``, ``each``): xdist keeps nothing together, so each worker
  starts every check of the session. Verdicts stay the same (a check's lower layers, which
  decide ``upstream``, are always in the same process), but every worker probes every check;
  the controller's header says so.

A worker re-parses the command line, so it cannot see the controller's options; the
controller tells it the ``--dist`` mode through ``workerinput`` (xdist's documented channel).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pytest

from pytest_autoglm.inventory.plan import Check
from pytest_autoglm.plugin.collect import CheckItem
from pytest_autoglm.plugin.state import get_state, is_xdist_worker

#: The controller's ``--dist`` mode, in each worker's ``workerinput``.
DIST_KEY = "autoglm_dist"
#: The prefix of the ``xdist_group`` names given to inventory items under ``--dist loadgroup``.
GROUP_PREFIX = "autoglm-"

#: Set in a worker's ``workerinput`` when the controller sends each worker whole targets by
#: :func:`group_names` (the fast path's scheduler, ``plugin/fastpath/xdist.py``).
PARTITION_KEY = "autoglm_partition"
PARTITION = "autoglm-partition"

_FILE_UNITS = ("loadscope", "loadfile")
_UNIT_MODES = (PARTITION, "loadgroup", *_FILE_UNITS)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """On the controller (xdist's documented hook): tell each worker the ``--dist`` mode."""
    node.workerinput[DIST_KEY] = node.config.getoption("dist", None)


def controller_dist(config: pytest.Config) -> str | None:
    """On a worker: the controller's ``--dist`` mode (None when not told, or not a worker)."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    if workerinput.get(PARTITION_KEY):
        return PARTITION
    dist = workerinput.get(DIST_KEY)
    return str(dist) if dist is not None else None


def group_names(targets: Sequence[tuple[str, str]], workers: int) -> list[str]:
    """The ``xdist_group`` name of each item, given its (environment, target): one target's
    items together, targets dealt round-robin into ``workers`` groups."""
    buckets: dict[tuple[str, str], int] = {}
    names = []
    for key in targets:
        bucket = buckets.setdefault(key, len(buckets) % max(workers, 1))
        names.append(f"{GROUP_PREFIX}{bucket}")
    return names


@pytest.hookimpl(tryfirst=True)  # before xdist's worker appends the group names to the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if controller_dist(config) != "loadgroup":
        return
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1) or 1)
    checks = [item for item in items if isinstance(item, CheckItem)]
    for item, name in zip(
        checks, group_names([(i.check.environment, i.check.target) for i in checks], workers), strict=True
    ):
        item.add_marker(pytest.mark.xdist_group(name))


def _marked_group(item: CheckItem) -> str:
    """The group xdist's ``loadgroup`` gives ``item`` (its ``xdist_group`` names, joined as xdist joins them)."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return "_".join(sorted(names))


def _units(items: list[CheckItem], dist: str, workers: int) -> dict[str, list[Check]]:
    """What xdist keeps together on one worker, by ``--dist`` mode (see the module docstring)."""
    if dist == PARTITION:
        names = group_names([(item.check.environment, item.check.target) for item in items], workers)
    elif dist == "loadgroup":
        names = [_marked_group(item) for item in items]
    else:
        names = [str(item.path) for item in items]
    units: dict[str, list[Check]] = {}
    for item, name in zip(items, names, strict=True):
        item.stash[_unit_key] = name
        units.setdefault(name, []).append(item.check)
    return units


#: On a worker that starts probes unit by unit: each unit's checks, the units started, each item's unit.
_units_key = pytest.StashKey[dict[str, list[Check]]]()
_started_key = pytest.StashKey[set[str]]()
_unit_key = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Start the probes before pytest walks the items (in any order).

    Here, not when collection ends: pytest calls ``pytest_collection_finish`` also for
    ``--fixtures`` and after a failed collection, and nothing may be probed then.
    """
    config = session.config
    state = get_state(config)
    option = config.option
    collection_failed = session.testsfailed and not option.continue_on_collection_errors  # pytest stops then
    if state is not None and not option.collectonly and not collection_failed:
        items = [item for item in session.items if isinstance(item, CheckItem)]
        dist = controller_dist(config) if is_xdist_worker(config) else None
        if dist in _UNIT_MODES:
            workers = int(getattr(config, "workerinput", {}).get("workercount", 1) or 1)
            config.stash[_units_key] = _units(items, dist, workers)
            config.stash[_started_key] = set()
        elif items:
            state.items.schedule([item.check for item in items])
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> None:
    """On a worker that starts probes unit by unit: the first item of a unit starts all of it."""
    units = item.config.stash.get(_units_key, None)
    if units is None or not isinstance(item, CheckItem):
        return
    unit = item.stash.get(_unit_key, "")
    started = item.config.stash[_started_key]
    state = get_state(item.config)
    if unit in started or state is None:
        return
    started.add(unit)
    state.items.schedule(units.get(unit, [item.check]))


#: Set on the controller by the fast path when its scheduler sends each worker whole targets.
partitioned_key = pytest.StashKey[bool]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say when xdist's distribution makes every worker probe every check."""
    state = get_state(config)
    dist = config.getoption("dist", "no")
    if state is None or not state.slots or is_xdist_worker(config) or not config.getoption("tx", None):
        return []
    if dist in ("no", "each", "loadgroup", *_FILE_UNITS) or config.option.collectonly:
        return []
    if config.stash.get(partitioned_key, False):
        return []
    line = (
        f"autoglm: with --dist {dist} any worker may get any item, so each worker probes every check (same "
        "verdicts, more traffic); --dist loadfile, or --dist load with the fast path on, probes each check once"
    )
    return [line]
