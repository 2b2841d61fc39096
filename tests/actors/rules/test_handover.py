"""Sharded replicas: a check's alerts move with it, released by the old owner without a
resolution and adopted by the new one, whose firing episode goes on (same start)."""

from __future__ import annotations

from collections.abc import Mapping

import trio
from trio.testing import MockClock

from actors.clock import VirtualClock
from actors.models import AlertEvent, AlertStatus
from actors.rules.actor import RulesActor
from actors.rules.persist import MemoryAlertStateStore
from tests.actors.rules.test_actor import _rule, _store


class Replica:
    """A rules actor that evaluates the checks in `owned` (a shared alert state)."""

    def __init__(self, state: MemoryAlertStateStore, owned: set[str]) -> None:
        self.owned = owned
        self.clock = VirtualClock()
        self.store = _store(self.clock)
        self.send, self.receive = trio.open_memory_channel[AlertEvent](100)
        self.actor = RulesActor(
            rules=[_rule()],
            store=self.store,
            sink=self.send,
            clock=self.clock,
            state=state,
            evaluates=self.evaluates,
        )

    def evaluates(self, labels: Mapping[str, str]) -> bool:
        check = labels.get("check")
        return check is None or check in self.owned

    async def next(self, timeout: float = 0.5) -> AlertEvent:
        with trio.fail_after(timeout):
            return await self.receive.receive()

    def nothing(self) -> bool:
        try:
            self.receive.receive_nowait()
        except trio.WouldBlock:
            return True
        return False


def _on(check: str) -> object:
    return lambda labels: labels.get("check") == check


async def test_a_check_moving_away_is_released_without_a_resolution(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    state = MemoryAlertStateStore()
    old = Replica(state, {"database"})
    await nursery.start(old.actor.run)
    old.store.record("health_check_up", 0, {"check": "database"})
    fired = await old.next()
    assert fired.alert.status is AlertStatus.FIRING
    old.owned.clear()  # the beat gave the check to another replica
    assert old.actor.release(lambda labels: labels.get("check") == "database") == 1
    released = await old.next()
    assert released.released
    assert released.alert.fingerprint == fired.alert.fingerprint
    assert old.actor.alerts() == []
    # The stale series still reads 0, then 1: neither fires nor resolves anything here.
    old.store.record("health_check_up", 1, {"check": "database"})
    await trio.sleep(5)
    assert old.nothing()
    # The stored state stays for the new owner.
    assert list(state.data["db-down"]) == [fired.alert.fingerprint]


async def test_the_new_owner_adopts_the_firing_episode_and_resolves_it_once(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    state = MemoryAlertStateStore()
    old = Replica(state, {"database"})
    new = Replica(state, set())
    await nursery.start(old.actor.run)
    await nursery.start(new.actor.run)
    old.store.record("health_check_up", 0, {"check": "database"})
    fired = await old.next()
    await trio.sleep(30)
    assert new.nothing()
    assert new.actor.alerts() == []  # another replica's check: not restored, not evaluated

    new.owned.add("database")
    new.actor.adopt(lambda labels: labels.get("check") == "database")
    announced = await new.next()
    assert announced.alert.status is AlertStatus.FIRING
    assert announced.alert.starts_at == fired.alert.starts_at
    assert not announced.released
    # No sample yet on the new owner: the instance is kept, not resolved.
    await trio.sleep(10)
    assert new.nothing()
    assert [v.state for v in new.actor.alerts()] == ["firing"]
    new.store.record("health_check_up", 0, {"check": "database"})
    await trio.sleep(1)
    assert new.nothing()  # the same episode: no new firing event
    new.store.record("health_check_up", 1, {"check": "database"})
    resolved = await new.next()
    assert resolved.alert.status is AlertStatus.RESOLVED
    assert resolved.alert.starts_at == fired.alert.starts_at
    assert state.data == {}


async def test_a_restart_restores_only_the_alerts_of_owned_checks(
    autojump_clock: MockClock,
) -> None:
    state = MemoryAlertStateStore()
    first = Replica(state, {"database"})
    async with trio.open_nursery() as nursery:
        await nursery.start(first.actor.run)
        first.store.record("health_check_up", 0, {"check": "database"})
        await first.next()
        nursery.cancel_scope.cancel()
    again = Replica(state, set())  # before its first beat it owns nothing
    async with trio.open_nursery() as nursery:
        await nursery.start(again.actor.run)
        await trio.sleep(90)  # past the restore grace
        assert again.nothing()
        assert again.actor.alerts() == []
        assert "db-down" in state.data  # left for the owner
        nursery.cancel_scope.cancel()


async def test_an_heir_that_ran_the_check_before_judges_the_adopted_episode_by_its_own_runs(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    # The heir ran the check before the owner joined (its store still holds that stint's last
    # sample, "up"); the owner's firing episode, adopted, must not resolve on that old sample
    # at the heir's next full round, nor start again at the heir's first own run.
    state = MemoryAlertStateStore()
    heir = Replica(state, {"database"})
    await nursery.start(heir.actor.run)
    heir.store.record("health_check_up", 1, {"check": "database"})
    await trio.sleep(2)
    heir.owned.clear()  # the owner joined and won the check
    heir.actor.release(lambda labels: labels.get("check") == "database")

    owner = Replica(state, {"database"})
    await nursery.start(owner.actor.run)
    owner.store.record("health_check_up", 0, {"check": "database"})
    fired = await owner.next()
    await trio.sleep(5)

    heir.owned.add("database")  # the owner died
    heir.actor.adopt(lambda labels: labels.get("check") == "database")
    announced = await heir.next()
    assert announced.alert.status is AlertStatus.FIRING
    assert announced.alert.starts_at == fired.alert.starts_at
    await trio.sleep(3)  # full rounds, no run of the heir's yet
    assert heir.nothing()
    assert [v.state for v in heir.actor.alerts()] == ["firing"]
    heir.store.record("health_check_up", 0, {"check": "database"})
    await trio.sleep(3)
    assert heir.nothing()  # the same episode goes on
    [alert] = heir.actor.alerts()
    assert alert.active_since == fired.alert.starts_at
    heir.store.record("health_check_up", 1, {"check": "database"})
    resolved = await heir.next()
    assert resolved.alert.status is AlertStatus.RESOLVED
    assert resolved.alert.starts_at == fired.alert.starts_at
