"""The routing actor under the autojump clock: grouping timers, repeat, silences, inhibition,
dependency holds, maintenance, escalation, persistence across a restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock

from actors.clock import VirtualClock
from actors.models import (
    Alert,
    AlertEvent,
    AlertStatus,
    CheckResult,
    CheckStatus,
    Notification,
    labels_of,
)
from actors.routing.actor import RoutingActor
from actors.routing.config import (
    InhibitConfig,
    MaintenanceConfig,
    RoutingConfig,
    SilenceConfig,
    TimeIntervalConfig,
)
from actors.routing.persist import MemoryRoutingStore, RoutingStore, SqliteRoutingStore
from actors.routing.silencing import Silences
from actors.rules.evaluate import fingerprint
from actors.store import Database

# 2026-11-29 is a Sunday; the clock starts at 01:00 UTC.
START = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC).timestamp()


class FakeOutbox:
    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.keys: set[tuple[str, str]] = set()
        self.event = trio.Event()

    async def enqueue(self, notification: Notification) -> bool:
        if (notification.key, notification.channel) in self.keys:
            return False
        self.keys.add((notification.key, notification.channel))
        self.sent.append(notification)
        self.event.set()
        return True

    def take(self) -> list[Notification]:
        out, self.sent = self.sent, []
        return out


class FakeHealth:
    def __init__(self) -> None:
        self.results: dict[str, CheckResult] = {}

    def current(self, name: str) -> CheckResult | None:
        return self.results.get(name)

    def block(self, check: str, by: str) -> None:
        self.results[check] = CheckResult(
            check, CheckStatus.FAIL, "blocked", 0, 0, CheckStatus.FAIL, details={"blocked_by": by}
        )


class Harness:
    def __init__(
        self,
        store: RoutingStore | None = None,
        clock: VirtualClock | None = None,
        **config: Any,
    ) -> None:
        routing = {
            k: config.pop(k)
            for k in list(config)
            if k not in ("inhibit", "silences", "maintenance", "time_intervals", "health")
        }
        self.clock = clock or VirtualClock(START)
        self.outbox = FakeOutbox()
        self.send, receive = trio.open_memory_channel[AlertEvent](100)
        store = store or MemoryRoutingStore()
        self.silences = Silences(
            store=store,
            clock=self.clock,
            configured=[SilenceConfig.model_validate(s) for s in config.get("silences", [])],
        )
        self.actor = RoutingActor(
            config=RoutingConfig.model_validate(routing),
            events=receive,
            outbox=self.outbox,
            clock=self.clock,
            store=store,
            inhibit=[InhibitConfig.model_validate(i) for i in config.get("inhibit", [])],
            silences=self.silences,
            maintenance=[
                MaintenanceConfig.model_validate(m) for m in config.get("maintenance", [])
            ],
            time_intervals=[
                TimeIntervalConfig.model_validate(t) for t in config.get("time_intervals", [])
            ],
            health=config.get("health"),
        )

    async def fire(
        self,
        name: str = "A",
        *,
        status: AlertStatus = AlertStatus.FIRING,
        channels: tuple[str, ...] = ("hooks",),
        starts_at: float | None = None,
        **labels: str,
    ) -> Alert:
        all_labels = labels_of({"alertname": name, "severity": "warning", **labels})
        alert = Alert(
            fingerprint=fingerprint(all_labels),
            labels=all_labels,
            annotations=(),
            status=status,
            starts_at=START if starts_at is None else starts_at,
            ends_at=None if status is AlertStatus.FIRING else self.clock.now(),
        )
        await self.send.send(AlertEvent(alert, "r", channels, self.clock.now()))
        await trio.sleep(0.001)
        return alert


def _names(notifications: list[Notification]) -> list[tuple[str, str, list[str]]]:
    return [
        (n.channel, str(n.status), [dict(a.labels)["alertname"] for a in n.alerts])
        for n in notifications
    ]


async def test_pages_at_once_then_batches_resolves_and_repeats(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness(group_by=["check"], group_interval="1m", repeat_interval="10m")
    await nursery.start(h.actor.run)
    await h.fire("A", check="db")
    assert _names(h.outbox.take()) == [("hooks", "firing", ["A"])]
    await h.fire("B", check="db")
    assert h.outbox.take() == []  # joins the group: waits for its tick
    await trio.sleep(60)
    (n,) = h.outbox.take()
    assert sorted(dict(a.labels)["alertname"] for a in n.alerts) == ["A", "B"]
    await trio.sleep(9 * 60 - 1)
    assert h.outbox.take() == []
    await trio.sleep(62)
    (reminder,) = h.outbox.take()
    assert len(reminder.alerts) == 2
    assert reminder.key != n.key
    await h.fire("A", status=AlertStatus.RESOLVED, check="db")
    await h.fire("B", status=AlertStatus.RESOLVED, check="db")
    await trio.sleep(60)
    (resolved,) = h.outbox.take()
    assert resolved.status is AlertStatus.RESOLVED
    assert h.actor.groups() == []


async def test_resolved_within_group_wait_is_never_sent(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness(group_wait="30s")
    await nursery.start(h.actor.run)
    await h.fire("A")
    await trio.sleep(10)
    await h.fire("A", status=AlertStatus.RESOLVED)
    await trio.sleep(60)
    assert h.outbox.take() == []


async def test_routes_with_continue(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    h = Harness(
        routes=[{"matchers": ["severity=critical"], "channels": ["pagerduty"], "continue": True}]
    )
    await nursery.start(h.actor.run)
    await h.fire("A", severity="critical", channels=("email", "slack"))
    assert sorted(n.channel for n in h.outbox.take()) == ["email", "pagerduty", "slack"]


async def test_silence_from_config_and_api(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness(
        silences=[{"matchers": ["alertname=Quiet"], "ends": "2030-01-01T00:00:00Z", "comment": "x"}]
    )
    await nursery.start(h.actor.run)
    await h.fire("Quiet")
    assert h.outbox.take() == []
    silence = await h.silences.add(
        matchers=["alertname=Loud"], ends_at=h.clock.now() + 3600, created_by="ops"
    )
    await h.fire("Loud")
    assert h.outbox.take() == []
    assert h.actor.mute_status(await h.fire("Loud")).silenced_by == (silence.id,)
    await h.silences.expire(silence.id)
    await trio.sleep(60)
    assert _names(h.outbox.take()) == [("hooks", "firing", ["Loud"])]
    assert [s.state(h.clock.now()).value for s in h.silences.all()] == ["expired", "active"]


async def test_inhibition(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    h = Harness(
        group_by=["alertname"],
        inhibit=[
            {"source": ["severity=critical"], "target": ["severity=warning"], "equal": ["check"]}
        ],
    )
    await nursery.start(h.actor.run)
    await h.fire("Down", severity="critical", check="db")
    await h.fire("Slow", severity="warning", check="db")
    await h.fire("Other", severity="warning", check="api")
    assert sorted(n.alerts[0].labels[0][1] for n in h.outbox.take()) == ["Down", "Other"]


async def test_dependency_hold_names_held_alerts_in_the_parent(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    health = FakeHealth()
    health.block("api", "database")
    h = Harness(group_by=["alertname"], group_wait="1s", health=health)
    await nursery.start(h.actor.run)
    await h.fire("API down", check="api")
    await h.fire("DB down", check="database")
    await trio.sleep(2)
    (n,) = h.outbox.take()
    assert dict(n.alerts[0].labels)["alertname"] == "DB down"
    assert n.context["held"] == [
        {
            "alertname": "API down",
            "check": "api",
            "blocked_by": "database",
            "fingerprint": fingerprint(
                labels_of({"alertname": "API down", "severity": "warning", "check": "api"})
            ),
        }
    ]
    del health.results["api"]  # the dependency recovered, the api is still down
    await trio.sleep(60)
    assert _names(h.outbox.take()) == [("hooks", "firing", ["API down"])]


async def test_maintenance_window_holds(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    h = Harness(
        maintenance=[{"matchers": ["check=database"], "cron": "0 2 * * SUN", "duration": "1h"}]
    )
    await nursery.start(h.actor.run)
    await trio.sleep(3600 + 60)  # 02:01 on a Sunday
    await h.fire("DB down", check="database")
    await h.fire("API down", check="api")
    assert _names(h.outbox.take()) == [("hooks", "firing", ["API down"])]
    await trio.sleep(3600)  # window over: sent at the group's next tick
    assert _names(h.outbox.take()) == [("hooks", "firing", ["DB down"])]


async def test_escalation(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    h = Harness(escalate_after="10m", escalate_to=["pagerduty"])
    await nursery.start(h.actor.run)
    await h.fire("Down", severity="critical", starts_at=h.clock.now())
    await h.fire("Meh", severity="warning", starts_at=h.clock.now())
    assert len(h.outbox.take()) == 2
    await trio.sleep(600)
    assert _names(h.outbox.take()) == [("pagerduty", "firing", ["Down"])]
    await h.fire("Down", status=AlertStatus.RESOLVED, severity="critical", starts_at=START + 0.0)
    await trio.sleep(60)
    assert sorted(_names(h.outbox.take())) == [
        ("hooks", "resolved", ["Down"]),
        ("pagerduty", "resolved", ["Down"]),
    ]


async def test_restart_does_not_repage_and_still_resolves(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    db = Database(tmp_path / "m.db", synchronous="NORMAL", offload=False)
    clock = VirtualClock(START)
    h = Harness(store=SqliteRoutingStore(database=db), clock=clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.actor.run)
        await h.fire("A")
        assert len(h.outbox.take()) == 1
        nursery.cancel_scope.cancel()
    h2 = Harness(store=SqliteRoutingStore(database=db), clock=clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(h2.actor.run)
        await h2.fire("A")  # the rules actor re-announces restored alerts
        await trio.sleep(120)
        assert h2.outbox.take() == []
        await h2.fire("A", status=AlertStatus.RESOLVED)
        await trio.sleep(60)
        assert _names(h2.outbox.take()) == [("hooks", "resolved", ["A"])]
        nursery.cancel_scope.cancel()
    db.close()


async def test_silences_persist(tmp_path: Path, autojump_clock: MockClock) -> None:
    db = Database(tmp_path / "m.db", synchronous="NORMAL", offload=False)
    h = Harness(store=SqliteRoutingStore(database=db))
    async with trio.open_nursery() as nursery:
        await nursery.start(h.actor.run)
        s = await h.silences.add(matchers=["a=b"], ends_at=START + 3600, comment="c")
        nursery.cancel_scope.cancel()
    h2 = Harness(store=SqliteRoutingStore(database=db))
    async with trio.open_nursery() as nursery:
        await nursery.start(h2.actor.run)
        assert [x.id for x in h2.silences.all()] == [s.id]
        assert h2.silences.all()[0].comment == "c"
        nursery.cancel_scope.cancel()
    db.close()


async def test_resolution_follows_the_alert_when_its_channels_change(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    h = Harness()
    await nursery.start(h.actor.run)
    await h.fire("A", channels=("email",))
    assert _names(h.outbox.take()) == [("email", "firing", ["A"])]
    await h.fire("A", status=AlertStatus.RESOLVED, channels=("slack",))
    await trio.sleep(60)
    assert _names(h.outbox.take()) == [("email", "resolved", ["A"])]


async def test_a_released_alert_is_forgotten_without_a_notification(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    # Sharded replicas: the alert's check moved to another replica, which continues it.
    h = Harness(
        group_by=["check"],
        group_interval="1m",
        repeat_interval="10m",
        inhibit=[{"source": ["alertname=A"], "target": ["alertname=B"], "equal": ["check"]}],
    )
    await nursery.start(h.actor.run)
    a = await h.fire("A", check="db")
    await h.fire("B", check="api")
    assert len(h.outbox.take()) == 2
    await h.send.send(AlertEvent(a, "r", ("hooks",), h.clock.now(), released=True))
    await trio.sleep(0.001)
    assert [sorted(g.alerts) for g in h.actor.groups() if a.fingerprint in g.alerts] == []
    await trio.sleep(20 * 60)  # no resolution, no reminder for the released alert
    sent = h.outbox.take()
    assert all(a.fingerprint not in {x.fingerprint for x in n.alerts} for n in sent)
    # It no longer inhibits anything here.
    b = await h.fire("B", check="db")
    assert not h.actor.mute_status(b).inhibited
