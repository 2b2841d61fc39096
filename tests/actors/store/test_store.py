"""The storage interface, run against both engines (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest
import trio

from actors.store import Connection, MigrationError, QueryError, upsert_sql
from tests.conftest import Stores

MIGRATIONS = {
    "sqlite": [
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, at REAL);",
        "ALTER TABLE items ADD COLUMN size INTEGER NOT NULL DEFAULT 0;\n"
        "CREATE INDEX items_size ON items (size);",
    ],
    "postgresql": [
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " at DOUBLE PRECISION);",
        "ALTER TABLE items ADD COLUMN size INTEGER NOT NULL DEFAULT 0;\n"
        "CREATE INDEX items_size ON items (size);",
    ],
}


def _first(migrations: dict[str, list[str]]) -> dict[str, list[str]]:
    return {dialect: scripts[:1] for dialect, scripts in migrations.items()}


def test_migrations_per_owner_are_incremental(stores: Stores) -> None:
    store = stores.open()
    assert store.dialect == stores.engine
    assert store.migrate("a", _first(MIGRATIONS)) == 1
    assert store.migrate("b", ["CREATE TABLE b_things (x TEXT);"]) == 1
    again = stores.open()
    assert again.migrate("a", MIGRATIONS) == 2
    assert again.migrate("a", MIGRATIONS) == 2  # idempotent


def test_failed_migration_keeps_previous_version(stores: Stores) -> None:
    store = stores.open()
    broken = {d: [s[0], "CREATE TABLE items (x TEXT);"] for d, s in MIGRATIONS.items()}
    with pytest.raises(MigrationError, match="a v2"):
        store.migrate("a", broken)
    assert store.migrate("a", _first(MIGRATIONS)) == 1


def test_missing_dialect_is_a_migration_error(stores: Stores) -> None:
    with pytest.raises(MigrationError, match=f"no migrations for {stores.engine}"):
        stores.open().migrate("a", {"elsewhere": ["CREATE TABLE x (y TEXT);"]})


async def test_statements_are_parameterised_on_both_engines(stores: Stores) -> None:
    store = stores.open()
    store.migrate("a", MIGRATIONS)
    hostile = "x'); DROP TABLE items; --"
    assert (
        await store.execute("INSERT INTO items (id, name, size) VALUES (?, ?, ?)", (1, hostile, 3))
        == 1
    )
    assert (
        await store.executemany(
            "INSERT INTO items (id, name, size) VALUES (?, ?, ?)", [(2, "y", 1), (3, "z%", 2)]
        )
        == 2
    )
    rows = await store.fetchall("SELECT name, size FROM items ORDER BY size")
    assert [(r["name"], r[1]) for r in rows] == [("y", 1), ("z%", 2), (hostile, 3)]
    like = await store.fetchall("SELECT name FROM items WHERE name LIKE 'z%'")
    assert [r["name"] for r in like] == ["z%"]
    assert await store.fetchone("SELECT name FROM items WHERE size > ?", (10,)) is None
    upsert = upsert_sql("items", ("id", "name", "size"), ("id",))
    await store.execute(upsert, (1, "renamed", 30))
    row = await store.fetchone("SELECT name, size FROM items WHERE id = ?", (1,))
    assert row is not None
    assert (row["name"], row["size"]) == ("renamed", 30)

    def move(conn: Connection) -> int:
        conn.execute("UPDATE items SET size = size + 10")
        return int(conn.execute("SELECT SUM(size) FROM items").fetchone()[0])

    assert await store.transaction(move) == 63


async def test_failed_transaction_rolls_back(stores: Stores) -> None:
    store = stores.open()
    store.migrate("a", MIGRATIONS)

    def boom(conn: Connection) -> None:
        conn.execute("INSERT INTO items (id, name) VALUES (1, 'a')")
        conn.execute("INSERT INTO items (id, name) VALUES (2, 'a')")  # UNIQUE violation

    with pytest.raises(QueryError, match=r"(?i)unique"):
        await store.transaction(boom)
    assert await store.fetchall("SELECT * FROM items") == []
    with pytest.raises(QueryError):
        await store.execute("SELECT * FROM nope")
    # The store still works after a failed statement.
    assert await store.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1, "a")) == 1


async def test_now_sql_is_the_database_clock(stores: Stores) -> None:
    store = stores.open()
    row = await store.fetchone(f"SELECT {store.now_sql} AS now")
    assert row is not None
    assert isinstance(row["now"], float)
    assert abs(row["now"] - time.time()) < 5


async def test_concurrent_transactions_each_apply(stores: Stores) -> None:
    store = stores.open()
    store.migrate("a", MIGRATIONS)

    async def insert(i: int) -> None:
        await store.execute("INSERT INTO items (id, name, size) VALUES (?, ?, ?)", (i, f"n{i}", i))

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(insert, i)
    row = await store.fetchone("SELECT COUNT(*), MAX(size) FROM items")
    assert row is not None
    assert (row[0], row[1]) == (20, 19)
