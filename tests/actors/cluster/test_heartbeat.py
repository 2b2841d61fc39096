"""The heartbeat renews this replica's claims and refreshes the silences, and rides out a store
that fails (logged; the next beat tries again); its membership row is written on a schedule and
a connection of its own, so slow chores or a busy pool never make a live replica look dead."""

from __future__ import annotations

import logging
import threading

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
from actors.store import Connection, dedicated
from actors.store.postgres import PostgresDatabase
from tests.actors.notify.factories import make_notification
from tests.conftest import Stores
from tests.postgres import temporary_database

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


async def test_chores_slower_than_three_heartbeats_never_delay_the_membership_row(
    stores: Stores, autojump_clock: trio.testing.MockClock
) -> None:
    store = stores.open(offload=False)
    stall = (DEAD_AFTER_BEATS + 2) * BEAT

    async def read_the_others() -> None:  # the others' results, behind the history writes
        await trio.sleep(stall)

    heartbeat = Heartbeat(
        interval=BEAT,
        outbox=Outbox(database=store, clock=SystemClock(), replica="w0", lease=3 * BEAT),
        silences=Silences(store=SqliteRoutingStore(database=store), clock=FixedClock(T0)),
        membership=Membership(database=store, replica="w0", mode="sharded", heartbeat=BEAT),
        after_beat=read_the_others,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(heartbeat.run)
        await trio.sleep(stall - 0.5 * BEAT)
        assert heartbeat.beats == 0  # the first round of chores is still reading
        assert heartbeat.lives == DEAD_AFTER_BEATS + 2  # the row, every heartbeat meanwhile
        await trio.sleep(BEAT)
        assert heartbeat.beats == 1
        nursery.cancel_scope.cancel()


class _Worker:
    """A sharded worker on a PostgreSQL pool of its own, its membership row written through a
    dedicated connection (as the cluster subsystem wires it), whose pool can be held busy."""

    def __init__(self, url: str, name: str, beat: float) -> None:
        self.store = PostgresDatabase(url, pool_size=2, application_name=name)
        self.ownership = Ownership(
            replica=name, checks=CHECKS, siblings=["w0", "w1"], wait=DEAD_AFTER_BEATS * beat
        )
        self.changes: list[Change] = []
        self.ownership.add_listener(self.changes.append)
        self.held = 0
        self.release = threading.Event()

        def live(members: list[Member]) -> None:
            self.ownership.update([m.name for m in members], now=trio.current_time())

        async def read_the_others() -> None:
            await self.store.fetchall("SELECT 1")

        self.heartbeat = Heartbeat(
            interval=beat,
            outbox=Outbox(database=self.store, clock=SystemClock(), replica=name, lease=3 * beat),
            silences=Silences(store=SqliteRoutingStore(database=self.store), clock=FixedClock(T0)),
            membership=Membership(
                database=dedicated(self.store, "heartbeat"),
                replica=name,
                mode="sharded",
                heartbeat=beat,
            ),
            on_members=live,
            after_beat=read_the_others,
        )

    def _hold(self, conn: Connection) -> None:
        """A long transaction (bulk history writes) on one of the pool's connections."""
        conn.execute("SELECT 1")
        self.held += 1
        self.release.wait(60)


async def test_a_pool_held_busy_past_three_heartbeats_moves_no_check() -> None:
    beat = 0.5
    with temporary_database() as url:
        workers = [_Worker(url, name, beat) for name in ("w0", "w1")]
        try:
            async with trio.open_nursery() as nursery:
                for worker in workers:
                    await nursery.start(worker.heartbeat.run)
                with trio.fail_after(30):
                    while not all(w.ownership.assigned and w.ownership.owned for w in workers):
                        await trio.sleep(0.05)
                busy = workers[0]
                for _ in range(2):  # every connection of w0's pool, until released
                    nursery.start_soon(busy.store.transaction, busy._hold)
                with trio.fail_after(30):
                    while busy.held < 2:
                        await trio.sleep(0.01)
                beats, lives = busy.heartbeat.beats, busy.heartbeat.lives
                with trio.fail_after(60):  # held for more than 3 heartbeats, by w0's own beats
                    while busy.heartbeat.lives < lives + DEAD_AFTER_BEATS + 2:
                        await trio.sleep(0.05)
                assert busy.heartbeat.beats <= beats + 1  # its chores were stuck meanwhile
                busy.release.set()
                with trio.fail_after(30):  # the chores resume
                    while busy.heartbeat.beats < beats + 2:
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        finally:
            for worker in workers:
                worker.release.set()
                worker.store.close()
        for worker in workers:  # each share taken once, none handed back and forth
            assert len(worker.changes) == 1, worker.changes
            assert not worker.changes[0].lost
        assert workers[0].ownership.owned | workers[1].ownership.owned == set(CHECKS)
        assert not workers[0].ownership.owned & workers[1].ownership.owned
