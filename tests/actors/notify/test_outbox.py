from __future__ import annotations

import trio

from actors.clock import FixedClock
from actors.models import AlertStatus
from actors.notify.outbox import EntryState, Outbox
from actors.store import Store
from tests.actors.notify.factories import Recorder, make_alert, make_notification
from tests.conftest import Stores


def _outbox(db: Store, clock: FixedClock | None = None) -> tuple[Outbox, Recorder]:
    metrics = Recorder()
    return Outbox(database=db, clock=clock or FixedClock(), metrics=metrics), metrics


async def test_enqueue_is_durable_idempotent_and_counted(stores: Stores) -> None:
    with stores.open() as db:
        outbox, metrics = _outbox(db)
        assert await outbox.enqueue(make_notification("a"))
        assert not await outbox.enqueue(make_notification("a"))  # same key+channel: no-op
        assert await outbox.enqueue(make_notification("a", channel="slack"))
        assert metrics.get("outbox_pending", channel="hooks") == 1
        assert set(metrics.declared) == {
            "notifications_total",
            "notification_delivery_seconds",
            "outbox_pending",
        }
    # A new process (new connection) sees the row: it was committed before enqueue returned.
    with stores.open() as db:
        outbox, _ = _outbox(db)
        [entry] = await outbox.pending("hooks")
        assert entry.key == "a"
        assert entry.state is EntryState.PENDING
        assert entry.notification() == make_notification("a")


async def test_marks_apply_only_to_pending_rows(stores: Stores) -> None:
    clock = FixedClock()
    with stores.open() as db:
        outbox, metrics = _outbox(db, clock)
        for key in ("a", "b", "c"):
            await outbox.enqueue(make_notification(key))
        a, b, c = await outbox.pending("hooks")
        clock.advance(5)
        assert await outbox.mark_failed(a.id, retry_at=clock.now() + 10, reason="HTTP 503")
        assert await outbox.mark_delivered(a.id, "HTTP 200")
        assert not await outbox.mark_delivered(a.id)  # delivered once, never again
        assert not await outbox.mark_failed(a.id, retry_at=0, reason="late")
        assert await outbox.dead_letter(b.id, "HTTP 400: bad")
        assert not await outbox.dead_letter(b.id, "again")
        [left] = await outbox.pending("hooks")
        assert left.id == c.id
        assert metrics.get("outbox_pending", channel="hooks") == 1

        [delivered] = await outbox.recent(EntryState.DELIVERED)
        assert delivered.attempts == 2
        assert delivered.last_error == "HTTP 200"
        [dead] = await outbox.recent(EntryState.DEAD, channel="hooks")
        assert dead.last_error == "HTTP 400: bad"
        assert dead.to_json()["state"] == "dead"
        assert await outbox.recent(EntryState.DEAD, channel="slack") == []
        stats = await outbox.statistics()
        assert (stats.pending, stats.delivered, stats.dead) == (1, 1, 1)


async def test_failed_row_keeps_schedule_and_reason(stores: Stores) -> None:
    clock = FixedClock()
    with stores.open() as db:
        outbox, _ = _outbox(db, clock)
        await outbox.enqueue(make_notification("a"))
        [entry] = await outbox.pending("hooks")
        await outbox.mark_failed(entry.id, retry_at=clock.now() + 30, reason="timeout")
        [entry] = await outbox.pending("hooks")
        assert entry.next_attempt_at == clock.now() + 30
        assert entry.attempts == 1
        assert entry.last_error == "timeout"


async def test_wakeup_is_not_lost(stores: Stores) -> None:
    with stores.open() as db:
        outbox, _ = _outbox(db)
        event = outbox.changed("hooks")
        assert outbox.changed("hooks") is event
        await outbox.enqueue(make_notification("a", channel="slack"))
        assert not event.is_set()
        await outbox.enqueue(make_notification("a"))
        assert event.is_set()
        assert outbox.changed("hooks") is not event
        with trio.move_on_after(1) as scope:
            await event.wait()
        assert not scope.cancelled_caught


async def test_prune_and_record_and_refresh_gauge(stores: Stores) -> None:
    clock = FixedClock()
    with stores.open() as db:
        outbox, _metrics = _outbox(db, clock)
        test_note = make_notification(
            "t", alerts=[make_alert(status=AlertStatus.RESOLVED)], channel="console"
        )
        await outbox.record(test_note, EntryState.DELIVERED, "logged")
        await outbox.enqueue(make_notification("p"))
        assert await outbox.refresh_gauge("hooks") == 1
        assert [e.key for e in await outbox.recent(EntryState.DELIVERED)] == ["t"]
        clock.advance(8 * 86400)
        assert await outbox.prune() == 1
        assert await outbox.recent(EntryState.DELIVERED) == []
        assert len(await outbox.pending("hooks")) == 1
