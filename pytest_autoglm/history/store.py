"""Where history lives: an SQLite file (stdlib ``sqlite3``, WAL) or a PostgreSQL database (psycopg 3).

One ``HistoryStore`` per thread or process. Every write is one transaction that first takes
the environment's write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped
advisory lock), so two runs that end together are recorded one after the other and each sees
the other's state. SQL is written once with ``?`` placeholders; the PostgreSQL backend turns
them into ``%s``. Any driver or file error leaves as ``HistoryUnavailable`` naming the store.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import quote, urlsplit, urlunsplit

from pytest_autoglm.history.errors import HistoryUnavailable
from pytest_autoglm.history.models import iso

DEFAULT_KEEP = timedelta(days=90)
DEFAULT_BUSY_TIMEOUT = 10.0
#: Fix advice per kind of fault, appended to the one-line message.
CHOOSE_ANOTHER = "choose another store with --autoglm-history or turn it off with --autoglm-history none"

# Forward migrations: version -> statements. ``{serial}`` is the backend's auto-increment key.
# Never edit a released step; add the next one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE runs (
            id {serial},
            environment TEXT NOT NULL,
            vantage TEXT NOT NULL,
            inventory_digest TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            partial INTEGER NOT NULL,
            selection TEXT,
            recorded_at TEXT NOT NULL)""",
        "CREATE INDEX runs_env ON runs (environment, vantage, started_at)",
        """CREATE TABLE checks (
            key {serial},
            environment TEXT NOT NULL,
            vantage TEXT NOT NULL,
            check_id TEXT NOT NULL,
            target TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            consecutive_failures INTEGER NOT NULL,
            consecutive_passes INTEGER NOT NULL,
            episode INTEGER NOT NULL,
            episode_started TEXT,
            fired_at TEXT,
            last_change TEXT,
            last_letter TEXT,
            recent TEXT NOT NULL,
            facts TEXT NOT NULL,
            last_run_id INTEGER,
            last_seen TEXT NOT NULL,
            UNIQUE (environment, vantage, check_id))""",
        """CREATE TABLE results (
            run_id INTEGER NOT NULL,
            check_key INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT,
            layer TEXT,
            attempts INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            address TEXT,
            facts TEXT,
            PRIMARY KEY (run_id, check_key)){without_rowid}""",
        """CREATE TABLE notifications (
            id {serial},
            environment TEXT NOT NULL,
            vantage TEXT NOT NULL,
            check_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            episode INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            status TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            run_id INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            error TEXT,
            UNIQUE (environment, vantage, check_id, kind, episode, seq))""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


class Cursor(Protocol):
    """The part of a DB-API cursor both drivers share and this package uses."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Any, /) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class Tx:
    """One open transaction: ``?``-style SQL, rows as tuples."""

    def __init__(self, cursor: Cursor, postgres: bool) -> None:
        self._cursor = cursor
        self._postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(self._sql(sql), tuple(params))
        return self._cursor.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        """Insert many rows (``tail``: an ``ON CONFLICT`` clause).

        PostgreSQL takes them by ``COPY`` into a temporary table and one ``INSERT ... SELECT``:
        row-by-row inserts of a 10,000-check run cost seconds there.
        """
        if not rows:
            return
        names = ", ".join(columns)
        if not self._postgres:
            marks = ", ".join("?" for _ in columns)
            self._cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {tail}", rows)
            return
        cursor: Any = self._cursor
        cursor.execute(f"CREATE TEMP TABLE bulk_{table} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA")
        with cursor.copy(f"COPY bulk_{table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM bulk_{table} {tail}")
        cursor.execute(f"DROP TABLE bulk_{table}")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._sql(sql), tuple(params))
        return [tuple(r) for r in self._cursor.fetchall()]

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        """Insert one row and return its ``id``."""
        self._cursor.execute(self._sql(sql + " RETURNING id"), tuple(params))
        return int(self._cursor.fetchone()[0])


