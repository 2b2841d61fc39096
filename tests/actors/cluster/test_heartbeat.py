"""The heartbeat renews this replica's claims and refreshes the silences, and rides out a store
that fails (logged; the next beat tries again)."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from actors.clock import FixedClock, SystemClock
from actors.cluster.heartbeat import Heartbeat
from actors.cluster.membership import DEAD_AFTER_BEATS, Member, Membership
from actors.cluster.ownership import Change, Ownership
from actors.notify.outbox import Outbox
from actors.routing.persist import SqliteRoutingStore
from actors.routing.silencing import Silences
from tests.actors.notify.factories import make_notification
from tests.conftest import Stores

T0 = 1_700_000_000.0


async def test_a_beat_renews_claims_and_refreshes_silences(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    store = stores.open()
    outbox = Outbox(database=store, clock=SystemClock(), replica="a", lease=30.0)
    here = Silences(store=SqliteRoutingStore(database=store), clock=FixedClock(T0))
    elsewhere = Silences(store=SqliteRoutingStore(database=stores.open()), clock=FixedClock(T0))
    heartbeat = Heartbeat(interval=1.0, outbox=outbox, silences=here)
    await outbox.enqueue(make_notification("k1"))
    [row] = await outbox.pending("hooks")
    assert await outbox.claim(row.id)
    before = await store.fetchone("SELECT lease_until FROM notify_outbox")
    await elsewhere.add(matchers=['check="api"'], ends_at=T0 + 60)
    await heartbeat.beat()
    after = await store.fetchone("SELECT lease_until FROM notify_outbox")
    assert before is not None
    assert after is not None
    assert after[0] >= before[0]
    assert here.mutes({"check": "api"}, T0 + 1)
    assert heartbeat.beats == 1
    store.close()  # the store fails: the beat logs it and goes on
    with caplog.at_level(logging.WARNING, logger="blipee.cluster"):
        await heartbeat.beat()
    assert heartbeat.beats == 2
    assert "cannot renew delivery claims" in caplog.text
    assert "cannot refresh silences" in caplog.text


CHECKS = [f"c{i}" for i in range(24)]
BEAT = 1.0


class _Replica:
    """A sharded replica's heartbeat and share, as the cluster subsystem wires them."""

    def __init__(self, stores: Stores, name: str, siblings: list[str]) -> None:
        store = stores.open(offload=False)  # on the trio thread: the clock is virtual
        self.ownership = Ownership(
            replica=name, checks=CHECKS, siblings=siblings, wait=DEAD_AFTER_BEATS * BEAT
        )
        self.changes: list[tuple[float, Change]] = []
        self.ownership.add_listener(lambda c: self.changes.append((trio.current_time(), c)))

        def live(members: list[Member]) -> None:
            self.ownership.update([m.name for m in members], now=trio.current_time())

        self.heartbeat = Heartbeat(
            interval=BEAT,
            outbox=Outbox(database=store, clock=SystemClock(), replica=name, lease=3 * BEAT),
            silences=Silences(store=SqliteRoutingStore(database=store), clock=FixedClock(T0)),
            membership=Membership(database=store, replica=name, mode="sharded", heartbeat=BEAT),
            on_members=live,
        )


async def test_workers_started_together_take_their_shares_without_handing_any_back(
    stores: Stores, autojump_clock: trio.testing.MockClock
) -> None:
    siblings = ["w0", "w1"]
    replicas = [_Replica(stores, name, siblings) for name in siblings]
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(replicas[0].heartbeat.run)  # w0 beats first, alone
        await trio.sleep(0.4 * BEAT)
        await nursery.start(replicas[1].heartbeat.run)
        await trio.sleep(4 * BEAT)
        nursery.cancel_scope.cancel()
    for replica in replicas:
        assert all(not change.lost for _, change in replica.changes), replica.ownership.replica
        assert len(replica.changes) == 1  # one share, taken once
    first, second = (r.ownership.owned for r in replicas)
    assert first | second == set(CHECKS)
    assert not first & second
    assert first
    assert second
    # w1 saw w0 at its first beat; w0 took its share at its second beat, not at the wait's end.
    assert replicas[1].changes[0][0] - start == pytest.approx(0.4 * BEAT)
    assert replicas[0].changes[0][0] - start == pytest.approx(BEAT)


async def test_a_sibling_that_never_beats_holds_the_first_share_for_three_heartbeats_at_most(
    stores: Stores, autojump_clock: trio.testing.MockClock
) -> None:
    replica = _Replica(stores, "w0", ["w0", "w1"])
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(replica.heartbeat.run)
        await trio.sleep((DEAD_AFTER_BEATS - 0.5) * BEAT)
        assert replica.ownership.owned == frozenset()
        await trio.sleep(BEAT)
        nursery.cancel_scope.cancel()
    assert replica.ownership.owned == set(CHECKS)
    [(at, change)] = replica.changes
    assert at - start == pytest.approx(DEAD_AFTER_BEATS * BEAT)
    assert change.gained == set(CHECKS)
    assert replica.ownership.missing == {"w1"}
