"""The inventory: loading, validation and the models (no pytest, no network)."""

from pytest_autoglm.inventory.validate import LoadedInventory, load_inventory

__all__ = ["LoadedInventory", "load_inventory"]
