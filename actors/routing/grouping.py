"""Alert groups, Alertmanager style, as pure functions over frozen `Group` values.

A group holds the alerts of one destination (channel + route) that share the `group_by` label
values. Its timer (`next_flush`, wall seconds):
- a new group flushes `group_wait` after its first alert (0 s: at once);
- after each flush, a group that still holds alerts flushes again `group_interval` later, so
  alerts that join a flushed group wait for that tick.

At a flush (`flush()`), with muted alerts (silenced, inhibited, held, in maintenance) left out,
a notification is sent when a visible firing alert was not in the last notification, when an
alert that receivers were told is firing has resolved, or when `repeat_interval` has passed since
the last notification and something still fires (a reminder). An alert that resolves before its
first notification (e.g. within `group_wait`) is never sent. Resolved alerts leave the group after
a flush; an empty group is dropped by the caller.

The idempotency key of a notification hashes channel, group key, sequence number and the
(fingerprint, starts_at, status) of its alerts, so re-sending the same flush after a crash yields
the same key, while a later reminder or a new firing of the same alert does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from actors.models import Alert, AlertStatus, Labels, Notification

__all__ = [
    "Group",
    "GroupTiming",
    "NotifyLog",
    "add_alert",
    "flush",
    "group_key",
    "group_labels",
    "notification_key",
]


@dataclass(frozen=True, slots=True)
class GroupTiming:
    """group_wait, group_interval and repeat_interval in seconds."""

    group_wait: float = 0.0
    group_interval: float = 60.0
    repeat_interval: float = 14400.0


@dataclass(frozen=True, slots=True)
class NotifyLog:
    """What was last sent for a group (persisted so a restart neither re-pages nor forgets)."""

    firing: frozenset[str] = frozenset()
    last_sent: float | None = None
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Group:
    """One alert group of one destination."""

    key: str
    channel: str
    labels: Labels
    alerts: Mapping[str, Alert] = field(default_factory=dict)
    next_flush: float | None = None
    log: NotifyLog = NotifyLog()
    timing: GroupTiming = GroupTiming()
    """The timers of the route the group belongs to."""
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


def group_labels(labels: Mapping[str, str], group_by: Sequence[str]) -> Labels:
    """The group's labels: the alert's values of `group_by` (`...` groups by every label).

    As in Alertmanager, a label the alert does not have (or has empty: the same thing for
    Prometheus) is not a group label: no `cluster=""`."""
    if "..." in group_by:
        return tuple(sorted((name, value) for name, value in labels.items() if value))
    return tuple(sorted((name, labels[name]) for name in set(group_by) if labels.get(name)))


def group_key(channel: str, route: str, labels: Labels) -> str:
    """A readable, stable key: `channel/route:{name="value",...}`."""
    inner = ",".join(f'{name}="{value}"' for name, value in labels)
    return f"{channel}/{route}:{{{inner}}}"


def add_alert(group: Group, alert: Alert, now: float, timing: GroupTiming) -> Group:
    """The group with `alert` added or updated; schedules the first flush of a new group."""
    alerts = dict(group.alerts)
    alerts[alert.fingerprint] = alert
    next_flush = group.next_flush
    if next_flush is None:
        next_flush = now + timing.group_wait
    return replace(group, alerts=alerts, next_flush=next_flush)


def notification_key(channel: str, key: str, seq: int, alerts: Sequence[Alert]) -> str:
    """The idempotency key of a notification (see the module docstring)."""
    h = hashlib.sha256(f"{channel}\x00{key}\x00{seq}".encode())
    for alert in sorted(alerts, key=lambda a: a.fingerprint):
        h.update(f"\x00{alert.fingerprint}|{alert.starts_at!r}|{alert.status}".encode())
    return h.hexdigest()[:32]


def flush(
    group: Group,
    now: float,
    timing: GroupTiming,
    muted: Callable[[Alert], bool],
    *,
    context: Callable[[Sequence[Alert]], Mapping[str, object]] | None = None,
) -> tuple[Group | None, Notification | None]:
    """Flush `group` at `now`: the group after it (None when empty) and the notification to send.

    `muted(alert)` says whether a firing alert is muted now; a resolved alert that receivers were
    told is firing is always sent. `context(alerts)` adds `Notification.context` (e.g. held
    alerts).
    """
    firing = [a for a in group.alerts.values() if a.status is AlertStatus.FIRING and not muted(a)]
    resolved = [
        a
        for a in group.alerts.values()
        if a.status is AlertStatus.RESOLVED and a.fingerprint in group.log.firing
    ]
    firing_fps = frozenset(a.fingerprint for a in firing)
    log = group.log
    send = bool(resolved) or not firing_fps <= log.firing
    if not send and firing and log.last_sent is not None:
        send = now - log.last_sent >= timing.repeat_interval
    remaining = {fp: a for fp, a in group.alerts.items() if a.status is AlertStatus.FIRING}
    notification: Notification | None = None
    if send:
        alerts = sorted(firing, key=lambda a: a.fingerprint) + sorted(
            resolved, key=lambda a: a.fingerprint
        )
        notification = Notification(
            key=notification_key(group.channel, group.key, log.seq, alerts),
            channel=group.channel,
            group_key=group.key,
            group_labels=group.labels,
            status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
            alerts=tuple(alerts),
            created_at=now,
            receiver=group.channel,
            context=dict(context(alerts)) if context is not None else {},
        )
        log = NotifyLog(firing=firing_fps, last_sent=now, seq=log.seq + 1)
    elif not firing_fps and not remaining:
        log = replace(log, firing=frozenset())
    if not remaining:
        return None, notification
    return replace(group, alerts=remaining, next_flush=now + timing.group_interval, log=log), (
        notification
    )
