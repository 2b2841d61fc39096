"""The durable outbox: every notification is in the store (SQLite or PostgreSQL) before its first
delivery attempt.

One row per (notification key, channel). Rows move `pending` -> `delivered` or `pending` ->
`dead` (dead-letter list, with the reason); a failed attempt keeps the row pending with the time
of the next attempt and the last error. Rows that left `pending` are never selected again, and
the marks only apply to pending rows, so a delivered notification is never delivered again.

Guarantees (document for operators):
- `enqueue()` returns only after the row is committed (fsynced with the SQLite store's default
  synchronous=FULL; PostgreSQL's commit is durable once its WAL is flushed). A crash or
  `kill -9` after that loses nothing: the channel's delivery actor finds the row pending when
  the process starts again.
- Enqueueing the same (key, channel) twice is a no-op, so a producer that re-sends after its own
  restart does not double a notification.
- A crash between a receiver's acceptance and the `delivered` mark re-sends that notification
  after restart with the same idempotency key: exactly once toward receivers that deduplicate on
  the key (webhook `Idempotency-Key`, PagerDuty `dedup_key`, Alertmanager by labels, email
  `Message-ID`), at least once toward the others (e.g. Slack).
- The same holds when the store fails while the delivery actor records an outcome: it retries
  the write for about 30 s, then fails and is restarted, and the row (still pending) is sent
  again with the same key.
- Idempotency keys are the notification keys routing chose, stored in the row: they do not
  depend on the process, so they are the same after a restart.

Replicas (`replica` set: several processes on one PostgreSQL store): a row is sent by the replica
that claims it (`claim()`: `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, then `claimed_by`
and `lease_until`, the store's clock plus `lease` seconds). A replica renews the leases of what it
holds (`renew()`, every heartbeat) and gives a row up when it records the outcome; a replica that
dies stops renewing, and once its lease has passed another replica claims the row and sends it,
with the same idempotency key. `pending()` tells which rows another replica holds (`held_by`),
so a delivery actor keeps a group's order by waiting for them. Without `replica` (one process)
nothing is claimed and the rows are as before.

Delivered and dead rows are kept `retention` seconds (default 7 days) for the API and for the
no-op re-enqueue, then pruned.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import trio

from actors.clock import Clock
from actors.models import AlertStatus, Notification
from actors.notify.codec import decode_notification, encode_notification
from actors.notify.metrics import OUTBOX_PENDING, Metrics, declare_notify_metrics
from actors.store import Connection, Row, Store, per_dialect, upsert_sql

__all__ = ["EntryState", "Outbox", "OutboxEntry", "OutboxStatistics"]

_SQLITE = [
    """
    CREATE TABLE notify_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        channel TEXT NOT NULL,
        group_key TEXT NOT NULL,
        status TEXT NOT NULL,
        state TEXT NOT NULL,
        payload TEXT NOT NULL,
        test INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        UNIQUE (key, channel)
    );
    CREATE INDEX notify_outbox_pending ON notify_outbox (channel, state, id);
    CREATE INDEX notify_outbox_done ON notify_outbox (state, updated_at);
    """,
]
_SQLITE.append(
    """
    ALTER TABLE notify_outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE notify_outbox ADD COLUMN lease_until REAL;
    """
)
MIGRATIONS = per_dialect(_SQLITE)
_RECORD_SQL = upsert_sql(
    "notify_outbox",
    (
        "key",
        "channel",
        "group_key",
        "status",
        "state",
        "payload",
        "test",
        "created_at",
        "updated_at",
        "next_attempt_at",
        "attempts",
        "last_error",
    ),
    ("key", "channel"),
)

_COLUMNS = (
    "id, key, channel, group_key, status, state, payload, test, created_at, updated_at,"
    " next_attempt_at, attempts, last_error"
)
# Release a row's claim (set on every mark: the outcome is recorded, any replica may go on).
_RELEASE = "claimed_by = NULL, lease_until = NULL"


class EntryState(enum.StrEnum):
    """Where an outbox row is in its life."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row. Times are wall-clock seconds."""

    id: int
    key: str
    channel: str
    group_key: str
    status: AlertStatus
    state: EntryState
    payload: str
    test: bool
    created_at: float
    updated_at: float
    next_attempt_at: float
    attempts: int
    last_error: str
    held_by: str = ""
    """The replica whose unexpired claim holds this pending row, when it is not this one."""

    def notification(self) -> Notification:
        """Decode the stored notification.

        Raises:
            PayloadError: the stored payload is not a valid notification.
        """
        return decode_notification(self.payload, key=self.key)

    def to_json(self) -> dict[str, object]:
        """The API view of the row (no payload, which may carry user data at length)."""
        return {
            "id": self.id,
            "key": self.key,
            "channel": self.channel,
            "group_key": self.group_key,
            "status": self.status.value,
            "state": self.state.value,
            "test": self.test,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "next_attempt_at": self.next_attempt_at,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class OutboxStatistics:
    """Row counts by state."""

    pending: int
    delivered: int
    dead: int


def _entry(row: Row, held_by: str = "") -> OutboxEntry:
    return OutboxEntry(
        id=int(row["id"]),
        key=str(row["key"]),
        channel=str(row["channel"]),
        group_key=str(row["group_key"]),
        status=AlertStatus(row["status"]),
        state=EntryState(row["state"]),
        payload=str(row["payload"]),
        test=bool(row["test"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        next_attempt_at=float(row["next_attempt_at"]),
        attempts=int(row["attempts"]),
        last_error=str(row["last_error"]),
        held_by=held_by,
    )


def _pending_count(conn: Connection, channel: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM notify_outbox WHERE channel = ? AND state = 'pending'", (channel,)
    ).fetchone()
    return int(row[0])


class Outbox:
    """Durable notification queue over the shared `Store` (one row per key+channel).

    Args:
        database: the shared store; the outbox registers its table ("notify" migrations).
        clock: wall time for created/updated/next-attempt times.
        metrics: where notify's metrics are declared and `outbox_pending{channel}` is set.
        retention: seconds delivered and dead rows are kept.
        replica: this replica's name when several share the store (rows are then claimed);
            None for one process.
        lease: seconds a claim lasts without renewal (replicas only).
        poll: with replicas, the longest a delivery actor waits before reading its rows again
            (another replica's enqueue does not wake this one).

    Raises:
        MigrationError: the outbox table cannot be created or migrated.
    """

    def __init__(
        self,
        *,
        database: Store,
        clock: Clock,
        metrics: Metrics | None = None,
        retention: float = 7 * 86400.0,
        replica: str | None = None,
        lease: float = 6.0,
        poll: float = 2.0,
    ) -> None:
        self._db = database
        self._clock = clock
        self._metrics = metrics
        self._retention = retention
        self._replica = replica
        self._lease = lease
        self.poll = poll if replica is not None else math.inf
        self._held: set[int] = set()
        self._wakeups: dict[str, trio.Event] = {}
        database.migrate("notify", MIGRATIONS)
        if metrics is not None:
            declare_notify_metrics(metrics)

    # -- producers -----------------------------------------------------------------------------

    async def enqueue(self, notification: Notification) -> bool:
        """Write `notification` durably, then wake its channel's delivery actor.

        Returns True if the row is new, False if (key, channel) was already in the outbox (in
        any state): enqueueing is idempotent.

        Raises:
            QueryError: the write failed (the notification is NOT queued; the caller may retry).
        """
        inserted, pending = await self._db.transaction(lambda conn: self.insert(conn, notification))
        self.inserted(notification.channel, inserted=inserted, pending=pending)
        return inserted

    def insert(self, conn: Connection, notification: Notification) -> tuple[bool, int]:
        """The write of `enqueue`, inside a caller's transaction (`Store.transaction`): returns
        (row is new, pending rows of the channel). Call `inserted()` after the commit.

        Raises:
            the store's driver errors (the caller's transaction turns them into QueryError).
        """
        now = self._clock.now()
        channel = notification.channel
        cursor = conn.execute(
            "INSERT INTO notify_outbox (key, channel, group_key, status, state,"
            " payload, test, created_at, updated_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)"
            " ON CONFLICT (key, channel) DO NOTHING",
            (
                notification.key,
                channel,
                notification.group_key,
                notification.status.value,
                encode_notification(notification),
                int(notification.test),
                now,
                now,
                now,
            ),
        )
        return cursor.rowcount == 1, _pending_count(conn, channel)

    def inserted(self, channel: str, *, inserted: bool, pending: int) -> None:
        """After `insert()` committed: set the pending gauge, wake the channel's actor."""
        self._set_gauge(channel, pending)
        if inserted:
            self._wake(channel)

    # -- the delivery actor --------------------------------------------------------------------

    def changed(self, channel: str) -> trio.Event:
        """An event set by the next `enqueue()` on `channel`.

        Take it BEFORE reading `pending()`, then wait on it if there is nothing to do: an
        enqueue in between sets it, so no wake-up is lost.
        """
        event = self._wakeups.get(channel)
        if event is None:
            event = self._wakeups[channel] = trio.Event()
        return event

    async def pending(self, channel: str, *, limit: int = 500) -> list[OutboxEntry]:
        """Pending rows of `channel`, oldest first (up to `limit`).

        Raises:
            QueryError: the read failed.
        """
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS}, CASE WHEN claimed_by IS NOT NULL AND claimed_by <> ?"
            f" AND lease_until > {self._db.now_sql} THEN claimed_by ELSE '' END AS held_by"
            " FROM notify_outbox WHERE channel = ? AND state = 'pending' ORDER BY id LIMIT ?",
            (self._replica or "", channel, limit),
        )
        return [_entry(row, str(row["held_by"])) for row in rows]

    @property
    def claiming(self) -> bool:
        """Whether rows are claimed before they are sent (several replicas share the store)."""
        return self._replica is not None

    async def claim(self, entry_id: int) -> bool:
        """Claim a pending row for this replica for `lease` seconds (a row this replica already
        holds is claimed again). False: it left `pending`, or another replica's claim holds it.
        Always True for one process (nothing to claim against).

        Raises:
            QueryError: the write failed (do not send: the row may be another's).
        """
        if self._replica is None:
            return True
        now = self._db.now_sql
        lock = " FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        claimed = await self._db.execute(
            f"UPDATE notify_outbox SET claimed_by = ?, lease_until = {now} + ?"
            " WHERE id = (SELECT id FROM notify_outbox WHERE id = ? AND state = 'pending'"
            f" AND (claimed_by IS NULL OR claimed_by = ? OR lease_until <= {now}){lock})",
            (self._replica, self._lease, entry_id, self._replica),
        )
        if claimed == 1:
            self._held.add(entry_id)
        return claimed == 1

    async def renew(self) -> int:
        """Extend the leases of the rows this replica holds; return how many are still held.

        Raises:
            QueryError: the write failed (the leases run on; renew again soon).
        """
        if self._replica is None or not self._held:
            return 0
        held = sorted(self._held)
        marks = ", ".join("?" for _ in held)
        await self._db.execute(
            f"UPDATE notify_outbox SET lease_until = {self._db.now_sql} + ?"
            f" WHERE claimed_by = ? AND state = 'pending' AND id IN ({marks})",
            (self._lease, self._replica, *held),
        )
        return len(held)

    def forget(self, entry_id: int) -> None:
        """Stop renewing a claim (its outcome was not recorded: the lease runs out)."""
        self._held.discard(entry_id)

    async def mark_delivered(self, entry_id: int, detail: str = "") -> bool:
        """Mark a pending row delivered. Returns False if it was not pending (no change).

        Raises:
            QueryError: the write failed.
        """
        return await self._finish(entry_id, EntryState.DELIVERED, detail)

    async def dead_letter(self, entry_id: int, reason: str) -> bool:
        """Move a pending row to the dead-letter list with `reason`. False if not pending.

        Raises:
            QueryError: the write failed.
        """
        return await self._finish(entry_id, EntryState.DEAD, reason)

    async def mark_failed(self, entry_id: int, *, retry_at: float, reason: str) -> bool:
        """Record a failed attempt of a pending row; it is retried at `retry_at` (wall time).

        Returns False if the row was not pending.

        Raises:
            QueryError: the write failed.
        """
        now = self._clock.now()
        changed = await self._db.execute(
            "UPDATE notify_outbox SET attempts = attempts + 1, next_attempt_at = ?,"
            f" last_error = ?, updated_at = ?, {_RELEASE} WHERE id = ? AND state = 'pending'",
            (retry_at, reason, now, entry_id),
        )
        self._held.discard(entry_id)
        return changed == 1

    async def record(self, notification: Notification, state: EntryState, detail: str) -> None:
        """Record a notification sent directly (test alerts) so the API lists it.

        Raises:
            QueryError: the write failed.
        """
        now = self._clock.now()
        await self._db.execute(
            _RECORD_SQL,
            (
                notification.key,
                notification.channel,
                notification.group_key,
                notification.status.value,
                state.value,
                encode_notification(notification),
                int(notification.test),
                now,
                now,
                now,
                1,
                detail,
            ),
        )

    # -- readers -------------------------------------------------------------------------------

    async def recent(
        self, state: EntryState, *, limit: int = 50, channel: str | None = None
    ) -> list[OutboxEntry]:
        """Most recently updated rows in `state`, newest first (deliveries, dead letters).

        Raises:
            QueryError: the read failed.
        """
        sql = f"SELECT {_COLUMNS} FROM notify_outbox WHERE state = ?"
        params: list[object] = [state.value]
        if channel is not None:
            sql += " AND channel = ?"
            params.append(channel)
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [_entry(row) for row in await self._db.fetchall(sql, params)]

    async def statistics(self) -> OutboxStatistics:
        """Row counts by state.

        Raises:
            QueryError: the read failed.
        """
        rows = await self._db.fetchall(
            "SELECT state, COUNT(*) AS n FROM notify_outbox GROUP BY state"
        )
        counts = {str(row["state"]): int(row["n"]) for row in rows}
        return OutboxStatistics(
            counts.get("pending", 0), counts.get("delivered", 0), counts.get("dead", 0)
        )

    async def refresh_gauge(self, channel: str) -> int:
        """Set `outbox_pending{channel}` from the table and return it (at actor start).

        Raises:
            QueryError: the read failed.
        """
        pending = await self._db.transaction(lambda conn: _pending_count(conn, channel))
        self._set_gauge(channel, pending)
        return pending

    async def prune(self) -> int:
        """Delete delivered and dead rows older than the retention; return how many.

        Raises:
            QueryError: the write failed.
        """
        cutoff = self._clock.now() - self._retention
        return await self._db.execute(
            "DELETE FROM notify_outbox WHERE state != 'pending' AND updated_at < ?", (cutoff,)
        )

    # -- internals -----------------------------------------------------------------------------

    async def _finish(self, entry_id: int, state: EntryState, detail: str) -> bool:
        now = self._clock.now()

        def work(conn: Connection) -> tuple[str, int] | None:
            row = conn.execute(
                "SELECT channel FROM notify_outbox WHERE id = ? AND state = 'pending'", (entry_id,)
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE notify_outbox SET state = ?, attempts = attempts + 1, last_error = ?,"
                f" updated_at = ?, {_RELEASE} WHERE id = ?",
                (state.value, detail, now, entry_id),
            )
            channel = str(row["channel"])
            return channel, _pending_count(conn, channel)

        result = await self._db.transaction(work)
        self._held.discard(entry_id)
        if result is None:
            return False
        self._set_gauge(*result)
        return True

    def _wake(self, channel: str) -> None:
        event = self._wakeups.pop(channel, None)
        if event is not None:
            event.set()

    def _set_gauge(self, channel: str, value: int) -> None:
        if self._metrics is not None:
            self._metrics.record(OUTBOX_PENDING, float(value), {"channel": channel})
