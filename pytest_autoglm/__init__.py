"""pytest-autoglm: network expectations (DNS, TCP, TLS, HTTP, CORS) as pytest items.

Public API: the markers for your own tests, the inventory loader and the result vocabulary.

    from pytest_autoglm import tcp

    @tcp
    def test_ssh_closed(autoglm_target, autoglm_probe):
        assert autoglm_probe.tcp(autoglm_target, 22, "closed").passed

Importing this package imports nothing else: every pytest session in the environment loads
the plugin, and ``pytest_autoglm.inventory`` is usable without pytest. Each name below is
imported on first use (a module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

if TYPE_CHECKING:
    import pytest

    from pytest_autoglm.core.records import CheckResult, Verdict
    from pytest_autoglm.core.vocabulary import Layer, Outcome, Reason
    from pytest_autoglm.errors import AutoglmError, InventoryError
    from pytest_autoglm.inventory.validate import LoadedInventory, load_inventory

    dns: pytest.MarkDecorator
    tcp: pytest.MarkDecorator
    tls: pytest.MarkDecorator
    http: pytest.MarkDecorator
    cors: pytest.MarkDecorator

#: Where each lazy public name lives.
_LAZY = {
    "AutoglmError": "pytest_autoglm.errors",
    "InventoryError": "pytest_autoglm.errors",
    "LoadedInventory": "pytest_autoglm.inventory.validate",
    "load_inventory": "pytest_autoglm.inventory.validate",
    "CheckResult": "pytest_autoglm.core.records",
    "Layer": "pytest_autoglm.core.vocabulary",
    "Outcome": "pytest_autoglm.core.vocabulary",
    "Reason": "pytest_autoglm.core.vocabulary",
    "Verdict": "pytest_autoglm.core.records",
}
#: The kind markers, ``pytest.mark.<kind>``.
_MARKERS = ("dns", "tcp", "tls", "http", "cors")


def __getattr__(name: str) -> Any:
    if name in _MARKERS:
        import pytest

        value: Any = getattr(pytest.mark, name)
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AutoglmError",
    "CheckResult",
    "InventoryError",
    "Layer",
    "LoadedInventory",
    "Outcome",
    "Reason",
    "Verdict",
    "__version__",
    "cors",
    "dns",
    "http",
    "load_inventory",
    "tcp",
    "tls",
]
