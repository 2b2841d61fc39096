"""SQLite access shared by the packages that persist state (WAL, one serialised writer).

Each package registers its own tables with `Database.migrate(owner, scripts)` at start and then
uses the async `execute` / `executemany` / `fetchall` / `fetchone` / `transaction` methods.
"""

from __future__ import annotations

from actors.store.database import Database, DatabaseStatistics, Params, Row
from actors.store.errors import (
    DatabaseClosedError,
    DatabaseOpenError,
    MigrationError,
    QueryError,
    StoreError,
)

__all__ = [
    "Database",
    "DatabaseClosedError",
    "DatabaseOpenError",
    "DatabaseStatistics",
    "MigrationError",
    "Params",
    "QueryError",
    "Row",
    "StoreError",
]
