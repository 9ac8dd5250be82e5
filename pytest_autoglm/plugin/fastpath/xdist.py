"""Fast path, part ``xdist``: an inventory-only run ignores ``-n``; a distributed one sends
each worker whole targets. The one place that uses pytest-xdist's private API.

1. **An inventory-only run ignores ``-n``** unless ``--autoglm-distribute`` is given: the
   engine already has every probe of the run in flight in one process, while each xdist worker
   starts pytest again and the controller handles six messages per item one after another,
   which costs more per item than the whole check costs in one process (docs/performance.md).
   A run with Python tests keeps its workers. The rewrite of ``config.option`` (``dist``,
   ``tx``, ``numprocesses``) is made before xdist's own (trylast) ``pytest_configure`` reads
   it, said in the header, and put back at ``pytest_unconfigure``.
2. **Under ``--dist load``, each worker gets whole targets**, dealt round-robin by
   :func:`~pytest_autoglm.plugin.prefetch.group_names`, all at once, so that each worker starts
   exactly its share of the probes at once (``plugin/prefetch.py``: the worker is told through
   ``workerinput``) and a check's lower layers are in the same process. Without it, xdist may
   send any item to any worker, and every worker has to probe every check.

**The private use (pytest-xdist; verified with 3.8.0, the version this was measured with).**
xdist's public way to keep tests together, ``--dist loadgroup`` with ``xdist_group`` marks,
does not group on pytest 9.2 (it writes the node id's old private field: pytest-xdist issue
1386), and xdist has no other documented way to choose a test's worker. So rewrite 2 returns a
scheduler from the documented ``pytest_xdist_make_scheduler`` hook that subclasses
``xdist.scheduler.LoadScheduling`` and uses its private ``_check_nodes_have_same_collection``,
``node2collection`` and ``node2pending``; any crash or worker replacement falls back to
xdist's own rescheduling. ``tests/plugin/test_fastpath.py::test_the_xdist_privates_of_the_partition_scheduler``
fails loudly when one of them changes (and the behaviour is tested by
``test_xdist_workers_probe_only_their_share``); ``--autoglm-fast-path off`` avoids it
entirely (each worker then probes every check; same verdicts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_autoglm.plugin.prefetch import PARTITION_KEY, group_names, partitioned_key
from pytest_autoglm.plugin.state import get_state, is_xdist_worker

#: The private attributes of ``xdist.scheduler.LoadScheduling`` the partition scheduler uses.
XDIST_PRIVATES = ("_check_nodes_have_same_collection", "node2collection", "node2pending")

#: ``config.option`` values as they were before the ``-n`` rewrite, and the header line that says so.
_saved = pytest.StashKey[dict[str, Any]]()
_said = pytest.StashKey[str]()

_CHECK_NODE = re.compile(r"::(?:dns|tcp|tls|http|cors)\[([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]+):")


def partition(nodeids: Sequence[str], workers: int) -> list[int]:
    """The worker number of each item: one target's items together (as
    :func:`~pytest_autoglm.plugin.prefetch.group_names` deals them), other tests round-robin."""
    targets = [(m[1], m[2]) for m in map(_CHECK_NODE.search, nodeids) if m]
    groups = iter(group_names(targets, workers))
    others = 0
    out: list[int] = []
    for nodeid in nodeids:
        if _CHECK_NODE.search(nodeid):
            out.append(int(next(groups).rsplit("-", 1)[1]))
        else:
            out.append(others % workers)
            others += 1
    return out


def worker_number(workerid: str) -> int | None:
    return int(workerid[2:]) if workerid.startswith("gw") and workerid[2:].isdigit() else None


def _partitioning(config: pytest.Config) -> bool:
    """On the controller: whether this run sends whole targets to each worker."""
    targets = config.getoption("--autoglm-target") or config.getini("autoglm_target")
    return config.getoption("dist", None) == "load" and bool(targets)


def inventory_only(config: pytest.Config) -> bool:
    """Whether this session collects nothing but its inventories (see collect.pytest_configure)."""
    state = get_state(config)
    if state is None or not state.slots:
        return False
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    inventories = {slot.path.resolve() for slot in state.slots}
    return all((config.invocation_params.dir / arg.split("::")[0]).resolve() in inventories for arg in config.args)


def _rewrite(config: pytest.Config, said: str, **values: Any) -> None:
    config.stash[_saved] = {name: getattr(config.option, name, None) for name in values}
    config.stash[_said] = said
    for name, value in values.items():
        setattr(config.option, name, value)


def pytest_configure(config: pytest.Config) -> None:
    """Rewrite xdist's options before xdist's own (trylast) configure reads them."""
    dist = config.getoption("dist", "no")
    if dist == "no" or not config.getoption("tx", None) or config.option.collectonly or is_xdist_worker(config):
        return
    state = get_state(config)  # set by configure.pytest_configure (tryfirst)
    if state is None or not state.slots:
        return
    if not state.options.distribute and inventory_only(config):
        workers = config.getoption("numprocesses", None)
        used = f"-n {workers}" if workers else "--tx"
        said = (
            f"autoglm: xdist ({used}) not used: this run checks only inventories, and one process already has "
            "every probe in flight (faster than workers; --autoglm-distribute splits it anyway)"
        )
        _rewrite(config, said, dist="no", tx=[], numprocesses=0)
    elif _partitioning(config):
        config.stash[partitioned_key] = True


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each worker (xdist's documented ``workerinput`` channel) that it gets whole targets."""
    if _partitioning(node.config):
        node.workerinput[PARTITION_KEY] = True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if not _partitioning(config):
        return None
    from xdist.scheduler import LoadScheduling  # type: ignore[import-untyped]

    class TargetPartitionScheduling(LoadScheduling):  # type: ignore[misc]
        """All items sent at once, by :func:`partition`; crashes fall back to xdist's own rescheduling."""

        collection: list[str] | None

        def schedule(self) -> None:
            assert self.collection_is_completed
            numbers: dict[int | None, Any] = {worker_number(node.gateway.id): node for node in self.nodes}
            if self.collection is not None or set(numbers) != set(range(len(numbers))):
                super().schedule()
                return
            if not self._check_nodes_have_same_collection():  # private (see the module docstring)
                self.log("**Different tests collected, aborting run**")
                return
            collection: list[str] = next(iter(self.node2collection.values()))  # private
            self.collection = collection
            shares: dict[int | None, list[int]] = {n: [] for n in numbers}
            for index, worker in enumerate(partition(collection, len(numbers))):
                shares[worker].append(index)
            for number, node in numbers.items():
                if shares[number]:
                    self.node2pending[node].extend(shares[number])  # private
                    node.send_runtest_some(shares[number])
                node.shutdown()

    return TargetPartitionScheduling(config, log)


def pytest_report_header(config: pytest.Config) -> list[str]:
    said = config.stash.get(_said, None)
    return [said] if said else []


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Put xdist's options back as the command line gave them."""
    for name, value in config.stash.get(_saved, {}).items():
        setattr(config.option, name, value)
