"""The storage interface every persisting package speaks to, whatever the engine behind it.

Two implementations: `actors.store.database.Database` (SQLite, one process, the default) and
`actors.store.postgres.PostgresDatabase` (PostgreSQL, shared by any number of replicas). The
outbox, the notification log, alert state and silences hold a `Store` and never know which.

The dialect they write (what makes one statement run on both engines):
- positional `?` placeholders only (PostgreSQL's driver wants `%s`: the PostgreSQL store
  translates; a `?` inside a string literal is therefore not allowed, a `%` is);
- `INSERT ... ON CONFLICT (...) DO NOTHING` / `DO UPDATE SET c = excluded.c` (both engines
  know it; `upsert_sql` writes it), never `INSERT OR IGNORE` / `OR REPLACE`;
- `RETURNING`, `LIMIT ?`, `COALESCE` and the usual aggregates;
- the database's own clock as `Store.now_sql` (epoch seconds, a double), for what replicas must
  agree on regardless of their clocks (delivery leases).
DDL differs (SQLite `REAL` is a double, PostgreSQL's is a single; `AUTOINCREMENT` vs identity
columns), so a package gives its migrations per dialect (`Migrations`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, Self, TypeVar, runtime_checkable

from actors.store.errors import MigrationError

__all__ = [
    "Connection",
    "Cursor",
    "Dialect",
    "Migrations",
    "Params",
    "Row",
    "Store",
    "dedicated",
    "migrations_for",
    "per_dialect",
    "upsert_sql",
]

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any] | dict[str, Any]
Migrations = Sequence[str] | Mapping[str, Sequence[str]]
"""A package's migration scripts: one list for every dialect, or a list per dialect name."""


class Row(Protocol):
    """A result row: index it by position or by column name (`sqlite3.Row` is one)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What a statement run inside `Store.transaction` returns."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The connection `Store.transaction` hands its work (synchronous: it runs in a thread)."""

    def execute(self, sql: str, parameters: Params = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Params], /) -> Cursor: ...


class Store(Protocol):
    """A database with per-owner migrations and async statements (see the module docstring).

    Every method raises `actors.store.errors.QueryError` when a statement fails and
    `DatabaseClosedError` after `close()`; `migrate` raises `MigrationError`.
    """

    @property
    def dialect(self) -> Dialect:
        """Which engine this is ("sqlite" or "postgresql")."""
        ...

    @property
    def location(self) -> str:
        """Where the data lives, printable (a path, or a URL without its password)."""
        ...

    @property
    def now_sql(self) -> str:
        """An SQL expression for the database's current time in epoch seconds (a double)."""
        ...

    def migrate(self, owner: str, migrations: Migrations) -> int:
        """Apply `owner`'s migrations not yet applied, in order; return the resulting version."""
        ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; return the affected row count."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement per row in one transaction; return the affected rows."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query and return every row."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query and return its first row, or None."""
        ...

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` in one transaction (rolled back if it raises)."""
        ...

    def close(self) -> None:
        """Release the connections (idempotent)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class _Dedicating(Protocol):
    def dedicated(self, purpose: str) -> Store: ...


def dedicated(store: Store, purpose: str) -> Store:
    """A store for `purpose`'s few small statements that must not wait behind `store`'s: one
    connection of its own where `store` has a pool (PostgreSQL, or an `ObservedStore` over it:
    its own slot and worker thread, closed with `store`); else `store` itself (SQLite: one
    process, one writer, whose statements take their turn).

    Raises:
        DatabaseOpenError: the server cannot be reached now.
        DatabaseClosedError: `store` is closed.
    """
    if isinstance(store, _Dedicating):
        return store.dedicated(purpose)
    return store


def migrations_for(migrations: Migrations, dialect: Dialect, owner: str) -> Sequence[str]:
    """The scripts of `migrations` for `dialect`.

    Raises:
        MigrationError: `owner` gives no scripts for this dialect.
    """
    if isinstance(migrations, Mapping):
        scripts = migrations.get(dialect)
        if scripts is None:
            raise MigrationError(owner, 1, f"no migrations for {dialect}")
        return scripts
    return migrations


def per_dialect(sqlite_scripts: Sequence[str]) -> dict[str, list[str]]:
    """Migrations for both engines from SQLite DDL: PostgreSQL gets `DOUBLE PRECISION` for
    `REAL` (its REAL is a single: too coarse for epoch seconds) and an identity column for
    `INTEGER PRIMARY KEY AUTOINCREMENT`. Write anything else portably, or per dialect by hand."""
    postgresql = [
        script.replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
        ).replace(" REAL", " DOUBLE PRECISION")
        for script in sqlite_scripts
    ]
    return {"sqlite": list(sqlite_scripts), "postgresql": postgresql}


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """`INSERT INTO table (columns) VALUES (?...) ON CONFLICT (key) DO UPDATE` setting every
    other column: "insert or replace" that both engines run (and that keeps the row's id)."""
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) {action}"
