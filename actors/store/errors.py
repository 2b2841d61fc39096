"""Exceptions of the store (SQLite and PostgreSQL).

StoreError                 every error raised by actors.store
├── DatabaseOpenError      the database cannot be opened or reached (where, reason)
├── MigrationError         a package's migration failed (owner, version, reason)
├── DatabaseClosedError    the database was used after close()
└── QueryError             a statement failed (sql head, reason)
"""

from __future__ import annotations

__all__ = [
    "DatabaseClosedError",
    "DatabaseOpenError",
    "MigrationError",
    "QueryError",
    "StoreError",
]


class StoreError(Exception):
    """Base of every error raised by `actors.store`."""


class DatabaseOpenError(StoreError):
    """The database file cannot be opened or configured."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot open database {path!r}: {reason}")


class MigrationError(StoreError):
    """A migration of one owner failed; the database is left at the previous version."""

    def __init__(self, owner: str, version: int, reason: str) -> None:
        self.owner = owner
        self.version = version
        self.reason = reason
        super().__init__(f"migration {owner} v{version} failed: {reason}")


class DatabaseClosedError(StoreError):
    """The database was used after `close()`."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"database {path!r} is closed")


class QueryError(StoreError):
    """A statement failed (constraint, syntax, I/O)."""

    def __init__(self, sql: str, reason: str) -> None:
        head = " ".join(sql.split())[:80]
        self.sql = sql
        self.reason = reason
        super().__init__(f"query failed ({head}): {reason}")
