"""The delivery actor under the autojump clock: retries, breaker, ordering, isolation, crash."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from pathlib import Path

import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors.clock import VirtualClock
from actors.models import AlertStatus, Notification
from actors.notify.breaker import BreakerState, CircuitBreaker
from actors.notify.channels.base import Channel
from actors.notify.delivery import DeliveryActor
from actors.notify.outbox import EntryState, Outbox, OutboxEntry
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry
from actors.notify.retry import RetryPolicy
from actors.store import Database, QueryError
from tests.actors.notify.factories import Recorder, make_alert, make_notification

LOG = logging.getLogger("test.notify.delivery")


class FakeChannel(Channel):
    """Answers from a script (then Delivered); records (time, key) of every attempt."""

    kind = "fake"
    rate = (1000.0, 1000)

    def __init__(
        self,
        name: str,
        clock: VirtualClock,
        script: Iterable[Outcome] = (),
        *,
        hang: bool = False,
        send_resolved: bool = True,
    ) -> None:
        super().__init__(name, send_resolved=send_resolved, timeout=5.0, clock=clock, logger=LOG)
        self.script = list(script)
        self.hang = hang
        self.sent: list[tuple[float, str]] = []
        self.received: list[str] = []  # keys of the sends that were delivered, in order

    async def send(self, notification: Notification) -> Outcome:
        self.sent.append((trio.current_time(), notification.key))
        if self.hang:
            await trio.sleep_forever()
        outcome = self.script.pop(0) if self.script else Delivered("ok")
        if isinstance(outcome, Delivered):
            self.received.append(notification.key)
        return outcome


def _setup(
    path: str | Path = ":memory:",
) -> tuple[Database, Outbox, VirtualClock, Recorder]:
    clock = VirtualClock()
    metrics = Recorder()
    # Inline statements: worker threads would let the autojump clock jump during a query.
    db = Database(path, offload=False)
    return db, Outbox(database=db, clock=clock, metrics=metrics), clock, metrics


def _actor(
    channel: Channel, outbox: Outbox, clock: VirtualClock, metrics: Recorder, **kw: object
) -> DeliveryActor:
    policy = RetryPolicy(initial=1, maximum=60, jitter=0, give_up_after=3600)
    return DeliveryActor(
        channel=channel,
        outbox=outbox,
        clock=clock,
        logger=LOG,
        metrics=metrics,
        retry=policy,
        **kw,  # type: ignore[arg-type]
    )


async def test_delivers_in_order_and_records(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        for i in range(3):
            await outbox.enqueue(make_notification(f"k{i}", group_key=f"g{i}"))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [key for _, key in channel.sent] == ["k0", "k1", "k2"]
    assert metrics.get("notifications_total", channel="hooks", result="delivered") == 3
    assert metrics.get("outbox_pending", channel="hooks") == 0
    assert len(metrics.observations) == 3
    assert len(await outbox.recent(EntryState.DELIVERED)) == 3
    db.close()


async def test_retries_with_backoff_then_delivers(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock, [Retry("HTTP 503"), Retry("HTTP 503"), Retry("x")])
    await outbox.enqueue(make_notification("k"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(100)
        nursery.cancel_scope.cancel()
    times = [t for t, _ in channel.sent]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps == [1.0, 2.0, 4.0]
    assert metrics.get("notifications_total", channel="hooks", result="retry") == 3
    [entry] = await outbox.recent(EntryState.DELIVERED)
    assert entry.attempts == 4
    db.close()


async def test_retry_after_is_honoured(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock, [Retry("HTTP 429", retry_after=30)])
    await outbox.enqueue(make_notification("k"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(100)
        nursery.cancel_scope.cancel()
    assert round(channel.sent[1][0] - channel.sent[0][0], 3) == 30
    db.close()


async def test_permanent_failure_dead_letters(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock, [Permanent("HTTP 400: bad payload")])
    await outbox.enqueue(make_notification("bad", group_key="g1"))
    await outbox.enqueue(make_notification("good", group_key="g2"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    [dead] = await outbox.recent(EntryState.DEAD)
    assert (dead.key, dead.last_error) == ("bad", "HTTP 400: bad payload")
    assert metrics.get("notifications_total", channel="hooks", result="dead_letter") == 1
    assert channel.received == ["good"]
    db.close()


async def test_gives_up_after_policy_age(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock, [Retry("down")] * 1000)
    await outbox.enqueue(make_notification("k"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(7200)
        nursery.cancel_scope.cancel()
    [dead] = await outbox.recent(EntryState.DEAD)
    assert dead.last_error.startswith("gave up after")
    db.close()


async def test_breaker_stops_hammering_a_dead_receiver(
    autojump_clock: trio.testing.MockClock,
) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock, [Retry("down")] * 50)
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=100)
    for i in range(10):
        await outbox.enqueue(make_notification(f"k{i}", group_key=f"g{i}"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics, breaker=breaker).run)
        await trio.sleep(50)
        assert len(channel.sent) == 3  # opened after 3 failures
        assert breaker.state is BreakerState.OPEN
        await trio.sleep(60)  # one half-open probe after 100 s, which fails
        assert len(channel.sent) == 4
        nursery.cancel_scope.cancel()
    db.close()


async def test_group_order_is_kept(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock, [Retry("down")])
    await outbox.enqueue(make_notification("fire", group_key="g"))
    resolved = make_notification(
        "resolve", group_key="g", alerts=[make_alert(status=AlertStatus.RESOLVED)]
    )
    await outbox.enqueue(resolved)
    await outbox.enqueue(make_notification("other", group_key="h"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [key for _, key in channel.sent] == ["fire", "other", "fire", "resolve"]
    db.close()


async def test_resolved_skipped_when_send_resolved_false(
    autojump_clock: trio.testing.MockClock,
) -> None:
    db, outbox, clock, metrics = _setup()
    channel = FakeChannel("hooks", clock, send_resolved=False)
    await outbox.enqueue(make_notification("r", alerts=[make_alert(status=AlertStatus.RESOLVED)]))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert channel.sent == []
    assert metrics.get("notifications_total", channel="hooks", result="skipped") == 1
    db.close()


async def test_slow_channel_does_not_delay_another(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    slow = FakeChannel("slow", clock, hang=True)
    fast = FakeChannel("fast", clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(slow, outbox, clock, metrics).run)
        await nursery.start(_actor(fast, outbox, clock, metrics).run)
        start = trio.current_time()
        await outbox.enqueue(make_notification("a", channel="slow"))
        await outbox.enqueue(make_notification("a", channel="fast"))
        await trio.sleep(0.5)
        assert [t - start for t, _ in fast.sent] == [0]
        await trio.sleep(10)  # the slow one timed out (5 s + 1) and is retried
        nursery.cancel_scope.cancel()
    [entry] = await outbox.pending("slow")
    assert entry.last_error == "timeout after 5s"
    db.close()


async def test_crash_before_mark_redelivers_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "crash.db"
    db, outbox, clock, metrics = _setup(path)
    delivered: list[str] = []  # every delivery across the restarts, duplicates included
    hanging = FakeChannel("hooks", clock, hang=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(hanging, outbox, clock, metrics).run)
        await outbox.enqueue(make_notification("k1", group_key="g1"))
        await outbox.enqueue(make_notification("k2", group_key="g2"))
        await trio.sleep(0.1)
        # "crash": the actor is dropped mid-send, nothing was marked
        nursery.cancel_scope.cancel()
    assert hanging.sent[0][1] == "k1"
    db.close()

    for restart in range(2):  # restart twice: the second start must not deliver anything again
        db, outbox, clock, metrics = _setup(path)
        channel = FakeChannel("hooks", clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(_actor(channel, outbox, clock, metrics).run)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        delivered += channel.received
        if restart == 1:
            assert channel.sent == []
        db.close()
    # Each key reached the receiver exactly once, k1 (in flight at the crash) first.
    assert delivered == ["k1", "k2"]


async def test_bad_payload_is_dead_lettered(autojump_clock: trio.testing.MockClock) -> None:
    db, outbox, clock, metrics = _setup()
    await outbox.enqueue(make_notification("k"))
    await db.execute("UPDATE notify_outbox SET payload = '{broken'")
    channel = FakeChannel("hooks", clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    [dead] = await outbox.recent(EntryState.DEAD)
    assert "bad outbox payload" in dead.last_error
    db.close()


class BrokenChannel(FakeChannel):
    async def send(self, notification: Notification) -> Outcome:
        raise RuntimeError("bug with secret http://x/SECRET")

    def secrets(self) -> tuple[str, ...]:
        return ("http://x/SECRET",)


async def test_channel_bug_is_retried_without_leaking(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    db, outbox, clock, metrics = _setup()
    await outbox.enqueue(make_notification("k"))
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with trio.open_nursery() as nursery:
        actor = _actor(
            BrokenChannel("hooks", clock),
            outbox,
            clock,
            metrics,
            tracer=provider.get_tracer("test"),
        )
        await nursery.start(actor.run)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    [entry] = await outbox.pending("hooks")
    assert entry.last_error == "internal error: RuntimeError"
    assert "SECRET" not in caplog.text
    [span] = exporter.get_finished_spans()
    assert span.name == "notify.deliver"
    assert span.attributes is not None
    assert span.attributes["notify.channel"] == "hooks"
    assert span.attributes["notify.result"] == "retry"
    db.close()


class SlowChannel(FakeChannel):
    async def send(self, notification: Notification) -> Outcome:
        self.sent.append((trio.current_time(), notification.key))
        await trio.sleep(3)
        self.received.append(notification.key)
        return Delivered("ok")


async def test_graceful_stop_finishes_the_attempt_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from supervisor.runtime import ChildSpec, Supervisor

    db, outbox, clock, metrics = _setup()
    channel = SlowChannel("hooks", clock)
    actor = _actor(channel, outbox, clock, metrics)
    supervisor = Supervisor([ChildSpec("deliver:hooks", actor.run, shutdown=10)], name="notify")
    await outbox.enqueue(make_notification("k1", group_key="g1"))
    await outbox.enqueue(make_notification("k2", group_key="g2"))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(1)  # k1 is in flight
        start = trio.current_time()
        await supervisor.stop()
        assert 1.9 < trio.current_time() - start < 2.1  # waited for k1 only
        nursery.cancel_scope.cancel()
    assert channel.received == ["k1"]
    assert [e.key for e in await outbox.pending("hooks")] == ["k2"]
    assert [e.key for e in await outbox.recent(EntryState.DELIVERED)] == ["k1"]
    db.close()


async def test_request_stop_while_idle_returns_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    db, outbox, clock, metrics = _setup()
    actor = _actor(FakeChannel("hooks", clock), outbox, clock, metrics)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(5)
        actor.request_stop()
        with trio.fail_after(0.1):
            while nursery.child_tasks:
                await trio.sleep(0.01)
    db.close()


class FlakyOutbox(Outbox):
    """An outbox whose store fails the first `failures` marks of a delivered row."""

    def __init__(self, *, failures: int, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.failures = failures

    async def mark_delivered(self, entry_id: int, detail: str = "") -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise QueryError("UPDATE notify_outbox", "database is locked")
        return await super().mark_delivered(entry_id, detail)


async def test_a_store_hiccup_after_sending_does_not_send_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = VirtualClock()
    db = Database(":memory:", offload=False)
    metrics = Recorder()
    outbox = FlakyOutbox(failures=3, database=db, clock=clock, metrics=metrics)
    channel = FakeChannel("hooks", clock)
    await outbox.enqueue(make_notification("k"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert [key for _, key in channel.sent] == ["k"]
    assert [e.key for e in await outbox.recent(EntryState.DELIVERED)] == ["k"]
    db.close()


async def test_a_lasting_store_failure_is_ridden_out_and_the_row_sent_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = VirtualClock()
    db = Database(":memory:", offload=False)
    metrics = Recorder()
    outbox = FlakyOutbox(failures=200, database=db, clock=clock, metrics=metrics)
    channel = FakeChannel("hooks", clock)
    await outbox.enqueue(make_notification("k"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        while outbox.failures > 0 or not await outbox.recent(EntryState.DELIVERED):
            await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [key for _, key in channel.sent] == ["k"]
    assert [e.key for e in await outbox.recent(EntryState.DELIVERED)] == ["k"]
    db.close()


class DownOutbox(Outbox):
    """An outbox whose store cannot be read for its first `failures` reads."""

    def __init__(self, *, failures: int, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.failures = failures

    async def pending(self, channel: str, *, limit: int = 500) -> list[OutboxEntry]:
        if self.failures > 0:
            self.failures -= 1
            raise QueryError("SELECT notify_outbox", "connection refused")
        return await super().pending(channel, limit=limit)


async def test_an_unreadable_outbox_is_retried_without_failing_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = VirtualClock()
    db = Database(":memory:", offload=False)
    metrics = Recorder()
    outbox = DownOutbox(failures=50, database=db, clock=clock, metrics=metrics)
    channel = FakeChannel("hooks", clock)
    await outbox.enqueue(make_notification("k"))
    async with trio.open_nursery() as nursery:
        await nursery.start(_actor(channel, outbox, clock, metrics).run)
        while not channel.sent:
            await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert outbox.failures == 0
    assert [key for _, key in channel.sent] == ["k"]
    db.close()
