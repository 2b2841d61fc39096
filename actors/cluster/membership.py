"""Membership: which replicas are alive, from a table of heartbeats (`cluster_members`).

Each replica writes its row every heartbeat (`Membership.beat`): its name, its mode, its
heartbeat interval and the database's time of the beat (PostgreSQL's clock: replicas' clocks
never decide who is alive). A replica is live while its last beat is younger than 3 of its own
heartbeats (`DEAD_AFTER_BEATS`); older rows are listed as dead by nobody and deleted after a day.

Two allowances keep a loaded host from declaring live replicas dead (their heartbeats run on
the loop that runs thousands of checks, and share the database with them):

- the observer's own lateness: a replica whose own beat comes L seconds after its heartbeat
  was due (by the database's clock, from its previous beat as its row holds it; between beats,
  how overdue the next one is; nothing before this process's first beat) counts a peer dead
  only L seconds later (at most 3 of its own heartbeats more). What made it late, a busy host
  or a slow database, most likely delays its peers' beats as well; with beats on time nothing
  changes;
- a replica never counts itself dead: it is running. Its own row being old means its beats are
  late, not that it is gone (its peers may take its checks meanwhile, as they would from a
  replica that joins).

`live_members` is the pure rule; `Membership.members` is the list as of this replica's last
beat (read by `GET /api/v1/cluster` and the `cluster_replicas_live` gauge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from actors.store import Connection, Row, Store, per_dialect

__all__ = ["DEAD_AFTER_BEATS", "MIGRATIONS", "Member", "Membership", "lateness", "live_members"]

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


def live_members(
    members: Iterable[Member], now: float, *, grace: float = 0.0, keep: str | None = None
) -> list[Member]:
    """The members whose last beat at `now` is younger than `DEAD_AFTER_BEATS` of their own
    heartbeats plus `grace` seconds, and the member named `keep` whatever its age, by name."""
    return sorted(
        (
            m
            for m in members
            if m.name == keep or now - m.last_beat < DEAD_AFTER_BEATS * m.heartbeat + grace
        ),
        key=lambda m: m.name,
    )


def lateness(now: float, own_beat: float | None, heartbeat: float) -> float:
    """Seconds by which a replica's beat at `now` (or, between beats, its next one) comes after
    it was due, one `heartbeat` after its previous beat `own_beat`; 0 when on time or for a first
    beat; at most `DEAD_AFTER_BEATS` heartbeats."""
    if own_beat is None:
        return 0.0
    return min(max(0.0, now - own_beat - heartbeat), DEAD_AFTER_BEATS * heartbeat)


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
        self.grace = 0.0
        """Seconds of this replica's own lateness given to its peers at the last read."""
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

        def work(conn: Connection) -> tuple[float, float | None, list[Member]]:
            now = float(conn.execute(f"SELECT {now_sql}").fetchone()[0])
            previous = None
            if started is not None:  # this process's previous beat
                row = conn.execute(
                    "SELECT last_beat FROM cluster_members WHERE replica = ?", (replica,)
                ).fetchone()
                previous = float(row[0]) if row is not None else None
            conn.execute(
                "INSERT INTO cluster_members (replica, mode, heartbeat, started_at, last_beat)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (replica) DO UPDATE SET"
                " mode = excluded.mode, heartbeat = excluded.heartbeat,"
                " started_at = excluded.started_at, last_beat = excluded.last_beat",
                (replica, mode, heartbeat, now if started is None else started, now),
            )
            conn.execute("DELETE FROM cluster_members WHERE last_beat < ?", (now - _FORGET_AFTER,))
            rows = conn.execute("SELECT * FROM cluster_members").fetchall()
            return now, previous, [_member(row) for row in rows]

        now, previous, members = await self._db.transaction(work)
        if self._started_at is None:
            self._started_at = now
        self._settle(now, members, previous)
        return list(self.members)

    def _settle(self, now: float, members: list[Member], own_beat: float | None) -> None:
        """Keep the live members at `now`, with the grace of this replica's lateness from its
        beat at `own_beat`."""
        self.now = now
        self.grace = lateness(now, own_beat, self.heartbeat)
        self.members = tuple(live_members(members, now, grace=self.grace, keep=self.replica))

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
        own = [m.last_beat for m in members if m.name == self.replica]
        self._settle(now, members, own[0] if own and self._started_at is not None else None)
        return list(self.members)

    def next_death(self) -> float | None:
        """Seconds after the last read at which the first live peer will count as dead if it
        does not beat again, with the grace of that read (None: no live peer)."""
        deaths = [
            m.last_beat + DEAD_AFTER_BEATS * m.heartbeat + self.grace
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
