"""The routing actor: AlertEvents in, Notifications out (durably, through the outbox).

A thin loop around the pure modules of this package: each event is routed (`routes`), added to
its groups (`grouping`); the actor owns the group timers and flushes due groups, leaving out
muted alerts (the shared `Silences`, `inhibit`, `maintenance`, dependency `holds`), and hands every
notification to the outbox, whose `enqueue` is durable before it returns. Only then is the
group's notification log persisted, so a crash in between re-sends the same notification with
the same idempotency key, which the outbox ignores.

Replicas (a `FlushGate`, `actors.cluster.notifylog`): each replica routes and groups on its own,
but a due group is flushed through the gate, which decides against the notification log the
replicas share and queues the notification in the same transaction, so replicas that see the
same alerts send one notification; the silences are refreshed from the store first.

Escalation: with `escalate_after`/`escalate_to` set, a critical alert still firing that long
after it started also goes to the `escalate_to` channels (grouped like any other route, and
resolved there too).

Time: wall seconds from the `Clock`; timers sleep on the event loop's clock, so under the
autojump clock (with `VirtualClock`) every timer is deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import anyio
import trio

from actors.clock import Clock
from actors.models import Alert, AlertEvent, AlertStatus, CheckResult, Notification, Severity
from actors.routing.config import (
    InhibitConfig,
    MaintenanceConfig,
    RoutingConfig,
    TimeIntervalConfig,
)
from actors.routing.grouping import (
    Group,
    GroupTiming,
    NotifyLog,
    add_alert,
    flush,
    group_key,
    group_labels,
)
from actors.routing.holds import blocked_by_of, held_for
from actors.routing.inhibit import InhibitRule, inhibited, parse_inhibit_rule
from actors.routing.maintenance import MaintenanceWindow, parse_window
from actors.routing.persist import MemoryRoutingStore, RoutingStore
from actors.routing.routes import Destination, Route, route_alert, route_from_config
from actors.routing.silencing import Silences
from actors.routing.timeintervals import TimeInterval, any_contains
from actors.store.errors import StoreError

__all__ = ["AlertSource", "HealthView", "MuteStatus", "NotificationSink", "RoutingActor"]


class AlertSource(Protocol):
    """Where events come from: a trio memory channel or a runtime `Mailbox` receive side."""

    async def receive(self) -> AlertEvent:
        """The next event."""
        ...


class NotificationSink(Protocol):
    """notify's `Outbox`: `enqueue` is durable before it returns and idempotent on the key."""

    async def enqueue(self, notification: Notification) -> bool:
        """Queue a notification; False if its key was already queued."""
        ...


class FlushGate(Protocol):
    """Flushes groups against a notification log shared by replicas (see the module doc)."""

    async def load_logs(self) -> dict[str, NotifyLog]:
        """Every group's shared notification log, by group key."""
        ...

    async def flush(
        self,
        group: Group,
        now: float,
        timing: GroupTiming,
        muted: Callable[[Alert], bool],
        context: Callable[[Sequence[Alert]], Mapping[str, object]],
    ) -> tuple[Group | None, Notification | None]:
        """`grouping.flush` decided on the shared log; the notification (if any) is queued and
        the shared log written before this returns. Raises: the store's errors."""
        ...


class HealthView(Protocol):
    """The part of the health state routing reads (`HealthState` satisfies it)."""

    def current(self, name: str) -> CheckResult | None:
        """The latest result of check `name`."""
        ...


@dataclass(frozen=True, slots=True)
class MuteStatus:
    """Why an alert is not being sent right now (all empty/False: it is not muted)."""

    silenced_by: tuple[str, ...] = ()
    inhibited: bool = False
    held_by: tuple[str, ...] = ()
    maintenance: bool = False

    @property
    def muted(self) -> bool:
        """Whether any reason applies."""
        return bool(self.silenced_by or self.inhibited or self.held_by or self.maintenance)


