"""The project's own top-level test configuration.

The plugin itself loads through its pytest11 entry point (``pip install -e .``), exactly as
users get it. This file holds the fixtures shared by every test package; pytester is enabled
in pyproject.toml (``-p pytester``) because a conftest that declares ``pytest_plugins`` breaks
runs that collect an inventory below this folder from another working directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.netns import NetnsLab, NetnsUnavailable, netns_prerequisites, standard_lab


@pytest.fixture(scope="session")
def netns_lab() -> Iterator[NetnsLab]:
    """One standard lab (``tests.fakes.netns.STANDARD_PORTS``) for the session.

    Skips, with the reason, where it cannot be built (not root, no ``ip``/``nft``,
    namespaces not permitted in this container).
    """
    reason = netns_prerequisites()
    if reason:
        pytest.skip(reason)
    lab = standard_lab()
    try:
        lab.__enter__()
    except NetnsUnavailable as exc:
        pytest.skip(f"cannot build the network namespace lab: {exc}")
    try:
        yield lab
    finally:
        lab.close()
