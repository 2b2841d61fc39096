"""PostgreSQL behind the storage interface (`[storage] url`): state shared by replicas.

Choices, and why:
- psycopg used synchronously in worker threads (`trio.to_thread.run_sync`), as the SQLite store
  offloads: one driver, no second event loop, and a statement never stalls the loop that serves
  probes. A statement is not abandoned on cancel: it completes and its outcome is known.
- A small bounded pool (`pool_size`, default 4): at most that many statements run at once; a
  caller beyond it waits its turn (a `trio.Semaphore`), and they run in worker threads of the
  store's own (a `trio.CapacityLimiter` of `pool_size`), not in the process's default ones that
  other blocking calls share. Connections are opened on demand and kept idle for reuse; one that
  broke (server restart, `pg_terminate_backend`) is dropped and the next statement opens a fresh
  one, so the store heals by itself once the server is back. The statement that met the broken
  connection fails with QueryError (the caller retries).
- `dedicated(purpose)`: a store of one connection of its own on the same database, its own slot
  and worker thread, for a few small statements that must never queue behind this pool's (a
  replica's heartbeat behind the history writes: late beats make live replicas look dead).
  Closed with this store.
- Autocommit connections: `execute` is its own transaction, `executemany` and `transaction` run
  inside `BEGIN ... COMMIT` (rolled back if the work raises). READ COMMITTED, the default.
- Every statement is parameterised: callers write `?` (the interface's dialect) and this module
  turns it into psycopg's `%s`, doubling any literal `%`.
- Migrations per owner, as with SQLite (`schema_migrations (owner, version)`), applied at start
  under `pg_advisory_lock`, so replicas starting together never race on the DDL; each script in
  its own transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import trio
from psycopg.rows import RowMaker

from actors.store.config import redact_url
from actors.store.database import DatabaseStatistics
from actors.store.errors import DatabaseClosedError, DatabaseOpenError, MigrationError, QueryError
from actors.store.interface import Connection, Dialect, Migrations, Params, Row, migrations_for

__all__ = ["PgRow", "PostgresDatabase", "to_pyformat"]

T = TypeVar("T")
# pg_advisory_lock key under which schemas are migrated ("blipee-m" as a big-endian integer).
MIGRATION_LOCK = 0x626C697065652D6D
_NOW_SQL = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"


def to_pyformat(sql: str) -> str:
    """The interface's `?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgRow:
    """A result row indexed by position or column name, like `sqlite3.Row`."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: Mapping[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = tuple(values)

    def __getitem__(self, key: int | str, /) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PgRow):
            return self._values == other._values
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._names, self._values, strict=True))!r})"


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[PgRow]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(names, values)

    return make


class _Cursor:
    def __init__(self, cursor: psycopg.Cursor[PgRow]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> PgRow | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[PgRow]:
        return self._cursor.fetchall()


class _Connection:
    """The `Connection` a transaction's work sees: `?` statements on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[PgRow]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Params = (), /) -> _Cursor:
        return _Cursor(self._conn.execute(to_pyformat(sql), parameters))

    def executemany(self, sql: str, parameters: Iterable[Params], /) -> _Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(to_pyformat(sql), list(parameters))
        return _Cursor(cursor)


