"""One SQLite database shared by the packages that persist state (alerts, silences, outbox):
the default `actors.store.interface.Store`, for one process.

Choices, and why:
- WAL journal: readers never block the writer, and a commit is one append to the WAL.
- `synchronous=FULL` by default: in WAL mode NORMAL survives a process crash (kill -9) but may
  lose the last commits on power loss or an OS crash. The outbox promises that a notification is
  durable *before* its first attempt, so every commit is fsynced. The cost was measured on the
  development disk at ~0.19 ms per commit (NORMAL: ~0.02 ms); at notification and alert-transition
  rates this is negligible. Pass `synchronous="NORMAL"` where the trade is acceptable.
- One connection, one writer: every statement runs under one `trio.Lock`, so transactions never
  interleave. Statements run in a worker thread (`trio.to_thread.run_sync`, `offload=True`, the
  default) because an fsync on a busy disk can take milliseconds and must not stall the event
  loop that serves probes; the hop costs ~0.15 ms per call (measured), which the write rates here
  easily afford. `offload=False` runs statements inline on the trio thread (for benchmarks and
  small tools).
- Migrations per owner: each package registers its own ordered list of SQL scripts under its own
  name (`migrate("notify", [...])`); applied versions are kept in `schema_migrations`, each script
  in its own transaction, so packages evolve their tables independently.
- `":memory:"` opens a private in-memory database (tests).

The connection is created in the constructor (synchronously: opening is quick and happens once at
start, in the composition root); `close()` releases it. A statement refused because the file is
read-only (SQLITE_READONLY) makes the next statement open a new connection: SQLite opens a file
it cannot write read-only and keeps it so, so without this the database would stay read-only
after the file was made writable again.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypeVar

import trio

from actors.clock import Clock, SystemClock
from actors.store.errors import DatabaseClosedError, DatabaseOpenError, MigrationError, QueryError
from actors.store.interface import Connection, Dialect, Migrations, Params, Row, migrations_for

__all__ = ["Database", "DatabaseStatistics"]

T = TypeVar("T")
# The database's clock in epoch seconds (julianday has millisecond resolution).
_NOW_SQL = "((julianday('now') - 2440587.5) * 86400.0)"

_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True, slots=True)
class DatabaseStatistics:
    """Counters of one `Database`: statements run, and their total time in seconds."""

    path: str
    calls: int
    busy_seconds: float
    closed: bool


class Database:
    """A SQLite database file with a single serialised writer.

    Args:
        path: file path (parent directories are created) or ":memory:".
        synchronous: SQLite `synchronous` pragma (FULL by default; see the module docstring).
        offload: run statements in a worker thread (default) or inline on the trio thread.
        busy_timeout: seconds SQLite waits on a lock held by another process.
        clock: the wall time recorded with each applied migration (default: the system's).

    Raises:
        DatabaseOpenError: the file cannot be opened, or is not a database.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        offload: bool = True,
        busy_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self._path = str(path)
        self._clock: Clock = clock if clock is not None else SystemClock()
        mode = synchronous.upper()
        if mode not in _SYNC_MODES:
            raise DatabaseOpenError(self._path, f"synchronous must be one of {_SYNC_MODES}")
        self._offload = offload
        self._lock = trio.Lock()
        # Guards the connection against a sync call (migrate) racing an offloaded one.
        self._thread_lock = threading.Lock()
        self._calls = 0
        self._busy = 0.0
        self._mode = mode
        self._busy_timeout = busy_timeout
        self._reopen = False
        try:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = self._open()
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " owner TEXT NOT NULL, version INTEGER NOT NULL, applied_at REAL NOT NULL,"
                " PRIMARY KEY (owner, version))"
            )
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseOpenError(self._path, str(exc)) from exc
        self._conn: sqlite3.Connection | None = conn

    @property
    def path(self) -> str:
        """The path the database was opened with."""
        return self._path

    @property
    def location(self) -> str:
        """The path the database was opened with."""
        return self._path

    @property
    def dialect(self) -> Dialect:
        """Always "sqlite"."""
        return "sqlite"

    @property
    def now_sql(self) -> str:
        """SQLite's clock in epoch seconds, as an SQL expression."""
        return _NOW_SQL

    # -- synchronous, for start-up -------------------------------------------------------------

    def migrate(self, owner: str, migrations: Migrations) -> int:
        """Apply `owner`'s migrations not yet applied, in order; return the resulting version.

        `migrations` is one list of scripts, or a list per dialect (the "sqlite" one is used).
        `migrations[i]` is the SQL script taking `owner`'s tables from version i to i + 1. Each
        script runs in its own transaction. Called once at start (synchronously, before the
        event loop work begins); safe to call again (already applied versions are skipped).

        Raises:
            MigrationError: a script failed; earlier versions stay applied.
            DatabaseClosedError: after close().
        """
        migrations = migrations_for(migrations, "sqlite", owner)
        conn = self._connection()
        with self._thread_lock:
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE owner = ?",
                (owner,),
            ).fetchone()
            current = int(row[0])
            for version in range(current + 1, len(migrations) + 1):
                script = migrations[version - 1]
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    for statement in _split_script(script):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (owner, version, applied_at) VALUES (?,?,?)",
                        (owner, version, self._clock.now()),
                    )
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise MigrationError(owner, version, str(exc)) from exc
            return max(current, len(migrations))

    def integrity_check(self, max_errors: int = 20) -> list[str]:
        """Run `PRAGMA integrity_check`; return the problems it finds (empty: the file is sound).

        Reads the whole file: called once at start. A file too damaged to be read at all
        yields that error as the one problem.

        Raises:
            DatabaseClosedError: after close().
        """
        conn = self._connection()
        with self._thread_lock:
            try:
                rows = conn.execute(f"PRAGMA integrity_check({int(max_errors)})").fetchall()
            except sqlite3.Error as exc:
                return [str(exc)]
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

    def close(self) -> None:
        """Close the connection (idempotent). Later calls raise DatabaseClosedError."""
        with self._thread_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def statistics(self) -> DatabaseStatistics:
        """Return a frozen snapshot of this database's counters."""
        return DatabaseStatistics(self._path, self._calls, self._busy, self._conn is None)

    # -- asynchronous, the running system ------------------------------------------------------

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; return the affected row count.

        Raises:
            QueryError: the statement failed.
            DatabaseClosedError: after close().
        """
        return await self._run(lambda conn: conn.execute(sql, params).rowcount, sql)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for each of `rows` in one transaction; return affected rows.

        Raises:
            QueryError: a statement failed (nothing is applied).
            DatabaseClosedError: after close().
        """
        materialised = list(rows)

        def work(conn: sqlite3.Connection) -> int:
            return _in_transaction(conn, lambda: conn.executemany(sql, materialised).rowcount)

        return await self._run(work, sql)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query and return all rows (`sqlite3.Row`: index by position or column name).

        Raises:
            QueryError: the query failed.
            DatabaseClosedError: after close().
        """
        return await self._run(lambda conn: conn.execute(sql, params).fetchall(), sql)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query and return its first row, or None.

        Raises:
            QueryError: the query failed.
            DatabaseClosedError: after close().
        """
        return await self._run(lambda conn: conn.execute(sql, params).fetchone(), sql)

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` inside one `BEGIN IMMEDIATE` transaction and return its result.

        `work` is synchronous (it may run in a worker thread) and must not keep the connection.
        If it raises, the transaction is rolled back and the error propagates (sqlite3 errors
        as QueryError).

        Raises:
            QueryError: a statement failed.
            DatabaseClosedError: after close().
        """

        def wrapped(conn: sqlite3.Connection) -> T:
            return _in_transaction(conn, lambda: work(conn))

        return await self._run(wrapped, "transaction")

    # -- internals -----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            isolation_level=None,  # autocommit; transactions are explicit (BEGIN IMMEDIATE)
            check_same_thread=False,  # used from worker threads, one at a time (the lock)
            timeout=self._busy_timeout,
        )
        try:
            conn.row_factory = sqlite3.Row
            if self._path != ":memory:":
                journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(journal).lower() != "wal":
                    raise sqlite3.OperationalError(f"WAL journal refused (got {journal})")
            conn.execute(f"PRAGMA synchronous={self._mode}")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _reopened(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """After a write refused as read-only: a new connection. SQLite opens a file it cannot
        write read-only and keeps it so, so the connection would refuse writes for good even
        once the file is writable again; a new one writes as soon as the file can be written.
        The old connection is kept when the file cannot be opened at all."""
        self._reopen = False
        try:
            fresh = self._open()
        except sqlite3.Error:
            self._reopen = True
            return conn
        conn.close()
        self._conn = fresh
        return fresh

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DatabaseClosedError(self._path)
        return self._conn

    def _call(self, work: Callable[[sqlite3.Connection], T], sql: str) -> T:
        with self._thread_lock:
            conn = self._connection()
            if self._reopen:
                conn = self._reopened(conn)
            # A cost figure, read in the worker thread the statement runs in (where the event
            # loop's clock cannot be read), so the thread's own timer.
            started = time.perf_counter()
            try:
                return work(conn)
            except sqlite3.Error as exc:
                code = getattr(exc, "sqlite_errorcode", 0)
                if code & 0xFF == sqlite3.SQLITE_READONLY and self._path != ":memory:":
                    self._reopen = True
                raise QueryError(sql, str(exc)) from exc
            finally:
                self._calls += 1
                self._busy += time.perf_counter() - started

    async def _run(self, work: Callable[[sqlite3.Connection], T], sql: str) -> T:
        async with self._lock:
            if self._offload:
                # Not abandoned on cancel: the statement completes and we know its outcome.
                return await trio.to_thread.run_sync(self._call, work, sql)
            return self._call(work, sql)


def _in_transaction(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _split_script(script: str) -> list[str]:
    """Split a migration script into complete statements (sqlite3.complete_statement)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
