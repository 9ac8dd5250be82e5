"""pytest-xdist integration: inventory-only runs stay in one process; in other runs each
worker probes only the targets it will report.

An inventory-only run (no Python tests collected beside the inventories) ignores ``-n``
unless ``--autoglm-distribute`` is given: the engine already has every probe of the run in
flight in one process, while each xdist worker starts pytest again and the controller
handles six messages per item one after another, which costs more per item than the whole
check costs in one process (docs/performance.md has the figures). A run with Python tests
keeps its workers.

When workers run inventory items, each would otherwise start the probes of every selected
item (xdist sends items to workers a few at a time, so a worker cannot know its share in
advance), and ``-n 2`` would send every probe twice. Instead, with ``--dist load`` (xdist's
default), the controller sends all checks of one target to one worker, chosen by a
partition that workers compute from the same collection, so each worker prefetches exactly
its share and a check's lower-layer dependencies (always of the same target) run beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_autoglm.plugin.state import get_state, is_xdist_worker

_CHECK_NODE = re.compile(r"::(?:dns|tcp|tls|http|cors)\[([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]+):")


def partition(nodeids: Sequence[str], workers: int) -> list[int]:
    """The worker number of each item: one target's checks together, targets and other tests round-robin."""
    groups: dict[tuple[str, str], int] = {}
    others = 0
    out: list[int] = []
    for nodeid in nodeids:
        match = _CHECK_NODE.search(nodeid)
        if match:
            key = (match[1], match[2])
            if key not in groups:
                groups[key] = len(groups) % workers
            out.append(groups[key])
        else:
            out.append(others % workers)
            others += 1
    return out


def worker_number(workerid: str) -> int | None:
    return int(workerid[2:]) if workerid.startswith("gw") and workerid[2:].isdigit() else None


#: Set by the controller in each worker's ``workerinput`` when it distributes by :func:`partition`.
PARTITION_FLAG = "autoglm_partition"


def _partitioning(config: pytest.Config) -> bool:
    """On the controller: whether this run distributes by target."""
    targets = config.getoption("--autoglm-target") or config.getini("autoglm_target")
    return config.getoption("dist", None) == "load" and bool(targets)


def my_share(config: pytest.Config, nodeids: Sequence[str]) -> set[int] | None:
    """On a worker of a partitioned run: the indices of the items this worker runs (None: unknown)."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    number = worker_number(str(workerinput.get("workerid", "")))
    count = int(workerinput.get("workercount", 0) or 0)
    if number is None or count < 1 or not workerinput.get(PARTITION_FLAG):
        return None
    return {i for i, worker in enumerate(partition(nodeids, count)) if worker == number}


#: The ``-n`` value an inventory-only run did not use (for the report header).
_unused_workers = pytest.StashKey[str]()


def inventory_only(config: pytest.Config) -> bool:
    """Whether this session collects nothing but its inventories (see collect.pytest_configure)."""
    state = get_state(config)
    if state is None or not state.slots:
        return False
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    inventories = {slot.path.resolve() for slot in state.slots}
    return all((config.invocation_params.dir / arg.split("::")[0]).resolve() in inventories for arg in config.args)


def pytest_configure(config: pytest.Config) -> None:
    """Turn xdist's distribution off for an inventory-only run, before xdist's own (trylast) configure."""
    if config.getoption("dist", "no") == "no" or not config.getoption("tx", None) or config.option.collectonly:
        return
    if is_xdist_worker(config):
        return
    state = get_state(config)  # set by configure.pytest_configure (tryfirst)
    if state is None or state.options.distribute or not inventory_only(config):
        return
    workers = config.getoption("numprocesses", None)
    config.stash[_unused_workers] = f"-n {workers}" if workers else "--tx"
    config.option.dist = "no"
    config.option.tx = []
    config.option.numprocesses = 0


def pytest_report_header(config: pytest.Config) -> list[str]:
    workers = config.stash.get(_unused_workers, None)
    if workers is None:
        return []
    line = (
        f"autoglm: xdist ({workers}) not used: this run checks only inventories, and one process already has every probe "
        "in flight (faster than workers; --autoglm-distribute splits it anyway)"
    )
    return [line]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each worker (xdist's documented ``workerinput`` channel) that it gets whole targets."""
    if _partitioning(node.config):
        node.workerinput[PARTITION_FLAG] = True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if not _partitioning(config):
        return None
    from xdist.scheduler import LoadScheduling

    class TargetPartitionScheduling(LoadScheduling):  # type: ignore[misc]
        """All items sent at once, by :func:`partition`; crashes fall back to xdist's own rescheduling."""

        def schedule(self) -> None:
            assert self.collection_is_completed
            numbers = {worker_number(node.gateway.id): node for node in self.nodes}
            if self.collection is not None or set(numbers) != set(range(len(numbers))):
                super().schedule()
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = next(iter(self.node2collection.values()))
            shares: dict[int, list[int]] = {n: [] for n in numbers}
            for index, worker in enumerate(partition(self.collection, len(numbers))):
                shares[worker].append(index)
            for number, node in numbers.items():
                if shares[number]:
                    self.node2pending[node].extend(shares[number])
                    node.send_runtest_some(shares[number])
                node.shutdown()

    return TargetPartitionScheduling(config, log)