class PostgresDatabase:
    """A PostgreSQL database behind the `Store` interface (see the module docstring).

    Args:
        url: a libpq connection URL (`postgresql://user:password@host:port/dbname`).
        pool_size: connections open at most (statements run at once).
        connect_timeout: seconds to wait for a connection to open.
        application_name: shown in `pg_stat_activity` (e.g. the replica's name).
        offload: run statements in worker threads (default) or inline on the trio thread
            (tests driven by a virtual clock, small tools).

    Raises:
        DatabaseOpenError: the URL is malformed or the server cannot be reached (a first
            connection is opened at once, so a wrong address fails at start, clearly).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        application_name: str = "blipee-monitor",
        offload: bool = True,
    ) -> None:
        self._location = redact_url(url)
        if pool_size < 1:
            raise DatabaseOpenError(self._location, "pool_size must be at least 1")
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise DatabaseOpenError(self._location, f"invalid URL: {exc}") from None
        self._url = url
        self._connect_timeout = max(1, round(connect_timeout))
        self._application_name = application_name
        self._offload = offload
        self._slots = trio.Semaphore(pool_size)
        self._threads = trio.CapacityLimiter(pool_size)
        self._dedicated: list[PostgresDatabase] = []
        self._lock = threading.Lock()  # guards _idle, _closed and the counters
        self._idle: list[psycopg.Connection[PgRow]] = []
        self._closed = False
        self._calls = 0
        self._busy = 0.0
        try:
            self._idle.append(self._connect())
        except psycopg.Error as exc:
            raise DatabaseOpenError(self._location, _reason(exc)) from None

    @property
    def dialect(self) -> Dialect:
        """Always "postgresql"."""
        return "postgresql"

    @property
    def location(self) -> str:
        """The URL without its password."""
        return self._location

    @property
    def now_sql(self) -> str:
        """The server's clock in epoch seconds, as an SQL expression."""
        return _NOW_SQL

    # -- synchronous, for start-up -------------------------------------------------------------

    def migrate(self, owner: str, migrations: Migrations) -> int:
        """Apply `owner`'s migrations not yet applied, in order, under `pg_advisory_lock`;
        return the resulting version.

        `migrations` is one list of scripts, or a list per dialect (the "postgresql" one is
        used). Each script runs in its own transaction. Called at start (synchronously); safe to
        call again, and from several replicas at once (they wait for each other).

        Raises:
            MigrationError: a script failed (or the server is unreachable); earlier versions
                stay applied.
            DatabaseClosedError: after close().
        """
        scripts = migrations_for(migrations, "postgresql", owner)
        try:
            conn = self._take()
        except psycopg.Error as exc:
            raise MigrationError(owner, 0, _reason(exc)) from None
        version = 0
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " owner TEXT NOT NULL, version INTEGER NOT NULL,"
                    " applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (owner, version))"
                )
                row = conn.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE owner = %s",
                    (owner,),
                ).fetchone()
                current = int(row[0]) if row is not None else 0
                for version in range(current + 1, len(scripts) + 1):
                    with conn.transaction():
                        conn.execute(
                            scripts[version - 1].encode()
                        )  # no parameters: many statements
                        conn.execute(
                            "INSERT INTO schema_migrations (owner, version, applied_at)"
                            " VALUES (%s, %s, %s)",
                            (owner, version, time.time()),
                        )
                return max(current, len(scripts))
            finally:
                if not conn.broken:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        except psycopg.Error as exc:
            raise MigrationError(owner, version, _reason(exc)) from None
        finally:
            self._give_back(conn)

    def dedicated(self, purpose: str) -> PostgresDatabase:
        """A store of one connection of its own on this database, for a few small statements
        that must not wait behind this store's (see the module docstring). Its statements take
        none of this store's slots or threads; its connection is named
        `"<application_name> <purpose>"` in `pg_stat_activity`. Closed by `close()`.

        Raises:
            DatabaseOpenError: the server cannot be reached now.
            DatabaseClosedError: after close().
        """
        with self._lock:
            if self._closed:
                raise DatabaseClosedError(self._location)
        store = PostgresDatabase(
            self._url,
            pool_size=1,
            connect_timeout=self._connect_timeout,
            application_name=f"{self._application_name} {purpose}"[:63],
            offload=self._offload,
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._dedicated.append(store)
        if closed:
            store.close()
            raise DatabaseClosedError(self._location)
        return store

    def close(self) -> None:
        """Close the idle connections and the dedicated stores (idempotent); connections in
        use close when returned. Later calls raise DatabaseClosedError."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            dedicated, self._dedicated = self._dedicated, []
        for conn in idle:
            conn.close()
        for store in dedicated:
            store.close()

    def __enter__(self) -> PostgresDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def statistics(self) -> DatabaseStatistics:
        """Return a frozen snapshot of this database's counters."""
        with self._lock:
            return DatabaseStatistics(self._location, self._calls, self._busy, self._closed)

    # -- asynchronous, the running system ------------------------------------------------------

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; return the affected row count.

        Raises:
            QueryError: the statement failed (or no connection could be opened).
            DatabaseClosedError: after close().
        """
        return await self._run(lambda conn: conn.execute(sql, params).rowcount, sql, tx=False)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for each of `rows` in one transaction; return affected rows.

        Raises:
            QueryError: a statement failed (nothing is applied).
            DatabaseClosedError: after close().
        """
        materialised = list(rows)
        return await self._run(lambda conn: conn.executemany(sql, materialised).rowcount, sql)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query and return all rows (`PgRow`: index by position or column name).

        Raises:
            QueryError: the query failed.
            DatabaseClosedError: after close().
        """
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall(), sql, tx=False)
        return list(rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query and return its first row, or None.

        Raises:
            QueryError: the query failed.
            DatabaseClosedError: after close().
        """
        row: PgRow | None = await self._run(
            lambda conn: conn.execute(sql, params).fetchone(), sql, tx=False
        )
        return row

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` inside one transaction and return its result.

        `work` is synchronous (it runs in a worker thread) and must not keep the connection. If
        it raises, the transaction is rolled back and the error propagates (psycopg errors as
        QueryError).

        Raises:
            QueryError: a statement failed.
            DatabaseClosedError: after close().
        """
        return await self._run(work, "transaction")

    # -- internals -----------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[PgRow]:
        return psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name=self._application_name,
            row_factory=_row_factory,
        )

    def _take(self) -> psycopg.Connection[PgRow]:
        with self._lock:
            if self._closed:
                raise DatabaseClosedError(self._location)
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, conn: psycopg.Connection[PgRow]) -> None:
        with self._lock:
            if not (self._closed or conn.closed or conn.broken):
                self._idle.append(conn)
                return
        conn.close()

    def _call(self, work: Callable[[_Connection], T], sql: str, tx: bool) -> T:
        try:
            conn = self._take()
        except psycopg.Error as exc:
            raise QueryError(sql, _reason(exc)) from None
        started = time.perf_counter()
        try:
            if not tx:
                return work(_Connection(conn))
            with conn.transaction():
                return work(_Connection(conn))
        except psycopg.Error as exc:
            raise QueryError(sql, _reason(exc)) from exc
        finally:
            self._give_back(conn)
            with self._lock:
                self._calls += 1
                self._busy += time.perf_counter() - started

    async def _run(self, work: Callable[[_Connection], T], sql: str, *, tx: bool = True) -> T:
        async with self._slots:
            if not self._offload:
                return self._call(work, sql, tx)
            # Not abandoned on cancel: the statement completes and we know its outcome.
            return await trio.to_thread.run_sync(self._call, work, sql, tx, limiter=self._threads)


def _reason(exc: psycopg.Error) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
