from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import actors.store
from actors.store import (
    Connection,
    Database,
    DatabaseClosedError,
    DatabaseOpenError,
    MigrationError,
    QueryError,
)

MIGRATIONS = [
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    "ALTER TABLE items ADD COLUMN size INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE INDEX items_size ON items (size);",
]


def test_public_surface() -> None:
    assert set(actors.store.__all__) == {
        "Connection",
        "Cursor",
        "Database",
        "DatabaseClosedError",
        "DatabaseOpenError",
        "DatabaseStatistics",
        "Dialect",
        "MigrationError",
        "Migrations",
        "Params",
        "QueryError",
        "Row",
        "Store",
        "StoreError",
        "dedicated",
        "open_store",
        "per_dialect",
        "upsert_sql",
    }


def test_opens_wal_with_full_sync(tmp_path: Path) -> None:
    with Database(tmp_path / "sub" / "x.db") as db:
        conn = sqlite3.connect(db.path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        assert db.statistics().closed is False
    assert db.statistics().closed is True


def test_bad_sync_mode_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(DatabaseOpenError, match="synchronous"):
        Database(":memory:", synchronous="SOMETIMES")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseOpenError, match=r"garbage\.db"):
        Database(garbage)


def test_migrations_per_owner_are_incremental(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with Database(path) as db:
        assert db.migrate("a", MIGRATIONS[:1]) == 1
        assert db.migrate("b", ["CREATE TABLE b_things (x TEXT);"]) == 1
    with Database(path) as db:
        assert db.migrate("a", MIGRATIONS) == 2
        assert db.migrate("a", MIGRATIONS) == 2  # idempotent


def test_failed_migration_keeps_previous_version(tmp_path: Path) -> None:
    with Database(tmp_path / "m.db") as db:
        with pytest.raises(MigrationError, match="a v2"):
            db.migrate("a", [MIGRATIONS[0], "CREATE TABLE items (x);"])
        assert db.migrate("a", MIGRATIONS[:1]) == 1


@pytest.mark.parametrize("offload", [True, False])
async def test_execute_fetch_and_transaction(offload: bool) -> None:
    with Database(":memory:", offload=offload) as db:
        db.migrate("a", MIGRATIONS)
        assert await db.execute("INSERT INTO items (name, size) VALUES (?, ?)", ("x", 3)) == 1
        n = await db.executemany(
            "INSERT INTO items (name, size) VALUES (:name, :size)",
            [{"name": "y", "size": 1}, {"name": "z", "size": 2}],
        )
        assert n == 2
        rows = await db.fetchall("SELECT name, size FROM items ORDER BY size")
        assert [(r["name"], r["size"]) for r in rows] == [("y", 1), ("z", 2), ("x", 3)]
        assert await db.fetchone("SELECT name FROM items WHERE size > 10") is None

        def move(conn: Connection) -> int:
            conn.execute("UPDATE items SET size = size + 10")
            return int(conn.execute("SELECT SUM(size) FROM items").fetchone()[0])

        assert await db.transaction(move) == 36
        assert db.statistics().calls >= 5


async def test_failed_transaction_rolls_back() -> None:
    with Database(":memory:") as db:
        db.migrate("a", MIGRATIONS)

        def boom(conn: Connection) -> None:
            conn.execute("INSERT INTO items (name) VALUES ('a')")
            conn.execute("INSERT INTO items (name) VALUES ('a')")  # UNIQUE violation

        with pytest.raises(QueryError, match="UNIQUE"):
            await db.transaction(boom)
        assert await db.fetchall("SELECT * FROM items") == []
        with pytest.raises(QueryError, match="no such table"):
            await db.execute("SELECT * FROM nope")


async def test_concurrent_writers_are_serialised() -> None:
    with Database(":memory:") as db:
        db.migrate("a", MIGRATIONS)

        def bump(conn: Connection) -> None:
            row = conn.execute("SELECT COALESCE(MAX(size), 0) FROM items").fetchone()
            conn.execute("INSERT INTO items (name, size) VALUES (?, ?)", (f"n{row[0]}", row[0] + 1))

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(db.transaction, bump)
        row = await db.fetchone("SELECT COUNT(*), MAX(size) FROM items")
        assert row is not None
        assert (row[0], row[1]) == (20, 20)


async def test_closed_database_raises() -> None:
    db = Database(":memory:")
    db.close()
    db.close()
    with pytest.raises(DatabaseClosedError):
        await db.execute("SELECT 1")
    with pytest.raises(DatabaseClosedError):
        db.migrate("a", MIGRATIONS)


def test_commit_survives_kill(tmp_path: Path) -> None:
    """A row committed by a process killed right after the commit is there on reopen."""
    path = tmp_path / "k.db"
    code = (
        "import os, signal, trio\n"
        "from actors.store import Database\n"
        f"db = Database({str(path)!r})\n"
        "db.migrate('a', ['CREATE TABLE t (x TEXT);'])\n"
        "trio.run(db.execute, 'INSERT INTO t VALUES (?)', ('kept',))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=30)
    assert proc.returncode == -9
    with Database(path) as db:
        assert trio.run(db.fetchall, "SELECT x FROM t")[0]["x"] == "kept"