class HistoryStore:
    """An open history store. Use ``open_store``; close it (or use it as a context manager)."""

    kind: str
    name: str

    def __init__(self, name: str, keep: timedelta) -> None:
        self.name = name
        self.keep = keep

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    @contextmanager
    def transaction(self, lock: str | None) -> Iterator[Tx]:
        """One transaction; with ``lock`` (an environment's name) it holds that write lock until commit.

        Without a lock it is a reader's transaction: it never waits for a writer.
        """
        raise NotImplementedError
        yield  # pragma: no cover

    def unavailable(self, exc: BaseException) -> HistoryUnavailable:
        return HistoryUnavailable(f"history store {self.name}: {exc}; {CHOOSE_ANOTHER}")

    def migrate(self) -> int:
        """Apply the forward migrations this store lacks; return the schema version.

        An up-to-date store is only read (no write lock), so opening never waits for a running writer.
        """
        with self.transaction(None) as tx:
            exists = tx.rows(self.dialect("{table_exists}"), ("schema_version",))
            if exists and int(tx.rows("SELECT MAX(version) FROM schema_version")[0][0] or 0) == SCHEMA_VERSION:
                return SCHEMA_VERSION
        with self.transaction("schema") as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            found = tx.rows("SELECT MAX(version) FROM schema_version")[0][0]
            current = int(found or 0)
            if current > SCHEMA_VERSION:
                raise HistoryUnavailable(
                    f"history store {self.name}: schema version {current} is newer than this pytest-autoglm "
                    f"knows ({SCHEMA_VERSION}); upgrade pytest-autoglm or {CHOOSE_ANOTHER}"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    tx.execute(self.dialect(statement))
                tx.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, iso(datetime.now(UTC))),
                )
            return SCHEMA_VERSION

    def dialect(self, statement: str) -> str:
        raise NotImplementedError

    def schema_version(self) -> int:
        with self.transaction(None) as tx:
            return int(tx.rows("SELECT MAX(version) FROM schema_version")[0][0] or 0)


# --------------------------------------------------------------------------- SQLite


def _sqlite_advice(exc: BaseException, busy_timeout: float) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"{text} (another run held it longer than the busy timeout of {busy_timeout:g}s); rerun later"
    if "readonly" in text or "read-only" in text:
        return f"{text}; make the file and its folder writable"
    if "not a database" in text or "malformed" in text:
        return f"{text}; move the file aside (a new store is made in its place)"
    if "unable to open" in text:
        return f"{text}; check that its folder exists and is writable"
    return text


