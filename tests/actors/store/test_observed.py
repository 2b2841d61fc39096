"""The observed store: failures counted by operation and reported to readiness, reads and
writes apart, an integrity fault kept; the probe writes one row per replica."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from actors.store import Database, QueryError
from actors.store.interface import Connection
from actors.store.observed import ObservedStore
from actors.store.postgres import PostgresDatabase
from tests.postgres import temporary_database


class Switchable(Database):
    """An in-memory SQLite database whose reads or writes fail on demand."""

    def __init__(self) -> None:
        super().__init__(":memory:", offload=False)
        self.reads_fail = False
        self.writes_fail = False

    async def execute(self, sql: str, params: Any = ()) -> int:
        if self.writes_fail:
            raise QueryError(sql, "attempt to write a readonly database")
        return await super().execute(sql, params)

    async def transaction(self, work: Callable[[Connection], Any]) -> Any:
        if self.writes_fail:
            raise QueryError("transaction", "attempt to write a readonly database")
        return await super().transaction(work)

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        if self.reads_fail:
            raise QueryError(sql, "disk I/O error")
        return await super().fetchall(sql, params)


class Observed:
    def __init__(self) -> None:
        self.inner = Switchable()
        self.counted: list[str] = []
        self.reports: list[str | None] = []
        self.store = ObservedStore(self.inner)
        self.store.bind(count=self.counted.append, report=self.reports.append)
        self.store.ensure_probe_table()


async def test_a_read_only_database_is_reported_until_a_write_succeeds() -> None:
    o = Observed()
    assert o.reports == [None]
    o.inner.writes_fail = True
    with pytest.raises(QueryError):
        await o.store.probe("r1")
    assert o.counted == ["probe"]
    assert o.store.reason is not None
    assert "readonly" in o.store.reason
    assert await o.store.fetchall("SELECT * FROM store_probe") == []  # reads still work
    assert o.store.reason is not None  # a read does not clear a failing write
    with pytest.raises(QueryError):
        await o.store.transaction(lambda conn: None)
    assert o.counted == ["probe", "transaction"]
    assert o.reports[0] is None
    assert all(reason is not None for reason in o.reports[1:])
    o.inner.writes_fail = False
    await o.store.probe("r1")
    await o.store.probe("r1")
    assert o.store.reason is None
    assert o.reports[-1] is None
    assert len(await o.store.fetchall("SELECT * FROM store_probe")) == 1


async def test_reads_and_writes_failing_report_both_reasons() -> None:
    o = Observed()
    o.inner.reads_fail = o.inner.writes_fail = True
    for call in (o.store.fetchall("SELECT 1"), o.store.execute("DELETE FROM store_probe")):
        with pytest.raises(QueryError):
            await call
    assert o.counted == ["fetchall", "execute"]
    assert o.store.reason is not None
    assert "disk I/O" in o.store.reason
    assert "readonly" in o.store.reason
    o.inner.reads_fail = False
    await o.store.fetchall("SELECT 1")
    assert o.store.reason is not None
    assert "disk I/O" not in o.store.reason


async def test_an_integrity_fault_stays_until_restart() -> None:
    o = Observed()
    o.store.mark_damaged("integrity check failed: page 7 is never used")
    await o.store.probe("r1")
    assert o.store.reason == "integrity check failed: page 7 is never used"
    assert o.reports[-1] == o.store.reason


def test_integrity_check_of_a_sound_and_a_damaged_file(tmp_path: Any) -> None:
    path = tmp_path / "m.db"
    with Database(path) as db:
        db.migrate("t", ["CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT);"])
        assert db.integrity_check() == []
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executemany("INSERT INTO filler (body) VALUES (?)", [("x" * 500,)] * 400)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.close()
    with path.open("r+b") as raw:
        raw.seek(4096 * (pages - 20))
        raw.write(b"\xa5" * 4096)
    with Database(path) as db:
        assert db.integrity_check() != []


async def test_a_dedicated_store_counts_its_failures_with_this_one_and_sqlite_has_none() -> None:
    sqlite = ObservedStore(Switchable())
    assert sqlite.dedicated("heartbeat") is sqlite  # one writer: nothing to set apart
    counted: list[str] = []
    reasons: list[str | None] = []
    with temporary_database() as url:
        observed = ObservedStore(PostgresDatabase(url, pool_size=1))
        beat = observed.dedicated("heartbeat")
        assert isinstance(beat, ObservedStore)
        assert isinstance(beat.inner, PostgresDatabase)
        assert beat.inner is not observed.inner
        observed.bind(count=counted.append, report=reasons.append)  # bound after: still counted
        assert await beat.fetchone("SELECT 1") is not None
        with pytest.raises(QueryError):
            await beat.execute("INSERT INTO no_such_table VALUES (1)")
        assert counted == ["execute"]
        # Readiness is the shared store's (its probe): the dedicated one does not report.
        assert reasons == [None]
        observed.close()
