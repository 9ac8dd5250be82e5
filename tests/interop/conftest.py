"""Session fixtures of the interop suite: certificates, nginx, nsd + unbound (one set per xdist worker).

Every fixture is session-scoped, so with ``-n 2`` each worker that runs an
interop test builds its own set: its own temporary folder (``tmp_path_factory``
is per worker), its own free loopback ports, its own daemons, stopped by PID
when the worker's session ends. A missing daemon or a non-root user skips the
tests that need it, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.daemons import DaemonFailed, missing_tool
from tests.interop.dns_lab import DnsLab, dns_lab
from tests.interop.nginx_lab import NginxLab, Pki, make_pki, nginx_lab


@pytest.fixture(scope="session")
def interop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("interop")


@pytest.fixture(scope="session")
def interop_pki(interop_dir: Path) -> Pki:
    return make_pki(interop_dir / "pki")


@pytest.fixture(scope="session")
def nginx(interop_dir: Path, interop_pki: Pki) -> Iterator[NginxLab]:
    reason = missing_tool("nginx", "openssl", "curl")
    if reason:
        pytest.skip(reason)
    try:
        with nginx_lab(interop_dir / "web", interop_pki) as lab:
            yield lab
    except DaemonFailed as exc:
        pytest.skip(f"nginx could not be started: {exc}")


@pytest.fixture(scope="session")
def dns_stack(interop_dir: Path, interop_pki: Pki) -> Iterator[DnsLab]:
    reason = missing_tool("nsd", "unbound", "dig")
    if reason:
        pytest.skip(reason)
    assert interop_pki.dot is not None
    cert, key = interop_pki.dot
    try:
        with dns_lab(interop_dir / "dns", cert, key, interop_pki.root_pem) as lab:
            yield lab
    except DaemonFailed as exc:
        pytest.skip(f"nsd/unbound could not be started: {exc}")