class SqliteStore(HistoryStore):
    kind = "sqlite"

    def __init__(self, target: str, name: str, keep: timedelta, busy_timeout: float, uri: bool) -> None:
        super().__init__(name, keep)
        self.busy_timeout = busy_timeout
        try:
            self._conn = sqlite3.connect(
                target, timeout=busy_timeout, isolation_level=None, uri=uri, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
            self._conn.execute("PRAGMA cache_size = -32000")  # 32 MB: a 10,000-check run's pages stay cached
        except sqlite3.Error as exc:
            raise HistoryUnavailable(
                f"history store {name}: {_sqlite_advice(exc, busy_timeout)}; {CHOOSE_ANOTHER}"
            ) from exc

    def close(self) -> None:
        self._conn.close()

    def unavailable(self, exc: BaseException) -> HistoryUnavailable:
        return HistoryUnavailable(
            f"history store {self.name}: {_sqlite_advice(exc, self.busy_timeout)}; {CHOOSE_ANOTHER}"
        )

    def dialect(self, statement: str) -> str:
        return statement.format(
            serial="INTEGER PRIMARY KEY AUTOINCREMENT",
            without_rowid=" WITHOUT ROWID",
            table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        )

    @contextmanager
    def transaction(self, lock: str | None) -> Iterator[Tx]:
        cursor = self._conn.cursor()
        try:
            # A writer takes the lock now, not at its first write: no lock upgrade, no deadlock.
            cursor.execute("BEGIN" if lock is None else "BEGIN IMMEDIATE")
        except (sqlite3.Error, OSError) as exc:
            raise self.unavailable(exc) from exc
        try:
            yield Tx(cursor, postgres=False)
            cursor.execute("COMMIT")
        except BaseException as exc:
            try:
                cursor.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the failed statement may have rolled back already
            if isinstance(exc, sqlite3.Error | OSError):
                raise self.unavailable(exc) from exc
            raise
        finally:
            cursor.close()


# --------------------------------------------------------------------------- PostgreSQL


def _mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (messages, logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class PostgresStore(HistoryStore):
    kind = "postgresql"

    def __init__(self, url: str, keep: timedelta, busy_timeout: float, connect_timeout: float) -> None:
        super().__init__(_mask_url(url), keep)
        self.busy_timeout = busy_timeout
        try:
            import psycopg
        except ImportError as exc:
            raise HistoryUnavailable(
                f"history store {self.name}: psycopg is not installed; "
                f"pip install 'pytest-autoglm[history-postgres]' or {CHOOSE_ANOTHER}"
            ) from exc
        self._psycopg = psycopg
        try:
            self._conn = psycopg.connect(
                url,
                connect_timeout=max(1, round(connect_timeout)),
                options=f"-c lock_timeout={int(busy_timeout * 1000)}",
            )
        except psycopg.Error as exc:
            raise HistoryUnavailable(
                f"history store {self.name}: cannot connect ({_first_line(exc)}); "
                f"check that the server is up and the URL is right, or {CHOOSE_ANOTHER}"
            ) from exc

    def close(self) -> None:
        self._conn.close()

    def unavailable(self, exc: BaseException) -> HistoryUnavailable:
        text = _first_line(exc)
        if "lock timeout" in text:
            text += f" (another run held the lock longer than the busy timeout of {self.busy_timeout:g}s); rerun later"
        elif "read-only" in text or "permission denied" in text:
            text += "; grant this user write access to the database"
        return HistoryUnavailable(f"history store {self.name}: {text}; {CHOOSE_ANOTHER}")

    def dialect(self, statement: str) -> str:
        return statement.format(
            serial="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            without_rowid="",
            table_exists="SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_name = ?",
        )

    @contextmanager
    def transaction(self, lock: str | None) -> Iterator[Tx]:
        psycopg = self._psycopg
        try:
            with self._conn.transaction(), self._conn.cursor() as cursor:
                if lock is not None:  # one lock per environment (and one for the schema): writers queue here
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(lock.encode()),))
                yield Tx(cursor, postgres=True)
        except (psycopg.Error, OSError) as exc:
            raise self.unavailable(exc) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- opening


def open_store(
    url_or_path: str | Path,
    *,
    keep: timedelta = DEFAULT_KEEP,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    connect_timeout: float = 5.0,
) -> HistoryStore:
    """Open (creating and migrating as needed) the store a URL or path names.

    ``postgresql://...`` (or ``postgres://``): PostgreSQL via psycopg 3. ``sqlite:///relative.db``,
    ``sqlite:////absolute.db`` (with an optional ``?mode=ro`` style query passed to SQLite), or a
    plain path: an SQLite file. Raises ``HistoryUnavailable`` when the store cannot be used.
    """
    if keep <= timedelta(0):
        raise ValueError("keep must be positive")
    text = str(url_or_path)
    store: HistoryStore
    if re.match(r"postgres(ql)?://", text):
        store = PostgresStore(text, keep, busy_timeout, connect_timeout)
    else:
        uri = False
        target = text
        if text.startswith("sqlite://"):
            rest = text[len("sqlite://") :]
            if not rest.startswith("/"):
                raise HistoryUnavailable(f"history store {text}: write sqlite:///relative/path or sqlite:////abs/path")
            path, _, query = rest[1:].partition("?")
            uri, target = True, f"file:{quote(path)}" + (f"?{query}" if query else "")
            text = path
        store = SqliteStore(target, text, keep, busy_timeout, uri)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
