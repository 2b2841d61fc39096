"""The notification log replicas share, and the flush that decides against it (redundant mode).

Every replica runs every check and rule, so each sees the same alerts and groups them the same
way; what must not happen is that each sends its own notification. So a due group is flushed
here (`SharedNotifyLog.flush`, the routing actor's `FlushGate`), as Alertmanager's replicas share
their notification log:

1. read the group's shared log (what was last sent, when, its sequence number `seq`);
2. run the pure `grouping.flush` on it: a replica whose peer already announced these alerts has
   nothing new to send;
3. if there is a notification, write the new log only if `seq` is still the one read
   (compare-and-set) and, in the same transaction, insert the notification into the outbox; if
   another replica flushed the group in between, read again and decide again.

A notification's identity (its idempotency key and outbox key) is deterministic across replicas:
channel, group key, the alerts' fingerprints and statuses, and the firing episode, which is the
group's `seq` in the shared log (every notification of a group advances it). The outbox insert is
`ON CONFLICT DO NOTHING` on it, a second guard. A notification decided while PostgreSQL was
unreachable (spooled locally, `actors.cluster.spooling`) is queued later by `replay`, which decides
it again against the shared log in the same way.

Replicas see a change one check apart. When one has sent a resolution while another still sees
the alert firing, the laggard must not announce it again: the shared log remembers when each
alert was last announced resolved, and a firing alert that started before that is treated as
muted until its replica sees the resolution too. A new episode starts after it, and is sent. (The
comparison is between two replicas' clocks: keep them synchronised, as NTP does.)

Sharded replicas each have only the alerts of the checks they run, so one group's alerts may
be split over several replicas. A flush keeps in the shared log the announced alerts that the
flushing replica does not have in the group at all: each replica announces its own alerts'
changes once, and never re-announces them because a peer's flush left them out. A
notification then lists the group's alerts of the replica that sent it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from functools import partial

from actors.cluster.exceptions import FlushContended
from actors.models import Alert, AlertStatus, Notification
from actors.notify.outbox import Outbox
from actors.routing.grouping import Group, GroupTiming, NotifyLog, flush
from actors.store import Connection, Row, Store, per_dialect

__all__ = ["SharedNotifyLog", "notification_identity"]

MIGRATIONS = per_dialect(
    [
        """
        CREATE TABLE cluster_notify_log (
            group_key TEXT PRIMARY KEY,
            firing TEXT NOT NULL,
            resolved TEXT NOT NULL,
            last_sent REAL,
            seq INTEGER NOT NULL
        );
        """
    ]
)


def notification_identity(channel: str, group: str, seq: int, alerts: Sequence[Alert]) -> str:
    """The key of a notification every replica derives alike (see the module docstring)."""
    h = hashlib.sha256(f"{channel}\x00{group}\x00{seq}".encode())
    for alert in sorted(alerts, key=lambda a: a.fingerprint):
        h.update(f"\x00{alert.fingerprint}|{alert.status}".encode())
    return h.hexdigest()[:32]


def _stale(alert: Alert, resolved: Mapping[str, float]) -> bool:
    """Whether `alert` fires in a view older than a resolution a peer already announced."""
    announced = resolved.get(alert.fingerprint, -math.inf)
    return alert.status is AlertStatus.FIRING and alert.starts_at <= announced


def _decide_again(
    note: Notification, shared: NotifyLog, resolved: Mapping[str, float], at: float
) -> Notification | None:
    """`grouping.flush` of `note`'s alerts on the shared log (no reminder), keyed at its seq."""
    group = Group(
        key=note.group_key,
        channel=note.channel,
        labels=note.group_labels,
        alerts={alert.fingerprint: alert for alert in note.alerts},
        log=shared,
    )
    timing = GroupTiming(repeat_interval=math.inf)
    _, decided = flush(
        group, at, timing, lambda a: _stale(a, resolved), context=lambda _: note.context
    )
    if decided is None:
        return None
    key = notification_identity(note.channel, note.group_key, shared.seq, decided.alerts)
    return replace(decided, key=key, receiver=note.receiver)


def _decode(row: Row | None) -> tuple[NotifyLog, dict[str, float]]:
    if row is None:
        return NotifyLog(), {}
    try:
        firing = frozenset(str(f) for f in json.loads(row["firing"]))
        resolved = {str(k): float(v) for k, v in json.loads(row["resolved"]).items()}
    except (ValueError, TypeError, AttributeError):
        firing, resolved = frozenset(), {}
    last = row["last_sent"]
    return NotifyLog(firing, None if last is None else float(last), int(row["seq"])), resolved


