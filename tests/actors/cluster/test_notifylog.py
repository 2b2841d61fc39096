"""Replicas flushing the same groups through the shared notification log: one notification per
change, whatever the order and however close together they flush. Run against both engines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import trio

from actors.clock import FixedClock
from actors.cluster.notifylog import SharedNotifyLog, notification_identity
from actors.models import Alert, AlertStatus
from actors.notify.outbox import EntryState, Outbox
from actors.routing.grouping import Group, GroupTiming, add_alert
from tests.actors.notify.factories import make_alert
from tests.conftest import Stores

T0 = 1_700_000_000.0
TIMING = GroupTiming(group_wait=0.0, group_interval=1.0, repeat_interval=3600.0)
KEY = 'hooks/default:{alertname="High API Latency"}'


class Replica:
    def __init__(self, stores: Stores) -> None:
        self.clock = FixedClock(T0)
        self.outbox = Outbox(database=stores.open(), clock=self.clock, replica="r", poll=1.0)
        self.log = SharedNotifyLog(database=stores.open(), outbox=self.outbox)
        self.group = Group(key=KEY, channel="hooks", labels=(("alertname", "High API Latency"),))

    def see(self, alert: Alert) -> None:
        self.group = add_alert(self.group, alert, self.clock.now(), TIMING)

    async def flush(self, now: float) -> str | None:
        """Flush at `now`; the status of what this replica queued, or None."""
        after, note = await self.log.flush(self.group, now, TIMING, _unmuted, _no_context)
        if after is not None:
            self.group = after
        return None if note is None else note.status.value


def _unmuted(alert: Alert) -> bool:
    return False


def _no_context(alerts: Sequence[Alert]) -> Mapping[str, object]:
    return {}


async def _queued(replica: Replica) -> list[str]:
    rows = await replica.outbox.pending("hooks")
    return [row.status.value for row in rows]


async def test_two_replicas_seeing_one_outage_send_one_firing_and_one_resolved(
    stores: Stores,
) -> None:
    a, b = Replica(stores), Replica(stores)
    # Each replica's rule fired on its own, half a second apart.
    a.see(make_alert(starts_at=T0))
    b.see(make_alert(starts_at=T0 + 0.5))
    assert await a.flush(T0 + 1) == "firing"
    assert await b.flush(T0 + 1.5) is None  # a peer announced it already
    # b sees the recovery first and announces it; a still sees the alert firing.
    b.see(make_alert(status=AlertStatus.RESOLVED, starts_at=T0 + 0.5, ends_at=T0 + 60))
    assert await b.flush(T0 + 61) == "resolved"
    assert await a.flush(T0 + 61.5) is None  # a's view is behind: not announced again
    a.see(make_alert(status=AlertStatus.RESOLVED, starts_at=T0, ends_at=T0 + 61))
    assert await a.flush(T0 + 62) is None
    assert await _queued(a) == ["firing", "resolved"]
    logs = await b.log.load_logs()
    assert logs[KEY].seq == 2
    assert logs[KEY].firing == frozenset()


async def test_a_new_episode_after_the_resolution_is_announced(stores: Stores) -> None:
    a, b = Replica(stores), Replica(stores)
    a.see(make_alert(starts_at=T0))
    assert await a.flush(T0 + 1) == "firing"
    a.see(make_alert(status=AlertStatus.RESOLVED, starts_at=T0, ends_at=T0 + 10))
    assert await a.flush(T0 + 11) == "resolved"
    b.see(make_alert(starts_at=T0 + 100))  # fired again, after the resolution was sent
    assert await b.flush(T0 + 101) == "firing"
    assert await _queued(a) == ["firing", "resolved", "firing"]


async def test_replicas_flushing_at_once_queue_one_notification(stores: Stores) -> None:
    replicas = [Replica(stores) for _ in range(4)]
    for i, replica in enumerate(replicas):
        replica.see(make_alert(starts_at=T0 + i * 0.1))
    results: list[str | None] = []

    async def flush(replica: Replica) -> None:
        results.append(await replica.flush(T0 + 1))

    async with trio.open_nursery() as nursery:
        for replica in replicas:
            nursery.start_soon(flush, replica)
    assert sorted(results, key=str) == [None, None, None, "firing"]
    [row] = await replicas[0].outbox.pending("hooks")
    alert = make_alert()
    assert row.key == notification_identity("hooks", KEY, 0, [alert])
    assert row.state is EntryState.PENDING


async def test_the_identity_ignores_each_replicas_start_time() -> None:
    early, late = make_alert(starts_at=T0), make_alert(starts_at=T0 + 3)
    assert notification_identity("hooks", KEY, 0, [early]) == notification_identity(
        "hooks", KEY, 0, [late]
    )
    resolved = make_alert(status=AlertStatus.RESOLVED)
    assert notification_identity("hooks", KEY, 1, [resolved]) != notification_identity(
        "hooks", KEY, 1, [early]
    )
    assert notification_identity("hooks", KEY, 2, [early]) != notification_identity(
        "hooks", KEY, 0, [early]
    )


async def test_sharded_replicas_each_with_one_alert_of_a_group_announce_each_once(
    stores: Stores,
) -> None:
    # Sharded: x's check runs on a, y's on b; both alerts fall in one group. Neither replica
    # sees the other's alert, and neither may announce its own again because of that.
    a, b = Replica(stores), Replica(stores)
    x = make_alert(fingerprint="x", starts_at=T0)
    y = make_alert(fingerprint="y", starts_at=T0 + 0.2)
    a.see(x)
    b.see(y)
    assert await a.flush(T0 + 1) == "firing"
    assert await b.flush(T0 + 1.1) == "firing"
    for tick in range(2, 6):  # group_interval ticks: nothing new anywhere
        assert await a.flush(T0 + tick) is None
        assert await b.flush(T0 + tick + 0.1) is None
    a.see(make_alert(fingerprint="x", status=AlertStatus.RESOLVED, starts_at=T0, ends_at=T0 + 6))
    assert await a.flush(T0 + 6) == "resolved"
    assert await b.flush(T0 + 6.1) is None  # y is still announced; x's end is not b's to send
    b.see(make_alert(fingerprint="y", status=AlertStatus.RESOLVED, starts_at=T0 + 0.2))
    assert await b.flush(T0 + 7) == "resolved"
    assert await _queued(a) == ["firing", "firing", "resolved", "resolved"]
