"""Silences shared by replicas through the store: what one adds or expires, another takes on
`refresh()`. Run against both engines."""

from __future__ import annotations

from actors.clock import FixedClock
from actors.routing.persist import SqliteRoutingStore
from actors.routing.silencing import Silences
from tests.conftest import Stores

T0 = 1_700_000_000.0


async def test_a_silence_added_or_expired_elsewhere_is_taken_on_refresh(stores: Stores) -> None:
    clock = FixedClock(T0)
    a = Silences(store=SqliteRoutingStore(database=stores.open()), clock=clock)
    b = Silences(store=SqliteRoutingStore(database=stores.open()), clock=clock)
    await a.load()
    await b.load()
    silence = await a.add(matchers=['check="api"'], ends_at=T0 + 3600, comment="deploy")
    assert not b.mutes({"check": "api"}, T0 + 1)
    assert await b.refresh() == 1
    assert b.mutes({"check": "api"}, T0 + 1)
    assert await b.refresh() == 0  # nothing new
    clock.advance(10)
    await b.expire(silence.id)
    assert a.mutes({"check": "api"}, T0 + 11)
    assert await a.refresh() == 1
    assert not a.mutes({"check": "api"}, T0 + 11)
    assert [s.id for s in a.all()] == [silence.id]
