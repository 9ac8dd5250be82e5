"""Per-run state kept in ``config.stash`` (never as ad-hoc attributes on config).

Light on purpose: the entry point imports this module in every pytest session, so the
engine and inventory types it names are imported for type checkers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_autoglm.engine.runner import Engine, Runner
    from pytest_autoglm.errors import InventoryError
    from pytest_autoglm.inventory.plan import Check
    from pytest_autoglm.inventory.validate import LoadedInventory
    from pytest_autoglm.plugin.options import Options


@dataclass
class InventorySlot:
    """One ``--autoglm-target`` file: loaded, or the error that stops its collection."""

    path: Path
    position: int
    loaded: LoadedInventory | None = None
    error: InventoryError | None = None
    checks: list[Check] = field(default_factory=list)


@dataclass
class RunState:
    options: Options
    engine: Engine  # in this process: users' probe calls (and the inventory's items with --autoglm-engine thread)
    slots: list[InventorySlot]
    #: The inventory's items: a forked ProcessRunner, or with remote vantages a VantageRouter (None: ``engine``).
    runner: Runner | None = None
    #: Issue 17: the run's vantages other than ``local``, name -> execnet gateway spec, in order
    #: (empty: every check runs in this process). Filled from the inventories and ``--autoglm-vantage``.
    vantage_specs: dict[str, str] = field(default_factory=dict)

    @property
    def items(self) -> Runner:
        return self.runner if self.runner is not None else self.engine

    def slot_for(self, path: Path) -> InventorySlot | None:
        resolved = path.resolve()
        return next((s for s in self.slots if s.path.resolve() == resolved), None)

    @property
    def loaded(self) -> list[LoadedInventory]:
        return [s.loaded for s in self.slots if s.loaded is not None]


state_key = pytest.StashKey[RunState]()
#: The validated options, set in every session (a session that names no inventory has no RunState).
options_key = pytest.StashKey["Options"]()


def get_state(config: pytest.Config) -> RunState | None:
    """The run's state: set when an inventory is named, or once a test asked for the engine."""
    return config.stash.get(state_key, None)


def is_xdist_worker(config: pytest.Config) -> bool:
    """xdist documents ``workerinput`` as the way a worker knows it is one."""
    return hasattr(config, "workerinput")