class SharedNotifyLog:
    """The routing actor's `FlushGate` for replicas sharing `database`. See the module doc.

    Args:
        database: the shared store (PostgreSQL; SQLite works too, for one process and tests).
        outbox: notify's outbox (its row is inserted in the flush's transaction).
        enabled: whether a channel has a delivery actor here (a notification for one that has
            not is logged as sent but not queued, as `NotifySubsystem.enqueue` skips it).
        retention: seconds a resolution is remembered against laggards.
        attempts: compare-and-set attempts before FlushContended.

    Raises:
        MigrationError: the table cannot be created.
    """

    def __init__(
        self,
        *,
        database: Store,
        outbox: Outbox,
        enabled: Callable[[str], bool] = lambda _channel: True,
        retention: float = 86400.0,
        attempts: int = 5,
    ) -> None:
        self._db = database
        self._outbox = outbox
        self._enabled = enabled
        self._retention = retention
        self._attempts = attempts
        database.migrate("cluster", MIGRATIONS)

    async def load_logs(self) -> dict[str, NotifyLog]:
        """Every group's shared log.

        Raises:
            QueryError: the read failed.
        """
        rows = await self._db.fetchall("SELECT * FROM cluster_notify_log")
        return {str(row["group_key"]): _decode(row)[0] for row in rows}

    async def flush(
        self,
        group: Group,
        now: float,
        timing: GroupTiming,
        muted: Callable[[Alert], bool],
        context: Callable[[Sequence[Alert]], Mapping[str, object]],
    ) -> tuple[Group | None, Notification | None]:
        """Flush `group` on the shared log; queue its notification, if any, exactly once.

        Returns the group after the flush (None: empty) and the notification this replica
        queued (None: nothing to send, or a peer already sent it).

        Raises:
            QueryError: the store failed (nothing was queued).
            FlushContended: peers changed the group's log under every attempt.
        """
        for _ in range(self._attempts):
            row = await self._db.fetchone(
                "SELECT * FROM cluster_notify_log WHERE group_key = ?", (group.key,)
            )
            shared, resolved = _decode(row)

            def stale_or_muted(alert: Alert, resolved: Mapping[str, float] = resolved) -> bool:
                # A peer announced its resolution: this view is behind.
                return _stale(alert, resolved) or muted(alert)

            after, note = flush(
                replace(group, log=shared), now, timing, stale_or_muted, context=context
            )
            if note is None:
                return after, None
            note = replace(
                note, key=notification_identity(note.channel, group.key, shared.seq, note.alerts)
            )
            log = await self._commit(
                group.key, row, shared, resolved, note, now, known=group.alerts.keys()
            )
            if log is None:
                continue  # a peer flushed this group first: read its log and decide again
            return (None if after is None else replace(after, log=log)), note
        raise FlushContended(group.key, self._attempts)

    async def replay(self, note: Notification, basis: int, decided_at: float) -> bool:
        """Queue a notification decided while the store was unreachable (the local spool),
        exactly once across replicas; True if this call queued it.

        `note` was decided at `decided_at` on the group's log as this replica last knew it,
        whose sequence number was `basis` (its key is `notification_identity` at `basis`). If
        the shared log is still at `basis`, nobody changed the group since: `note` is queued as
        decided (same key on every replica that spooled it) and the log advanced. Otherwise a
        peer flushed the group in between (often the same notification, from its own spool):
        the decision is taken again on the shared log with `note`'s alerts (what a peer
        already announced is not sent again; reminders are not re-sent), and what remains is
        queued under the identity at the shared sequence number.

        Raises:
            QueryError: the store failed (nothing was queued).
            FlushContended: peers changed the group's log under every attempt.
        """
        for _ in range(self._attempts):
            row = await self._db.fetchone(
                "SELECT * FROM cluster_notify_log WHERE group_key = ?", (note.group_key,)
            )
            shared, resolved = _decode(row)
            decided = note
            if shared.seq != basis:
                again = _decide_again(note, shared, resolved, decided_at)
                if again is None:
                    return False
                decided = again
            log = await self._commit(
                note.group_key,
                row,
                shared,
                resolved,
                decided,
                decided_at,
                known={alert.fingerprint for alert in note.alerts},
            )
            if log is not None:
                return True
        raise FlushContended(note.group_key, self._attempts)

    async def _commit(
        self,
        key: str,
        row: Row | None,
        shared: NotifyLog,
        resolved: Mapping[str, float],
        note: Notification,
        now: float,
        *,
        known: AbstractSet[str],
    ) -> NotifyLog | None:
        """Write the group's log after `note` (compare-and-set on `shared.seq`) and queue
        `note` in one transaction; the new log, or None if a peer changed the log first.

        The alerts of the shared log that this replica does not know in the group (`known`:
        its fingerprints there) stay announced: sharded, another replica evaluates them, and
        announces their end itself."""
        carried = shared.firing - known
        log = NotifyLog(
            frozenset(a.fingerprint for a in note.alerts if a.status is AlertStatus.FIRING)
            | carried,
            now,
            shared.seq + 1,
        )
        remembered = {
            fp: at
            for fp, at in resolved.items()
            if fp not in log.firing and at >= now - self._retention
        }
        for alert in note.alerts:
            if alert.status is AlertStatus.RESOLVED:
                remembered[alert.fingerprint] = now
        values = (json.dumps(sorted(log.firing)), json.dumps(remembered), now, log.seq)
        result = await self._db.transaction(
            partial(self._write, key=key, row=row, seq=shared.seq, values=values, note=note)
        )
        if result is None:
            return None
        inserted, pending = result
        if pending >= 0:
            self._outbox.inserted(note.channel, inserted=inserted, pending=pending)
        return log

    def _write(
        self,
        conn: Connection,
        *,
        key: str,
        row: Row | None,
        seq: int,
        values: tuple[str, str, float, int],
        note: Notification,
    ) -> tuple[bool, int] | None:
        if row is None:
            cursor = conn.execute(
                "INSERT INTO cluster_notify_log (firing, resolved, last_sent, seq, group_key)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_key) DO NOTHING",
                (*values, key),
            )
        else:
            cursor = conn.execute(
                "UPDATE cluster_notify_log SET firing = ?, resolved = ?, last_sent = ?, seq = ?"
                " WHERE group_key = ? AND seq = ?",
                (*values, key, seq),
            )
        if cursor.rowcount != 1:
            return None
        if not self._enabled(note.channel):
            return False, -1
        return self._outbox.insert(conn, note)
