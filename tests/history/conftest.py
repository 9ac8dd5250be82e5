"""Fixtures of the history tests: stores on both backends and the real receiving servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_autoglm.history import HistoryStore, open_store
from tests.history import servers

#: The mocked clock's start: every run in these tests is stamped from it, not from the wall clock.
T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    reason = servers.postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with servers.postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> str:
    """A fresh database on the session's server."""
    return servers.create_database(postgres_admin_url, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives, on each backend in turn."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[HistoryStore]:
    with open_store(store_url, keep=timedelta(days=90)) as opened:
        yield opened


@pytest.fixture
def webhook() -> Iterator[servers.Webhook]:
    with servers.webhook_receiver() as hook:
        yield hook


@pytest.fixture
def mailbox() -> Iterator[servers.Mailbox]:
    with servers.smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
def pushgateway_url() -> Iterator[str]:
    reason = servers.pushgateway_unavailable()
    if reason:
        pytest.skip(reason)
    with servers.pushgateway() as url:
        yield url
