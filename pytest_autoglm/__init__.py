"""pytest-autoglm: network expectations (DNS, TCP, TLS, HTTP, CORS) as pytest items.

Public API: the markers for your own tests, the inventory loader and the result vocabulary.

    from pytest_autoglm import tcp

    @tcp
    def test_ssh_closed(target, probe):
        assert probe.tcp(target, 22, "closed").passed
"""

import pytest

from pytest_autoglm.errors import AutoglmError, InventoryError
from pytest_autoglm.inventory.validate import LoadedInventory, load_inventory
from pytest_autoglm.core.records import CheckResult, Verdict
from pytest_autoglm.core.vocabulary import Layer, Outcome, Reason

__version__ = "0.1.0"

dns = pytest.mark.dns
tcp = pytest.mark.tcp
tls = pytest.mark.tls
http = pytest.mark.http
cors = pytest.mark.cors

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
