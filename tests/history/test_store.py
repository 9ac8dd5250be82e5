"""The store itself: URLs, migrations, retention, one transaction per run, concurrency, faults."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_autoglm.history import (
    SCHEMA_VERSION,
    CheckRecord,
    HistoryStore,
    HistoryUnavailable,
    RunRecord,
    open_store,
    record_run,
)
from pytest_autoglm.history.recorder import keep_from_text
from tests.history import servers
from tests.history.conftest import DAY, T0


def run(day: int, env: str = "prod") -> RunRecord:
    return RunRecord(env, T0 + day * DAY, T0 + day * DAY)


def checks(n: int, letter: str = "P") -> list[CheckRecord]:
    return [CheckRecord(f"tcp[prod:t{i}:443/open]", letter, target=f"t{i}", check="tcp") for i in range(n)]  # type: ignore[arg-type]


def count(store: HistoryStore, table: str) -> int:
    with store.transaction("test") as tx:
        return int(tx.rows(f"SELECT COUNT(*) FROM {table}")[0][0])


def test_urls_and_schema_version(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a.sqlite"), f"sqlite:///{tmp_path}/b.sqlite", tmp_path / "c.sqlite"):
        with open_store(url) as store:
            assert store.kind == "sqlite" and store.schema_version() == SCHEMA_VERSION
        with open_store(url) as store:  # reopening migrates nothing twice
            assert count(store, "schema_version") == 1
    with sqlite3.connect(tmp_path / "a.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'x')", (SCHEMA_VERSION + 1,))
    with pytest.raises(HistoryUnavailable, match=r"schema version \d+ is newer .* upgrade pytest-autoglm"):
        open_store(path)


def test_retention_drops_old_runs(store: HistoryStore) -> None:
    store.keep = timedelta(days=10)
    for day in (0, 5, 9):
        record_run(store, run(day), checks(3))
    assert count(store, "runs") == 3
    record_run(store, run(14), checks(2))  # the day-0 run and the vanished check t2 age out
    assert count(store, "runs") == 3 and count(store, "results") == 3 + 3 + 2
    record_run(store, run(40), checks(2))
    assert count(store, "runs") == 1 and count(store, "checks") == 2 and count(store, "results") == 2


def test_keep_from_text() -> None:
    assert keep_from_text("90d") == timedelta(days=90) and keep_from_text("12h") == timedelta(hours=12)
    for bad in ("0d", "90", "d", "-1d", "1y"):
        with pytest.raises(ValueError, match="retention"):
            keep_from_text(bad)


def test_one_transaction_per_run(tmp_path: Path) -> None:
    """A failure halfway through (here: a trigger aborting one check's insert) stores nothing of the run."""
    path = tmp_path / "h.sqlite"
    with open_store(path) as store:
        record_run(store, run(0), checks(3))
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON results WHEN NEW.check_key = 3 BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        with pytest.raises(HistoryUnavailable, match=f"history store {path}: boom"):
            record_run(store, run(1), checks(3, "F"))
        assert count(store, "runs") == 1 and count(store, "results") == 3
        with store.transaction("t") as tx:
            assert {r[0] for r in tx.rows("SELECT recent FROM checks")} == {"P"}


def test_two_overlapping_runs_in_threads_are_both_recorded(store_url: str) -> None:
    barrier = threading.Barrier(2)
    results: dict[int, int] = {}

    def one(day: int) -> None:
        with open_store(store_url) as store:
            barrier.wait()
            results[day] = record_run(store, run(day), checks(200, "F")).run_id

    threads = [threading.Thread(target=one, args=(d,)) for d in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2
    with open_store(store_url) as store:
        assert count(store, "runs") == 2 and count(store, "results") == 400
        with store.transaction("t") as tx:
            assert {r[0] for r in tx.rows("SELECT consecutive_failures FROM checks")} == {2}


def test_two_processes_write_one_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    open_store(path).close()
    script = (
        "import sys; from tests.history.test_store import run, checks;"
        "from pytest_autoglm.history import open_store, record_run;"
        "s = open_store(sys.argv[1]); [record_run(s, run(int(sys.argv[2]) * 10 + i), checks(300)) for i in range(5)]"
    )
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(k)], cwd=root) for k in (1, 2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    with open_store(path) as store:
        assert count(store, "runs") == 10 and count(store, "results") == 3000


def test_locked_store_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    open_store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with open_store(path, busy_timeout=0.2) as store, pytest.raises(HistoryUnavailable) as info:
            record_run(store, run(0), checks(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "database is locked" in message and "busy timeout of 0.2s" in message


def test_read_only_store(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with open_store(path) as store:
        record_run(store, run(0), checks(1))
    readonly = "readonly database; make the file and its folder writable"
    with pytest.raises(HistoryUnavailable, match=readonly), open_store(f"sqlite:///{path}?mode=ro") as store:
        record_run(store, run(1), checks(1))
    if os.geteuid() != 0:  # root ignores file modes
        path.chmod(0o444)
        with pytest.raises(HistoryUnavailable, match="readonly"), open_store(path) as store:
            record_run(store, run(1), checks(1))


def test_corrupt_store(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is no database, just text\n" * 200)
    with pytest.raises(HistoryUnavailable, match=r"file is not a database; move the file aside") as info:
        open_store(path)
    assert "--autoglm-history none" in str(info.value)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(HistoryUnavailable, match="unable to open database file; check that its folder exists"):
        open_store(tmp_path / "nope" / "h.sqlite")


def test_unreachable_postgres_masks_the_password() -> None:
    url = f"postgresql://nightly:s3cret@127.0.0.1:{servers.free_port()}/history"
    with pytest.raises(HistoryUnavailable) as info:
        open_store(url, connect_timeout=2)
    message = str(info.value)
    assert "s3cret" not in message and "postgresql://nightly:***@127.0.0.1" in message
    assert "cannot connect" in message and "check that the server is up" in message and "\n" not in message


def test_postgres_store_reopens(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        assert store.kind == "postgresql" and store.schema_version() == SCHEMA_VERSION
        record_run(store, run(0), checks(5))
    with open_store(postgres_url) as store:
        assert count(store, "schema_version") == 1 and count(store, "results") == 5


def test_locked_postgres_store(postgres_url: str) -> None:
    """Another session holds the environment's lock past the lock timeout: one line, nothing written."""
    import zlib

    import psycopg

    with open_store(postgres_url, busy_timeout=0.3) as store:
        with psycopg.connect(postgres_url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(b"env:prod:local"),))
            with pytest.raises(HistoryUnavailable, match=r"lock timeout \(another run held the lock .* 0.3s\)") as info:
                record_run(store, run(0), checks(1))
        assert "\n" not in str(info.value)
        assert count(store, "runs") == 0
