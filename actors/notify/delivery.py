"""One delivery actor per channel: outbox -> rate limit -> breaker -> send -> classify -> mark.

Each configured channel gets its own supervised `DeliveryActor`, so a slow or dead channel never
delays another. The actor is a thin loop around the pure stages (`retry`, `breaker`, `ratelimit`,
`outcome`):

1. Read the channel's pending rows (oldest first). Rows not yet due, and later rows of the same
   alert group as a row that is waiting or just failed, are skipped: per group, notifications are
   delivered in order (a resolution never overtakes its trigger).
2. Rate limit (token bucket), then the circuit breaker: while it is open nothing is sent and the
   actor sleeps until the breaker lets one probe through.
3. Send with the channel timeout as a cancel scope; the channel classifies the answer.
4. Delivered -> mark delivered; Retry -> schedule the next attempt (backoff with jitter, or the
   receiver's Retry-After) or dead-letter it once `give_up_after` has passed; Permanent ->
   dead-letter with the reason. A resolved notification on a channel with `send_resolved = false`
   is marked delivered as "skipped". A skipped or dead-lettered notification is handed to
   `Channel.discard` so the channel drops what it keeps for it (Alertmanager's re-sent alerts).
5. Nothing due: wait for the next enqueue on this channel or the earliest retry time.

With replicas sharing the outbox (`Outbox.claiming`), a row is claimed before its attempt
(exactly one replica sends it; see `outbox`); a row another replica holds is skipped with the
rest of its group (the order is kept), and the actor reads its rows again at least every
`Outbox.poll` seconds, since another replica's enqueue does not wake it.

Graceful stop: when run under a `supervisor.runtime.Supervisor`, the actor traps the stop
request; the attempt in flight finishes (bounded by the channel timeout) and is marked, then the
actor returns without starting another. Cancelled mid-attempt instead, the row stays pending and
is sent again after the restart (same idempotency key).

Pending rows are found again when the actor (or the process) starts, so nothing is lost across a
restart; see `outbox` for the delivery guarantees. A failing store (`StoreError`: the database is
down, read-only, locked) never stops the actor: reading or claiming rows is retried with backoff
(0.25 s doubling to `_STORE_BACKOFF_MAX`), and recording an attempt's outcome is retried the
same way until it succeeds (a delivered row left pending would be sent again: with replicas,
once its lease runs out, with the same idempotency key).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from actors.clock import Clock
from actors.models import AlertStatus, Notification
from actors.notify.breaker import CircuitBreaker
from actors.notify.channels.base import Channel, send_bounded
from actors.notify.errors import PayloadError
from actors.notify.metrics import DELIVERY_SECONDS, NOTIFICATIONS_TOTAL, Metrics
from actors.notify.outbox import Outbox, OutboxEntry
from actors.notify.outcome import Delivered, Outcome, Permanent
from actors.notify.ratelimit import TokenBucket
from actors.notify.retry import RetryPolicy, next_attempt_at
from actors.store import StoreError
from supervisor.runtime import NotSupervisedError, current_child

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["DeliveryActor", "DeliveryStatistics"]

_STORE_BACKOFF_MAX = 5.0  # seconds between retries of a failing store, at most


class DeliveryStatistics:
    """Counters of one delivery actor (read by tests and the actors API)."""

    def __init__(self) -> None:
        self.delivered = 0
        self.retried = 0
        self.dead_lettered = 0
        self.skipped = 0


class DeliveryActor:
    """Delivers one channel's outbox rows.

    Args:
        channel: the channel to send through (the actor closes its connections when it stops;
            the channel object stays reusable by a restarted actor).
        outbox: the shared outbox.
        clock: wall time for schedules, monotonic for the breaker and rate limit.
        logger: where deliveries are logged (never with secrets).
        metrics: notifications_total, notification_delivery_seconds (declared by the outbox).
        tracer: when given, one span per delivery attempt ("notify.deliver").
        retry: backoff and give-up policy.
        breaker: the channel's circuit breaker (default: 5 failures, 30 s).
        rate_limit: the channel's token bucket (default: the channel's `rate`).
        rng: randomness for the backoff jitter.
    """

    def __init__(
        self,
        *,
        channel: Channel,
        outbox: Outbox,
        clock: Clock,
        logger: logging.Logger,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        rate_limit: TokenBucket | None = None,
        rng: random.Random | None = None,
        prune_interval: float = 3600.0,
    ) -> None:
        self.channel = channel
        self._outbox = outbox
        self._clock = clock
        self._logger = logger
        self._metrics = metrics
        self._tracer = tracer
        self._retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        rate, burst = channel.rate
        self._bucket = rate_limit or TokenBucket(rate=rate, burst=burst, now=-math.inf)
        self._rng = rng or random.Random()
        self._prune_interval = prune_interval
        self._last_prune = -math.inf
        self._stopping = False
        self._idle: trio.CancelScope | None = None
        self.stats = DeliveryStatistics()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled, or until the supervisor asks it to stop (graceful: returns
        after the attempt in flight). Started once the pending count is known.

        A failing store is retried (module docstring), never raised.
        """
        try:
            with contextlib.suppress(StoreError):  # the loop's first read reports it
                await self._outbox.refresh_gauge(self.channel.name)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.channel.maintain)
                nursery.start_soon(self._trap_stop)
                task_status.started()
                await self._loop()
                nursery.cancel_scope.cancel()
        finally:
            with trio.move_on_after(2) as scope:
                scope.shield = True
                await self.channel.aclose()

    def request_stop(self) -> None:
        """Finish the attempt in flight, then return from `run()` (also done on a supervisor's
        stop request)."""
        self._stopping = True
        if self._idle is not None:
            self._idle.cancel()

    async def _trap_stop(self) -> None:
        try:
            context = current_child()
        except NotSupervisedError:
            return
        await context.wait_stop_requested()
        self.request_stop()

    async def _idle_wait(self, delay: float, event: trio.Event | None = None) -> None:
        """Sleep `delay` seconds (or until `event`); cut short by `request_stop()`."""
        with trio.CancelScope() as scope:
            self._idle = scope
            try:
                if self._stopping:
                    return
                with trio.move_on_after(delay):
                    if event is None:
                        await trio.sleep_forever()
                    else:
                        await event.wait()
            finally:
                self._idle = None

    async def _loop(self) -> None:
        backoff = 0.0
        while not self._stopping:
            changed = self._outbox.changed(self.channel.name)
            try:
                await self._maybe_prune()
                entries = await self._outbox.pending(self.channel.name)
                attempted, wake_at = await self._round(entries)
            except StoreError as exc:
                backoff = min(max(backoff * 2, 0.25), _STORE_BACKOFF_MAX)
                self._logger.warning(
                    "%s: the outbox cannot be read, retrying in %.2fs: %s",
                    self.channel.describe(),
                    backoff,
                    exc,
                )
                await self._idle_wait(backoff)
                continue
            backoff = 0.0
            if attempted:
                continue  # re-read: new rows may have arrived while sending
            mono = self._clock.monotonic()
            if not self.breaker.allow(mono):
                await self._idle_wait(max(0.0, self.breaker.retry_at() - mono))
                continue
            delay = math.inf if wake_at is None else max(0.0, wake_at - self._clock.now())
            await self._idle_wait(min(delay, self._outbox.poll), changed)

    async def _round(self, entries: list[OutboxEntry]) -> tuple[int, float | None]:
        """Attempt the due rows; return (rows attempted, earliest future due time or None)."""
        attempted = 0
        wake_at: float | None = None
        held: set[str] = set()  # groups with an earlier row waiting: keep their order
        for entry in entries:
            if self._stopping:
                break
            if entry.group_key in held:
                continue
            if entry.held_by:  # another replica is sending it: keep the group's order
                held.add(entry.group_key)
                continue
            if entry.next_attempt_at > self._clock.now():
                held.add(entry.group_key)
                wake_at = (
                    entry.next_attempt_at
                    if wake_at is None
                    else min(wake_at, entry.next_attempt_at)
                )
                continue
            if not self.breaker.allow(self._clock.monotonic()):
                break
            wait = self._bucket.take(self._clock.monotonic())
            while wait > 0 and not self._stopping:
                await self._idle_wait(wait)
                wait = self._bucket.take(self._clock.monotonic())
            if self._stopping:
                break
            attempted += 1
            if not await self._attempt(entry):
                held.add(entry.group_key)
        return attempted, wake_at

    async def _attempt(self, entry: OutboxEntry) -> bool:
        """One delivery attempt; True when the row left the pending state. With replicas, the
        row is claimed first; a row claimed by another is left to it (False)."""
        if not await self._outbox.claim(entry.id):
            return False
        try:
            return await self._attempt_claimed(entry)
        finally:
            # Recorded: already released. Not recorded (cancelled, store down): the lease runs
            # out and any replica, this one included, sends the row again with the same key.
            self._outbox.forget(entry.id)

    async def _attempt_claimed(self, entry: OutboxEntry) -> bool:
        name = self.channel.name
        try:
            notification = entry.notification()
        except PayloadError as exc:
            await self._settle(entry, partial(self._outbox.dead_letter, entry.id, str(exc)))
            self._count("dead_letter")
            self.stats.dead_lettered += 1
            self._logger.error("%s: %s", self.channel.describe(), exc)
            return True
        if notification.status is AlertStatus.RESOLVED and not self.channel.send_resolved:
            await self._settle(
                entry,
                partial(self._outbox.mark_delivered, entry.id, "skipped: send_resolved is false"),
            )
            await self.channel.discard(notification)
            self._count("skipped")
            self.stats.skipped += 1
            return True

        started = self._clock.monotonic()
        with self._span(entry) as span:
            outcome = await self._send(notification)
            if span is not None:
                span.set_attribute("notify.result", type(outcome).__name__.lower())
        elapsed = self._clock.monotonic() - started
        if self._metrics is not None:
            self._metrics.record(DELIVERY_SECONDS, elapsed, {"channel": name})

        if isinstance(outcome, Delivered):
            self.breaker.record_success()
            await self._settle(
                entry, partial(self._outbox.mark_delivered, entry.id, outcome.detail)
            )
            self._count("delivered")
            self.stats.delivered += 1
            self._logger.info(
                "%s: delivered %s (%s, attempt %d, %.3fs)",
                self.channel.describe(),
                entry.key,
                notification.status.value,
                entry.attempts + 1,
                elapsed,
            )
            return True
        if isinstance(outcome, Permanent):
            # The receiver answered: the channel works, this payload does not.
            self.breaker.record_success()
            await self._settle(entry, partial(self._outbox.dead_letter, entry.id, outcome.reason))
            await self.channel.discard(notification)
            self._count("dead_letter")
            self.stats.dead_lettered += 1
            self._logger.error(
                "%s: %s dead-lettered: %s", self.channel.describe(), entry.key, outcome.reason
            )
            return True

        self.breaker.record_failure(self._clock.monotonic())
        now = self._clock.now()
        retry_at = next_attempt_at(
            self._retry,
            outcome,
            attempts=entry.attempts + 1,
            created_at=entry.created_at,
            now=now,
            rng=self._rng,
        )
        if retry_at is None:
            reason = f"gave up after {entry.attempts + 1} attempts: {outcome.reason}"
            await self._settle(entry, partial(self._outbox.dead_letter, entry.id, reason))
            await self.channel.discard(notification)
            self._count("dead_letter")
            self.stats.dead_lettered += 1
            self._logger.error("%s: %s %s", self.channel.describe(), entry.key, reason)
            return True
        await self._settle(
            entry,
            partial(self._outbox.mark_failed, entry.id, retry_at=retry_at, reason=outcome.reason),
        )
        self._count("retry")
        self.stats.retried += 1
        self._logger.warning(
            "%s: %s failed (%s), retry in %.1fs",
            self.channel.describe(),
            entry.key,
            outcome.reason,
            retry_at - now,
        )
        return False

    async def _settle(self, entry: OutboxEntry, mark: Callable[[], Awaitable[bool]]) -> None:
        """Record the outcome of an attempt in the outbox, retrying a failing store.

        After a delivery, failing to mark the row would send the notification again; a store
        outage (PostgreSQL restarting, a lock held by a backup, a full disk being cleaned) is
        ridden out by retrying until the mark is recorded (a stop request cancels the wait: the
        row stays pending and is sent again with the same idempotency key, see `outbox`).
        """
        delay = 0.25
        while True:
            try:
                await mark()
                return
            except StoreError as exc:
                self._logger.warning(
                    "%s: cannot record the outcome of %s, retrying in %.2fs: %s",
                    self.channel.describe(),
                    entry.key,
                    delay,
                    exc,
                )
            await trio.sleep(delay)
            delay = min(delay * 2, _STORE_BACKOFF_MAX)

    async def _send(self, notification: Notification) -> Outcome:
        return await send_bounded(self.channel, notification, logger=self._logger)

    @contextlib.contextmanager
    def _span(self, entry: OutboxEntry) -> Iterator[Any]:
        if self._tracer is None:
            yield None
            return
        with self._tracer.start_as_current_span(
            "notify.deliver",
            attributes={
                "notify.channel": self.channel.name,
                "notify.kind": self.channel.kind,
                "notify.key": entry.key,
                "notify.attempt": entry.attempts + 1,
            },
        ) as span:
            yield span

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.record(
                NOTIFICATIONS_TOTAL, 1.0, {"channel": self.channel.name, "result": result}
            )

    async def _maybe_prune(self) -> None:
        mono = self._clock.monotonic()
        if mono - self._last_prune >= self._prune_interval:
            self._last_prune = mono
            await self._outbox.prune()
