"""Persisted routing state (notification logs, silences) on both engines."""

from __future__ import annotations

from actors.routing.grouping import NotifyLog
from actors.routing.persist import SqliteRoutingStore
from actors.routing.silences import make_silence
from tests.conftest import Stores


async def test_notification_logs_round_trip(stores: Stores) -> None:
    store = SqliteRoutingStore(database=stores.open())
    log = NotifyLog(firing=frozenset({"fp1", "fp2"}), last_sent=1.7e9 + 0.25, seq=3)
    await store.save_log('hooks/r:{check="api"}', log)
    await store.save_log("other", NotifyLog())
    again = SqliteRoutingStore(database=stores.open())
    assert await again.load_logs() == {'hooks/r:{check="api"}': log, "other": NotifyLog()}
    await again.save_log("other", None)
    newer = NotifyLog(firing=frozenset(), last_sent=1.7e9 + 60, seq=4)
    await again.save_log('hooks/r:{check="api"}', newer)
    assert await store.load_logs() == {'hooks/r:{check="api"}': newer}


async def test_silences_round_trip_and_replace(stores: Stores) -> None:
    store = SqliteRoutingStore(database=stores.open())
    silence = make_silence(
        matchers=['check="api"', "env=~prod.*"],
        starts_at=1.7e9,
        ends_at=1.7e9 + 3600.5,
        created_by="ops",
        comment="deploy; 100% safe",
        now=1.7e9,
    )
    await store.save_silence(silence)
    again = SqliteRoutingStore(database=stores.open())
    [loaded] = await again.load_silences()
    assert loaded == silence
    assert loaded.mutes({"check": "api", "env": "prod-eu"}, 1.7e9 + 10)
    expired = make_silence(
        matchers=list(silence.matchers),
        starts_at=silence.starts_at,
        ends_at=1.7e9 + 5,
        created_by="ops",
        comment="over",
        now=1.7e9 + 5,
        silence_id=silence.id,
    )
    await again.save_silence(expired)
    assert await store.load_silences() == [expired]
