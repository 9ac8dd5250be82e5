"""Inventory files as pytest collectors, one :class:`CheckItem` per expectation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import Outcome
from pytest_autoglm.errors import InventoryError
from pytest_autoglm.gcpause import gc_paused
from pytest_autoglm.inventory.plan import Check, vantage_marker
from pytest_autoglm.inventory.secrets import Redactor
from pytest_autoglm.plugin.state import InventorySlot, get_state
from pytest_autoglm.reporting.diagnosis import render_diagnosis

result_key = pytest.StashKey[CheckResult]()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Make pytest collect the inventories: beside explicit paths, or alone when none were given."""
    state = get_state(config)
    if state is None or not state.slots:
        return
    inventories = [str(slot.path.resolve()) for slot in state.slots]
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = inventories
        return
    named = {str((config.invocation_params.dir / arg.split("::")[0]).resolve()) for arg in config.args}
    config.args = [*config.args, *(path for path in inventories if path not in named)]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> InventoryFile | None:
    state = get_state(parent.config)
    if state is None:
        return None
    slot = state.slot_for(file_path)
    if slot is None:
        return None
    return InventoryFile.from_parent(parent, path=file_path, slot=slot)


class CheckFailed(Exception):
    """An expectation did not hold (pytest reports 'failed')."""


class CheckError(Exception):
    """A check could not be carried out (pytest reports 'error')."""


class InventoryFile(pytest.File):
    """One ``--autoglm-target`` file; a bad inventory is a collection error without traceback."""

    def __init__(self, *, slot: InventorySlot, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slot = slot

    def collect(self) -> list[CheckItem]:
        if self.slot.error is not None:
            raise self.slot.error
        assert self.slot.loaded is not None
        redactor = self.slot.loaded.redactor
        # The node id given as a string: pytest 9.2 parses it like a parametrized id ("tcp" + "[...]"), as it
        # parses the ids --lf and --sw read back from the cache; built from the name, "tcp[...]" stays one
        # name and never matches them (--lf ran everything, --sw never skipped).
        with gc_paused():  # thousands of items that live to the end of the session (see gcpause)
            return [
                CheckItem.from_parent(
                    self, name=check.id, nodeid=f"{self.nodeid}::{check.id}", check=check, redactor=redactor
                )
                for check in self.slot.checks
            ]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, InventoryError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[return-value]


class CheckItem(pytest.Item):
    """One expectation of an inventory; its probe runs in the engine, started for all items at once."""

    def __init__(self, *, check: Check, redactor: Redactor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.redactor = redactor
        self.add_marker(str(check.kind))
        for tag in check.tags:
            self.add_marker(tag)
        if check.vantage is not None:  # issue 17: -m vantage_lan
            self.add_marker(vantage_marker(check.vantage))
        self.user_properties.append(("autoglm_severity", check.severity))

    def setup(self) -> None:
        state = get_state(self.config)
        assert state is not None
        result = state.items.result(self.check)
        self.stash[result_key] = result
        if result.layer is not None:
            self.user_properties.append(("autoglm_layer", str(result.layer)))
        if result.reason is not None:
            self.user_properties.append(("autoglm_reason", str(result.reason)))
        if result.outcome is Outcome.ERROR:
            raise CheckError(self.redactor(result.message))

    def runtest(self) -> None:
        result = self.stash[result_key]
        if result.outcome is Outcome.FAILED:
            raise CheckFailed(self.redactor(result.message))
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(self.redactor(result.message))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        result = self.stash.get(result_key, None)
        if isinstance(excinfo.value, CheckFailed | CheckError) and result is not None:
            return render_diagnosis(self.check, result, self.redactor)
        return self.redactor(str(super().repr_failure(excinfo, style=style)))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name  # a line is required: pytest asserts one when an item is skipped
