"""The storage interface and its two implementations, shared by the packages that persist state.

`Store` (actors.store.interface) is what the outbox, alert state, silences and the notification
log speak to: per-owner migrations (`migrate(owner, scripts)`) at start, then the async
`execute` / `executemany` / `fetchall` / `fetchone` / `transaction`. `Database` is SQLite (WAL,
one serialised writer; the default), `actors.store.postgres.PostgresDatabase` is PostgreSQL (a
small pool; replicas share it; imported only when configured: psycopg costs ~8 MB of RSS).
`open_store(config.storage)` opens the one the configuration names; `dedicated(store, purpose)`
gives a few urgent statements (a replica's heartbeat) a PostgreSQL connection of their own.
"""

from __future__ import annotations

from actors.store.database import Database, DatabaseStatistics
from actors.store.errors import (
    DatabaseClosedError,
    DatabaseOpenError,
    MigrationError,
    QueryError,
    StoreError,
)
from actors.store.interface import (
    Connection,
    Cursor,
    Dialect,
    Migrations,
    Params,
    Row,
    Store,
    dedicated,
    per_dialect,
    upsert_sql,
)
from actors.store.open import open_store

__all__ = [
    "Connection",
    "Cursor",
    "Database",
    "DatabaseClosedError",
    "DatabaseOpenError",
    "DatabaseStatistics",
    "Dialect",
    "Migrations",
    "MigrationError",
    "Params",
    "QueryError",
    "Row",
    "Store",
    "StoreError",
    "dedicated",
    "open_store",
    "per_dialect",
    "upsert_sql",
]