class RoutingActor:
    """Routes, groups, mutes and notifies. See the module docstring.

    Args:
        config: [routing].
        events: where AlertEvents come from (the rules actor's sink).
        outbox: notify's Outbox.
        clock: wall time.
        inhibit, maintenance: [[inhibit]], [[maintenance]].
        time_intervals: [[time_intervals]], named by routes' mute/active_time_intervals.
        silences: the process's silences, which outlive this actor (default: a new set kept
            in `store`, with no configured silence); the actor loads them when it starts.
        store: persisted notification logs (default in-memory).
        health: the health state, for dependency holds (none: no holds).
        gate: with replicas, where due groups are flushed (the shared notification log);
            None: one process, flushed here and logged in `store`.
        logger: where enqueue failures are logged.
        tick: longest sleep between timer checks, seconds.

    Raises:
        InvalidMatcher, InvalidCron: never for validated config models.
    """

    def __init__(
        self,
        *,
        config: RoutingConfig,
        events: AlertSource,
        outbox: NotificationSink,
        clock: Clock,
        inhibit: Sequence[InhibitConfig] = (),
        silences: Silences | None = None,
        maintenance: Sequence[MaintenanceConfig] = (),
        time_intervals: Sequence[TimeIntervalConfig] = (),
        store: RoutingStore | None = None,
        health: HealthView | None = None,
        gate: FlushGate | None = None,
        logger: logging.Logger | None = None,
        tick: float = 1.0,
    ) -> None:
        self._config = config
        self._events = events
        self._outbox = outbox
        self._clock = clock
        self._store: RoutingStore = store if store is not None else MemoryRoutingStore()
        self._health = health
        self._gate = gate
        self._log = logger or logging.getLogger("blipee.routing")
        self._tick = tick
        self._timing = GroupTiming(config.group_wait, config.group_interval, config.repeat_interval)
        self._routes: tuple[Route, ...] = tuple(route_from_config(r) for r in config.routes)
        self._intervals: dict[str, TimeInterval] = {t.name: t.build() for t in time_intervals}
        self._inhibit: tuple[InhibitRule, ...] = tuple(
            parse_inhibit_rule(i.source, i.target, i.equal) for i in inhibit
        )
        self._windows: tuple[MaintenanceWindow, ...] = tuple(
            parse_window(m.matchers, m.cron, m.duration, m.comment, m.timezone) for m in maintenance
        )
        self._silences = (
            silences if silences is not None else Silences(store=self._store, clock=clock)
        )
        self._groups: dict[str, Group] = {}
        self._logs: dict[str, NotifyLog] = {}
        self._active: dict[str, AlertEvent] = {}
        self._escalated: set[str] = set()
        self._firing_cache: list[tuple[str, Mapping[str, str]]] = []
        self._wake = trio.Event()
        self.sent = 0

    # -- introspection -----------------------------------------------------------------------

    def mute_status(self, alert: Alert) -> MuteStatus:
        """Why `alert` is muted now, if it is."""
        now = self._clock.now()
        labels = dict(alert.labels)
        firing = [
            (fp, dict(e.alert.labels))
            for fp, e in self._active.items()
            if e.alert.status is AlertStatus.FIRING
        ]
        return MuteStatus(
            silenced_by=self._silences.silenced_by(labels, now),
            inhibited=bool(self._inhibit)
            and inhibited(self._inhibit, labels, alert.fingerprint, firing),
            held_by=self._blocked(labels),
            maintenance=any(w.holds(labels, now) for w in self._windows),
        )

    def groups(self) -> list[Group]:
        """The live groups (for the API and tests)."""
        return list(self._groups.values())

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load persisted state, then route until cancelled. Started once state is loaded."""
        await self._load()
        task_status.started()
        closed = False
        while True:
            await self._flush_due()
            timeout = max(0.0, min(self._next_deadline(), self._clock.now() + self._tick))
            timeout -= self._clock.now()
            if closed:
                await trio.sleep(max(timeout, 0.0))
                continue
            with trio.move_on_after(max(timeout, 0.0)):
                try:
                    event = await self._events.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError, anyio.EndOfStream):
                    # a memory channel or a runtime Mailbox closed and drained: no more events
                    closed = True
                    continue
                self.handle(event)

    def handle(self, event: AlertEvent) -> None:
        """Route one event into its groups (flushing happens in the loop); a `released` one is
        forgotten instead (`forget`)."""
        alert = event.alert
        fp = alert.fingerprint
        if event.released:
            self.forget(fp)
            return
        labels = dict(alert.labels)
        firing = alert.status is AlertStatus.FIRING
        if firing:
            self._active[fp] = event
        else:
            self._active.pop(fp, None)
        dests = route_alert(
            labels, event.channels, self._routes, self._config.group_by, self._timing
        )
        if fp in self._escalated or (firing and self._escalation_due(alert, self._clock.now())):
            dests += self._escalation_destinations()
            if firing:
                self._escalated.add(fp)
        if not firing:
            self._escalated.discard(fp)
        keys = {self._add(dest, alert, labels) for dest in dests}
        if not firing:
            # Resolve it wherever it was announced, even if its routes changed since (a rule's
            # channels edited on reload, a rule removed): receivers must hear the resolution.
            now = self._clock.now()
            for key, group in list(self._groups.items()):
                if key not in keys and fp in group.alerts:
                    self._groups[key] = add_alert(group, alert, now, group.timing)

    def forget(self, fingerprint: str) -> None:
        """Drop an alert from every group without announcing anything: another replica owns it
        now and continues it against the shared notification log (sharded replicas). A group
        left empty is dropped; its shared log stays as the owner's flushes leave it."""
        self._active.pop(fingerprint, None)
        self._escalated.discard(fingerprint)
        for key, group in list(self._groups.items()):
            if fingerprint not in group.alerts:
                continue
            alerts = {fp: a for fp, a in group.alerts.items() if fp != fingerprint}
            if alerts:
                self._groups[key] = replace(group, alerts=alerts)
            else:
                del self._groups[key]

    # -- internals ---------------------------------------------------------------------------

    async def _load(self) -> None:
        source = self._gate if self._gate is not None else self._store
        self._logs = await source.load_logs()
        await self._silences.load()

    def _escalation_due(self, alert: Alert, now: float) -> bool:
        after = self._config.escalate_after
        return (
            after is not None
            and dict(alert.labels).get("severity") == Severity.CRITICAL
            and now - alert.starts_at >= after
        )

    def _escalation_destinations(self) -> list[Destination]:
        return [
            Destination(channel, "escalation", tuple(self._config.group_by), self._timing)
            for channel in self._config.escalate_to
        ]

    def _add(self, dest: Destination, alert: Alert, labels: Mapping[str, str]) -> str:
        glabels = group_labels(labels, dest.group_by)
        key = group_key(dest.channel, dest.route, glabels)
        group = self._groups.get(key)
        if group is None:
            log = self._logs.get(key, NotifyLog())
            if alert.status is AlertStatus.RESOLVED and alert.fingerprint not in log.firing:
                return key  # never announced on this destination: nothing to resolve
            group = Group(
                key=key,
                channel=dest.channel,
                labels=glabels,
                log=log,
                timing=dest.timing,
                mute_time_intervals=dest.mute_time_intervals,
                active_time_intervals=dest.active_time_intervals,
            )
        self._groups[key] = add_alert(group, alert, self._clock.now(), group.timing)
        return key

    async def _flush_shared(self, group: Group, now: float, gate: FlushGate) -> None:
        """Flush `group` through the replicas' gate (the shared log is written by the gate)."""
        try:
            after, notification = await gate.flush(
                group, now, group.timing, self._muted, self._context
            )
        except Exception as exc:  # nothing was queued; try again at the next tick
            self._log.error("cannot queue notification for %s: %s", group.key, exc)
            self._groups[group.key] = replace(group, next_flush=now + self._tick)
            return
        if notification is not None:
            self.sent += 1
        if after is None:
            del self._groups[group.key]
            self._logs.pop(group.key, None)
            return
        self._groups[group.key] = after
        self._logs[group.key] = after.log

    def _next_deadline(self) -> float:
        deadline = float("inf")
        for group in self._groups.values():
            if group.next_flush is not None:
                deadline = min(deadline, group.next_flush)
        after = self._config.escalate_after
        if after is not None:
            for fp, event in self._active.items():
                if fp not in self._escalated and (
                    dict(event.alert.labels).get("severity") == Severity.CRITICAL
                ):
                    deadline = min(deadline, event.alert.starts_at + after)
        return deadline

    def _escalate(self, now: float) -> None:
        if self._config.escalate_after is None:
            return
        for fp, event in list(self._active.items()):
            if fp not in self._escalated and self._escalation_due(event.alert, now):
                self._escalated.add(fp)
                labels = dict(event.alert.labels)
                for dest in self._escalation_destinations():
                    self._add(dest, event.alert, labels)

    def _blocked(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        check = labels.get("check")
        if self._health is None or not check:
            return ()
        result = self._health.current(check)
        if result is None:
            return ()
        return blocked_by_of(result.details)

    def _muted(self, alert: Alert) -> bool:
        now = self._clock.now()
        labels = dict(alert.labels)
        if self._silences.mutes(labels, now):
            return True
        if self._blocked(labels):
            return True
        if any(w.holds(labels, now) for w in self._windows):
            return True
        return bool(self._inhibit) and inhibited(
            self._inhibit, labels, alert.fingerprint, self._firing_cache
        )

    def _time_muted(self, group: Group, now: float) -> bool:
        """Whether the group's route is muted at `now` by its time intervals: in one of its
        `mute_time_intervals`, or outside every one of its `active_time_intervals`."""
        mute = [self._intervals[n] for n in group.mute_time_intervals if n in self._intervals]
        if any_contains(mute, now):
            return True
        active = [self._intervals[n] for n in group.active_time_intervals if n in self._intervals]
        return bool(group.active_time_intervals) and not any_contains(active, now)

    def _context(self, alerts: Sequence[Alert]) -> Mapping[str, object]:
        if self._health is None:
            return {}
        held: list[tuple[Alert, tuple[str, ...]]] = []
        for event in self._active.values():
            blockers = self._blocked(dict(event.alert.labels))
            if blockers:
                held.append((event.alert, blockers))
        names = held_for(alerts, held)
        return {"held": names} if names else {}

    async def _flush_due(self) -> None:
        now = self._clock.now()
        self._escalate(now)
        due = [g for g in self._groups.values() if g.next_flush is not None and g.next_flush <= now]
        if not due:
            return
        self._firing_cache = [
            (fp, dict(e.alert.labels))
            for fp, e in self._active.items()
            if e.alert.status is AlertStatus.FIRING
        ]
        if self._gate is not None:
            try:  # no notification is decided on silences older than this flush
                await self._silences.refresh()
            except Exception as exc:  # flush on the silences known; the next flush refreshes
                self._log.warning("cannot refresh silences: %s", exc)
        for group in due:
            if self._time_muted(group, now):
                # Alertmanager's time mute/active stages: nothing is sent and the notification
                # log is unchanged, so the group's alerts go out at a tick outside the interval.
                self._groups[group.key] = replace(
                    group, next_flush=now + group.timing.group_interval
                )
                continue
            if self._gate is not None:
                await self._flush_shared(group, now, self._gate)
                continue
            after, notification = flush(
                group, now, group.timing, self._muted, context=self._context
            )
            if notification is not None:
                try:
                    await self._outbox.enqueue(notification)
                except Exception as exc:  # the write failed: nothing is queued; retry soon
                    self._log.error("cannot queue notification for %s: %s", group.key, exc)
                    self._groups[group.key] = replace(group, next_flush=now + self._tick)
                    continue
                self.sent += 1
            if after is None:
                del self._groups[group.key]
                if group.key in self._logs:
                    del self._logs[group.key]
                    await self._save_log(group.key, None)
                continue
            self._groups[group.key] = after
            if notification is not None:
                self._logs[group.key] = after.log
                await self._save_log(group.key, after.log)

    async def _save_log(self, key: str, log: NotifyLog | None) -> None:
        """Persist a group's notification log; a failing store is logged, not raised (the log
        is kept in memory and written again with the group's next notification; only a
        restart during the outage forgets it)."""
        try:
            await self._store.save_log(key, log)
        except StoreError as exc:
            self._log.error("cannot save the notification log of %s: %s", key, exc)
