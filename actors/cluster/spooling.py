"""The routing actor's flush gate on replicas, with the local spool for PostgreSQL outages.

`SpoolingGate` wraps the shared notification log (`SharedNotifyLog`):

- PostgreSQL answers: a due group is flushed on the shared log, as without a spool.
- The flush fails with a store error (PostgreSQL unreachable): the group is flushed on its own
  log (the shared log as this replica last knew it: every flush leaves the group holding it),
  and the notification, keyed by its deterministic identity at that log's sequence number, is
  written to the local spool (`actors.cluster.spool`). The group goes on as if it were sent.
- While a group has spooled entries, its newer notifications are spooled behind them (never
  sent around them: a resolution must not overtake its firing).

`run` is the `spool` actor: it replays the entries in order (`SharedNotifyLog.replay`, which
decides each again against the shared log, so two replicas that spooled the same notification
queue it once) and deletes each after its replay committed. It starts with what the file holds
(entries spooled before a restart), is woken by each new entry, and retries a failing replay
with backoff (0.5 s doubling to 5 s).

Metrics: `notify_spool_entries` (entries waiting), `notify_spool_full_total` (notifications the
full spool refused: they stay in the routing actor's memory and are flushed again every tick),
`notify_spool_replayed_total{result}` (`queued`: this replica queued it; `covered`: the shared
log already held it, e.g. a peer's spool queued it first).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import trio

from actors.cluster.exceptions import ClusterError
from actors.cluster.notifylog import SharedNotifyLog, notification_identity
from actors.cluster.spool import Spool, SpoolFull
from actors.models import Alert, Notification
from actors.routing.grouping import Group, GroupTiming, NotifyLog, flush
from actors.store import StoreError
from actors.telemetry.protocols import MetricWriter

__all__ = ["SPOOL_ENTRIES", "SPOOL_FULL", "SPOOL_REPLAYED", "SpoolingGate"]

SPOOL_ENTRIES = "notify_spool_entries"
SPOOL_FULL = "notify_spool_full_total"
SPOOL_REPLAYED = "notify_spool_replayed_total"
_BACKOFF = (0.5, 5.0)


class SpoolingGate:
    """The shared notification log, with the spool when it fails. See the module docstring.

    Args:
        shared: the notification log replicas share.
        spool: this replica's spool.
        metrics: where the spool's metrics are declared and recorded.
        logger: where spooling and replays are logged.
        backoff: the first and the longest wait between failing replays, in seconds.
    """

    def __init__(
        self,
        *,
        shared: SharedNotifyLog,
        spool: Spool,
        metrics: MetricWriter,
        logger: logging.Logger,
        backoff: tuple[float, float] = _BACKOFF,
    ) -> None:
        self._shared = shared
        self._spool = spool
        self._metrics = metrics
        self._log = logger
        self._backoff = backoff
        self._wakeup = trio.Event()
        self.replayed = 0
        metrics.declare(SPOOL_ENTRIES, "gauge", "Notifications waiting in the local spool.", ())
        metrics.declare(
            SPOOL_FULL, "counter", "Notifications the full spool refused (kept in memory).", ()
        )
        metrics.declare(
            SPOOL_REPLAYED,
            "counter",
            "Spooled notifications replayed, by result (queued, covered).",
            ("result",),
        )

    # -- the routing actor's FlushGate ---------------------------------------------------------

    async def load_logs(self) -> dict[str, NotifyLog]:
        """Every group's shared log (`SharedNotifyLog.load_logs`)."""
        return await self._shared.load_logs()

    async def flush(
        self,
        group: Group,
        now: float,
        timing: GroupTiming,
        muted: Callable[[Alert], bool],
        context: Callable[[Sequence[Alert]], Mapping[str, object]],
    ) -> tuple[Group | None, Notification | None]:
        """Flush `group` on the shared log, or into the spool (see the module docstring).

        Raises:
            StoreError: the shared log failed and the spool could not take the notification
                (full: `SpoolFull` is counted and the shared log's error raised; or its file
                failed): nothing was queued, the caller keeps the group and tries again.
            FlushContended: as `SharedNotifyLog.flush`.
        """
        if not self._spool.holds(group.key):
            try:
                return await self._shared.flush(group, now, timing, muted, context)
            except StoreError as exc:
                failure: StoreError | None = exc
        else:
            failure = None
        after, note = flush(group, now, timing, muted, context=context)
        if note is None:
            return after, None
        basis = group.log.seq
        note = replace(note, key=notification_identity(note.channel, group.key, basis, note.alerts))
        try:
            await self._spool.add(note, basis=basis, decided_at=now)
        except SpoolFull as full:
            self._metrics.record(SPOOL_FULL, 1, {})
            self._log.error("%s; %s stays in memory until PostgreSQL answers", full, group.key)
            if failure is not None:
                raise failure from full
            raise
        self._metrics.record(SPOOL_ENTRIES, float(self._spool.count), {})
        self._log.warning(
            "notification %s for %s spooled in %s (%s)",
            note.key,
            group.key,
            self._spool.location,
            failure if failure is not None else "earlier notifications of the group wait",
        )
        self._wakeup.set()
        return after, note

    # -- the spool actor -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Replay the spool whenever it holds entries, until cancelled (module docstring).

        Raises:
            StoreError: the spool file cannot be read at start (the supervisor restarts).
        """
        waiting = await self._spool.load()
        self._metrics.record(SPOOL_ENTRIES, float(waiting), {})
        if waiting:
            self._log.warning(
                "%d notification(s) spooled in %s wait for PostgreSQL",
                waiting,
                self._spool.location,
            )
        task_status.started()
        delay = self._backoff[0]
        failing = False
        while True:
            if self._spool.count == 0:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            try:
                await self.replay()
            except (StoreError, ClusterError) as exc:
                if not failing:
                    self._log.warning("cannot replay the spool yet: %s", exc)
                failing = True
                await trio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            failing = False
            delay = self._backoff[0]

    async def replay(self) -> int:
        """Replay every spooled entry, oldest first; return how many were replayed.

        Each entry is deleted after its replay committed; the first failure stops the replay
        and keeps that entry and every later one.

        Raises:
            StoreError: the shared store (or the spool file) failed.
            FlushContended: peers changed a group's log under every attempt.
        """
        replayed = 0
        started = time.perf_counter()
        try:
            while entries := await self._spool.entries():
                for entry in entries:
                    queued = await self._shared.replay(
                        entry.notification, entry.basis, entry.decided_at
                    )
                    await self._spool.remove(entry)
                    replayed += 1
                    self.replayed += 1
                    result = "queued" if queued else "covered"
                    self._metrics.record(SPOOL_REPLAYED, 1, {"result": result})
            await self._spool.load()  # the file's own count (it may be shared by processes)
        finally:
            self._metrics.record(SPOOL_ENTRIES, float(self._spool.count), {})
            if self._spool.corrupt:
                self._log.error(
                    "%d undecodable spool entries were deleted from %s",
                    self._spool.corrupt,
                    self._spool.location,
                )
                self._spool.corrupt = 0
        if replayed:
            self._log.warning(
                "replayed %d spooled notification(s) in %.3f s",
                replayed,
                time.perf_counter() - started,
            )
        return replayed
