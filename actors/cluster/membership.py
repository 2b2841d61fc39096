"""Membership: which replicas are alive, from a table of heartbeats (`cluster_members`).

Each replica writes its row every heartbeat (`Membership.beat`): its name, its mode, its
heartbeat interval and the database's time of the beat (PostgreSQL's clock: replicas' clocks
never decide who is alive). A replica is live while its last beat is younger than 3 of its own
heartbeats (`DEAD_AFTER_BEATS`); older rows are listed as dead by nobody and deleted after a day.
`live_members` is the pure rule; `Membership.members` is the list as of this replica's last
beat (read by `GET /api/v1/cluster` and the `cluster_replicas_live` gauge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from actors.store import Connection, Row, Store, per_dialect

__all__ = ["DEAD_AFTER_BEATS", "MIGRATIONS", "Member", "Membership", "live_members"]

DEAD_AFTER_BEATS = 3
"""A replica silent for this many of its heartbeats is dead."""
_FORGET_AFTER = 86400.0  # seconds after which a dead replica's row is deleted

MIGRATIONS = per_dialect(
    [
        """
        CREATE TABLE cluster_members (
            replica TEXT PRIMARY KEY,
            mode TEXT NOT NULL,
            heartbeat REAL NOT NULL,
            started_at REAL NOT NULL,
            last_beat REAL NOT NULL
        );
        """
    ]
)


@dataclass(frozen=True, slots=True)
class Member:
    """One replica as the membership table shows it (times: database epoch seconds)."""

    name: str
    mode: str
    heartbeat: float
    started_at: float
    last_beat: float

    def to_json(self, now: float) -> dict[str, object]:
        """The API's view: name, mode, last heartbeat and its age at `now`."""
        return {
            "name": self.name,
            "mode": self.mode,
            "heartbeat_seconds": self.heartbeat,
            "started_at": self.started_at,
            "last_heartbeat": self.last_beat,
            "age_seconds": round(max(0.0, now - self.last_beat), 3),
        }


def live_members(members: Iterable[Member], now: float) -> list[Member]:
    """The members whose last beat at `now` is younger than `DEAD_AFTER_BEATS` of their own
    heartbeats, by name."""
    return sorted(
        (m for m in members if now - m.last_beat < DEAD_AFTER_BEATS * m.heartbeat),
        key=lambda m: m.name,
    )


def _member(row: Row) -> Member:
    return Member(
        name=str(row["replica"]),
        mode=str(row["mode"]),
        heartbeat=float(row["heartbeat"]),
        started_at=float(row["started_at"]),
        last_beat=float(row["last_beat"]),
    )


class Membership:
    """This replica's row in `cluster_members`, and the live replicas as of its last beat.

    Args:
        database: the shared store.
        replica: this replica's name.
        mode: "redundant" or "sharded".
        heartbeat: seconds between beats.

    Raises:
        MigrationError: the table cannot be created.
    """

    def __init__(self, *, database: Store, replica: str, mode: str, heartbeat: float) -> None:
        self._db = database
        self.replica = replica
        self.mode = mode
        self.heartbeat = heartbeat
        self.members: tuple[Member, ...] = ()
        self.now = 0.0
        self._started_at: float | None = None
        database.migrate("cluster_members", MIGRATIONS)

    async def beat(self) -> list[Member]:
        """Write this replica's beat and read the live members (kept in `members`).

        Raises:
            StoreError: the database failed (`members` keeps the last list read).
        """
        now_sql = self._db.now_sql
        replica, mode, heartbeat = self.replica, self.mode, self.heartbeat
        started = self._started_at

        def work(conn: Connection) -> tuple[float, list[Member]]:
            now = float(conn.execute(f"SELECT {now_sql}").fetchone()[0])
            conn.execute(
                "INSERT INTO cluster_members (replica, mode, heartbeat, started_at, last_beat)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (replica) DO UPDATE SET"
                " mode = excluded.mode, heartbeat = excluded.heartbeat,"
                " started_at = excluded.started_at, last_beat = excluded.last_beat",
                (replica, mode, heartbeat, now if started is None else started, now),
            )
            conn.execute("DELETE FROM cluster_members WHERE last_beat < ?", (now - _FORGET_AFTER,))
            rows = conn.execute("SELECT * FROM cluster_members").fetchall()
            return now, [_member(row) for row in rows]

        now, members = await self._db.transaction(work)
        if self._started_at is None:
            self._started_at = now
        self.now = now
        self.members = tuple(live_members(members, now))
        return list(self.members)

    async def read(self) -> list[Member]:
        """Read the live members without beating (kept in `members`, as `beat` does).

        Raises:
            StoreError: the database failed (`members` keeps the last list read).
        """
        now_sql = self._db.now_sql

        def work(conn: Connection) -> tuple[float, list[Member]]:
            now = float(conn.execute(f"SELECT {now_sql}").fetchone()[0])
            rows = conn.execute("SELECT * FROM cluster_members").fetchall()
            return now, [_member(row) for row in rows]

        now, members = await self._db.transaction(work)
        self.now = now
        self.members = tuple(live_members(members, now))
        return list(self.members)

    def next_death(self) -> float | None:
        """Seconds after the last read at which the first live peer will count as dead if it
        does not beat again (None: no live peer)."""
        deaths = [
            m.last_beat + DEAD_AFTER_BEATS * m.heartbeat
            for m in self.members
            if m.name != self.replica
        ]
        return max(0.0, min(deaths) - self.now) if deaths else None

    async def leave(self) -> None:
        """Delete this replica's row (a graceful stop: its peers see it gone at once).

        Raises:
            StoreError: the database failed (the row then ages out).
        """
        await self._db.execute("DELETE FROM cluster_members WHERE replica = ?", (self.replica,))
