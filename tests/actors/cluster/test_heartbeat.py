"""The heartbeat renews this replica's claims and refreshes the silences, and rides out a store
that fails (logged; the next beat tries again)."""

from __future__ import annotations

import logging

import pytest

from actors.clock import FixedClock, SystemClock
from actors.cluster.heartbeat import Heartbeat
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
