"""Persisted routing state: each group's notification log and the silences.

The notification log (what was last sent for a group, when, and its sequence number) lets a
restarted process recognise alerts it already paged, and derive the same idempotency key when it
re-sends a notification it may have enqueued just before a crash.
"""

from __future__ import annotations

import json
from typing import Protocol

from actors.routing.grouping import NotifyLog
from actors.routing.matchers import parse_matchers
from actors.routing.silences import Silence
from actors.store import Store, per_dialect, upsert_sql

__all__ = ["MemoryRoutingStore", "RoutingStore", "SqliteRoutingStore"]


class RoutingStore(Protocol):
    """Where the routing actor keeps notification logs and silences."""

    async def load_logs(self) -> dict[str, NotifyLog]:
        """Every group's notification log, by group key."""
        ...

    async def save_log(self, key: str, log: NotifyLog | None) -> None:
        """Write a group's log; None deletes it."""
        ...

    async def load_silences(self) -> list[Silence]:
        """Every stored silence (expired ones included)."""
        ...

    async def save_silence(self, silence: Silence) -> None:
        """Insert or replace a silence."""
        ...


class MemoryRoutingStore:
    """An in-process `RoutingStore` (tests, or running without persistence)."""

    def __init__(self) -> None:
        self.logs: dict[str, NotifyLog] = {}
        self.silences: dict[str, Silence] = {}

    async def load_logs(self) -> dict[str, NotifyLog]:
        return dict(self.logs)

    async def save_log(self, key: str, log: NotifyLog | None) -> None:
        if log is None:
            self.logs.pop(key, None)
        else:
            self.logs[key] = log

    async def load_silences(self) -> list[Silence]:
        return list(self.silences.values())

    async def save_silence(self, silence: Silence) -> None:
        self.silences[silence.id] = silence


_TABLES = """
    CREATE TABLE routing_notify_log (
        group_key TEXT PRIMARY KEY,
        firing TEXT NOT NULL,
        last_sent REAL,
        seq INTEGER NOT NULL
    );
    CREATE TABLE routing_silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
"""
MIGRATIONS = per_dialect([_TABLES])
_LOG_UPSERT = upsert_sql(
    "routing_notify_log", ("group_key", "firing", "last_sent", "seq"), ("group_key",)
)
_SILENCE_UPSERT = upsert_sql(
    "routing_silences",
    ("id", "matchers", "starts_at", "ends_at", "created_by", "comment", "updated_at"),
    ("id",),
)


class SqliteRoutingStore:
    """`RoutingStore` in the shared store, SQLite or PostgreSQL.

    Raises:
        MigrationError: the tables cannot be created.
    """

    def __init__(self, *, database: Store) -> None:
        self._db = database
        database.migrate("routing", MIGRATIONS)

    async def load_logs(self) -> dict[str, NotifyLog]:
        rows = await self._db.fetchall("SELECT * FROM routing_notify_log")
        out: dict[str, NotifyLog] = {}
        for row in rows:
            try:
                firing = frozenset(str(f) for f in json.loads(row["firing"]))
            except (ValueError, TypeError):
                firing = frozenset()
            last = row["last_sent"]
            out[str(row["group_key"])] = NotifyLog(
                firing, None if last is None else float(last), int(row["seq"])
            )
        return out

    async def save_log(self, key: str, log: NotifyLog | None) -> None:
        if log is None:
            await self._db.execute("DELETE FROM routing_notify_log WHERE group_key = ?", (key,))
            return
        await self._db.execute(
            _LOG_UPSERT,
            (key, json.dumps(sorted(log.firing)), log.last_sent, log.seq),
        )

    async def load_silences(self) -> list[Silence]:
        rows = await self._db.fetchall("SELECT * FROM routing_silences")
        out: list[Silence] = []
        for row in rows:
            try:
                matchers = tuple(str(m) for m in json.loads(row["matchers"]))
                parsed = parse_matchers(matchers)
            except Exception:  # a damaged row is skipped rather than stopping routing
                continue
            out.append(
                Silence(
                    id=str(row["id"]),
                    matchers=matchers,
                    starts_at=float(row["starts_at"]),
                    ends_at=float(row["ends_at"]),
                    created_by=str(row["created_by"]),
                    comment=str(row["comment"]),
                    updated_at=float(row["updated_at"]),
                    parsed=parsed,
                )
            )
        return out

    async def save_silence(self, silence: Silence) -> None:
        row = (
            silence.id,
            json.dumps(list(silence.matchers)),
            silence.starts_at,
            silence.ends_at,
            silence.created_by,
            silence.comment,
            silence.updated_at,
        )
        await self._db.execute(_SILENCE_UPSERT, row)
