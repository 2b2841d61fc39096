"""A `Store` that reports its own failures: the counter and the readiness reason of storage faults.

`ObservedStore` wraps the store the composition root opened (SQLite or PostgreSQL) and is what
every package is handed. Each statement that fails (`StoreError`) is counted by its operation
(`storage_errors_total{operation}`: execute, executemany, fetchall, fetchone, transaction,
probe) and reported to readiness; the error still propagates, the caller decides what to do
(retry, keep the work in memory). Reads and writes are tracked apart, so a read-only database
(reads succeed, writes fail) stays reported until a write succeeds again.

Not every fault shows up in a statement someone happens to run (an idle SQLite process writes
nothing for hours): `StorageProbe` writes one small row every `interval` seconds (table
`store_probe`, one row per replica), so a database that became read-only, full, corrupted or
unreachable fails readiness within that time, and a recovered one clears it.

A fault found at start by SQLite's `PRAGMA integrity_check` is kept (`mark_damaged`) until the
process restarts on a repaired file: a successful write does not prove the file sound.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal, Self, TypeVar

import trio

from actors.store.errors import StoreError
from actors.store.interface import (
    Connection,
    Dialect,
    Migrations,
    Params,
    Row,
    Store,
    dedicated,
    per_dialect,
)

__all__ = ["STORAGE_ERRORS", "ObservedStore", "StorageProbe"]

T = TypeVar("T")
STORAGE_ERRORS = "storage_errors_total"
Kind = Literal["read", "write"]
_PROBE_MIGRATIONS = per_dialect(
    ["CREATE TABLE store_probe (replica TEXT PRIMARY KEY, at REAL NOT NULL);"]
)


class ObservedStore:
    """`inner` with its failures counted and reported (see the module docstring).

    Args:
        inner: the store every statement goes to.
        count: called with the operation of each failing statement (increments the counter).
        report: called with the current reason storage is not usable ("..." or None when it
            is usable again); called only when the reason changes.
    """

    def __init__(
        self,
        inner: Store,
        *,
        count: Callable[[str], None] = lambda operation: None,
        report: Callable[[str | None], None] = lambda reason: None,
    ) -> None:
        self.inner = inner
        self._count = count
        self._report = report
        self._failing: dict[Kind, str] = {}
        self._damaged: str | None = None
        self._reason: str | None = None

    @property
    def dialect(self) -> Dialect:
        """The inner store's engine."""
        return self.inner.dialect

    @property
    def location(self) -> str:
        """The inner store's printable location."""
        return self.inner.location

    @property
    def now_sql(self) -> str:
        """The inner store's clock expression."""
        return self.inner.now_sql

    @property
    def reason(self) -> str | None:
        """Why storage is not usable now, or None."""
        return self._reason

    def bind(self, *, count: Callable[[str], None], report: Callable[[str | None], None]) -> None:
        """Set where failures are counted and reported (the composition root builds the metric
        store and the health state after opening the database); reports the current reason."""
        self._count = count
        self._report = report
        report(self._reason)

    def mark_damaged(self, reason: str) -> None:
        """Keep `reason` as a fault until the process restarts (an integrity check failed)."""
        self._damaged = reason
        self._update()

    def dedicated(self, purpose: str) -> Store:
        """`actors.store.dedicated` of the inner store, its failures counted here (readiness is
        this store's: the same database); this store itself when the inner one has no
        connection to spare (SQLite).

        Raises:
            DatabaseOpenError: the server cannot be reached now.
            DatabaseClosedError: the inner store is closed.
        """
        inner = dedicated(self.inner, purpose)
        if inner is self.inner:
            return self
        return ObservedStore(inner, count=lambda operation: self._count(operation))

    def migrate(self, owner: str, migrations: Migrations) -> int:
        """The inner store's `migrate` (start-up: its errors stop the start, uncounted)."""
        return self.inner.migrate(owner, migrations)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """See `Store.execute`; a failure is counted and reported, then raised."""
        return await self._observe("execute", "write", self.inner.execute(sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """See `Store.executemany`; a failure is counted and reported, then raised."""
        return await self._observe("executemany", "write", self.inner.executemany(sql, rows))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """See `Store.fetchall`; a failure is counted and reported, then raised."""
        return await self._observe("fetchall", "read", self.inner.fetchall(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """See `Store.fetchone`; a failure is counted and reported, then raised."""
        return await self._observe("fetchone", "read", self.inner.fetchone(sql, params))

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """See `Store.transaction`; a failure is counted and reported, then raised."""
        return await self._observe("transaction", "write", self.inner.transaction(work))

    async def probe(self, replica: str) -> None:
        """Write this replica's probe row (table `store_probe`, created on first use).

        Raises:
            StoreError: the write failed (counted as operation "probe" and reported).
        """
        now = self.inner.now_sql
        sql = (
            f"INSERT INTO store_probe (replica, at) VALUES (?, {now}) "
            "ON CONFLICT (replica) DO UPDATE SET at = excluded.at"
        )
        await self._observe("probe", "write", self.inner.execute(sql, (replica,)))

    def close(self) -> None:
        """Close the inner store."""
        self.inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure_probe_table(self) -> None:
        """Create the probe's table (start-up; `MigrationError` as `migrate`)."""
        self.inner.migrate("store", _PROBE_MIGRATIONS)

    async def _observe(self, operation: str, kind: Kind, call: Awaitable[T]) -> T:
        try:
            result = await call
        except StoreError as exc:
            self._count(operation)
            self._failing[kind] = str(exc)
            self._update()
            raise
        if kind in self._failing:
            del self._failing[kind]
            self._update()
        return result

    def _update(self) -> None:
        reasons = [r for r in (self._damaged, *self._failing.values()) if r is not None]
        reason = "; ".join(dict.fromkeys(reasons)) or None
        if reason != self._reason:
            self._reason = reason
            self._report(reason)


class StorageProbe:
    """The `storage` actor: `store.probe(replica)` every `interval` seconds (module docstring).

    Never fails on a store error (the store reports it); logs a fault when it starts and when it
    clears.
    """

    def __init__(
        self, store: ObservedStore, *, replica: str, interval: float, logger: logging.Logger
    ) -> None:
        self._store = store
        self._replica = replica
        self._interval = interval
        self._log = logger

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe until cancelled; started at once."""
        task_status.started()
        failing = False
        while True:
            try:
                await self._store.probe(self._replica)
            except StoreError as exc:
                if not failing:
                    self._log.error("storage fails (%s): %s", self._store.location, exc)
                failing = True
            else:
                if failing:
                    self._log.warning("storage is back (%s)", self._store.location)
                failing = False
            await trio.sleep(self._interval)
