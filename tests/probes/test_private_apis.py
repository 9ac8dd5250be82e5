"""The private library names the probes rely on, each a documented exception: this fails loudly when one moves."""

from __future__ import annotations

import importlib

import anyio

from pytest_autoglm.probes.dns import transport as dns


def test_anyio_asyncio_backend_module_still_exists() -> None:
    """dns.ANYIO_ASYNCIO_BACKEND is imported ahead of time (see its comment). If this fails after an anyio
    upgrade, find the module anyio now loads for asyncio and update the constant (or drop the pre-import)."""
    module = importlib.import_module(dns.ANYIO_ASYNCIO_BACKEND)
    assert module.__name__.startswith("anyio."), anyio.__file__


def test_no_other_private_library_module_is_imported() -> None:
    """OpenSSL._util used to give verification texts; probes.errmap has a static table now."""
    import pathlib

    import pytest_autoglm

    root = pathlib.Path(pytest_autoglm.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for part in ("core", "inventory", "probes", "engine")
        for path in (root / part).rglob("*.py")
        if "OpenSSL._util" in path.read_text(encoding="utf-8") or "import anyio._" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
