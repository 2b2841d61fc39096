"""The local notification spool: what a replica decided while PostgreSQL was unreachable.

A replica on PostgreSQL queues a notification by writing the shared notification log and the
outbox in one transaction (`SharedNotifyLog.flush`). When that fails because PostgreSQL is
unreachable, the notification is decided on the group's log as this replica last knew it and
written here instead: a SQLite file of the replica's own (`[storage] spool_path`), fsynced, so
it survives a restart of the process during the outage. When PostgreSQL is back, the entries are
replayed in the order they were spooled (`SharedNotifyLog.replay`) and each is deleted only after
its replay committed: a failure half-way keeps it and every later entry.

Bounded: at most `limit` entries. A full spool refuses the entry (`SpoolFull`), and the caller
keeps the group's alerts in memory as it does without a spool (flushed again every tick): late,
not lost while the process lives, but not across a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.models import Notification
from actors.notify.codec import decode_notification, encode_notification
from actors.notify.errors import PayloadError
from actors.store import Database

__all__ = ["Spool", "SpoolEntry", "SpoolFull"]

_MIGRATIONS = [
    """
    CREATE TABLE notify_spool (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        group_key TEXT NOT NULL,
        basis INTEGER NOT NULL,
        decided_at REAL NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX notify_spool_group ON notify_spool (group_key);
    """
]


class SpoolFull(Exception):
    """The spool holds `limit` entries: the entry was not written."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the notification spool is full ({limit} entries)")


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled notification, decided at `decided_at` on the group's log at seq `basis`."""

    id: int
    notification: Notification
    basis: int
    decided_at: float


class Spool:
    """The spool file (see the module docstring).

    Args:
        database: the replica's own SQLite database (not the shared store).
        limit: the most entries it holds.

    Raises:
        MigrationError: its table cannot be created.
    """

    def __init__(self, database: Database, *, limit: int) -> None:
        self._db = database
        self.limit = limit
        self._groups: dict[str, int] = {}
        self._count = 0
        self.corrupt = 0
        """Entries found undecodable and deleted (see `entries`)."""
        database.migrate("spool", _MIGRATIONS)

    @property
    def location(self) -> str:
        """The spool file's path."""
        return self._db.location

    @property
    def count(self) -> int:
        """Entries held (as of the last `load`, `add` or `remove`)."""
        return self._count

    def holds(self, group_key: str) -> bool:
        """Whether an entry of `group_key` waits (a newer notification of it must wait too)."""
        return self._groups.get(group_key, 0) > 0

    async def load(self) -> int:
        """Count what the file holds (at start: entries spooled before a restart); return it.

        Raises:
            QueryError: the read failed.
        """
        rows = await self._db.fetchall(
            "SELECT group_key, COUNT(*) AS n FROM notify_spool GROUP BY group_key"
        )
        self._groups = {str(row["group_key"]): int(row["n"]) for row in rows}
        self._count = sum(self._groups.values())
        return self._count

    async def add(self, notification: Notification, *, basis: int, decided_at: float) -> None:
        """Write one entry durably (committed and fsynced when this returns).

        Raises:
            SpoolFull: the spool holds `limit` entries (nothing written).
            QueryError: the write failed (nothing written).
        """
        if self._count >= self.limit:
            raise SpoolFull(self.limit)
        await self._db.execute(
            "INSERT INTO notify_spool (key, group_key, basis, decided_at, payload)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                notification.key,
                notification.group_key,
                basis,
                decided_at,
                encode_notification(notification),
            ),
        )
        self._groups[notification.group_key] = self._groups.get(notification.group_key, 0) + 1
        self._count += 1

    async def entries(self, *, limit: int = 100) -> list[SpoolEntry]:
        """The oldest entries (up to `limit`), in the order they were spooled.

        An entry whose payload cannot be decoded (the file was damaged or edited by hand) can
        never be sent: it is deleted and counted in `corrupt`.

        Raises:
            QueryError: the read failed.
        """
        rows = await self._db.fetchall(
            "SELECT id, key, group_key, basis, decided_at, payload FROM notify_spool"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        entries = []
        for row in rows:
            try:
                notification = decode_notification(str(row["payload"]), key=str(row["key"]))
                entry = SpoolEntry(
                    int(row["id"]), notification, int(row["basis"]), float(row["decided_at"])
                )
            except (PayloadError, ValueError, TypeError):
                await self._delete(int(row["id"]), str(row["group_key"]))
                self.corrupt += 1
                continue
            entries.append(entry)
        return entries

    async def remove(self, entry: SpoolEntry) -> None:
        """Delete `entry` (after its replay committed).

        Raises:
            QueryError: the write failed (the entry stays and is replayed again: harmless,
                its identity is deterministic).
        """
        await self._delete(entry.id, entry.notification.group_key)

    async def _delete(self, entry_id: int, group: str) -> None:
        deleted = await self._db.execute("DELETE FROM notify_spool WHERE id = ?", (entry_id,))
        if deleted:
            left = self._groups.get(group, 0) - 1
            if left > 0:
                self._groups[group] = left
            else:
                self._groups.pop(group, None)
            self._count = max(0, self._count - 1)

    def close(self) -> None:
        """Close the file."""
        self._db.close()
