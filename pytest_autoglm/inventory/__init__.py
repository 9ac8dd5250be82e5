"""The inventory: loading, validation and the models (no pytest, no network).

The names below are imported on first use (a module ``__getattr__``): the options module
imports :mod:`.vantages` in sessions that may name no inventory, and must not pull in pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_autoglm.inventory.validate import LoadedInventory, load_inventory

__all__ = ["LoadedInventory", "load_inventory"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module("pytest_autoglm.inventory.validate"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
