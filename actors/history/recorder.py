"""`HistoryRecorder`: the actor that keeps every check's history, and its read side.

Path of a result: a check publishes to `HealthState`, whose result listener calls `observe`
synchronously (a hot, in-order fact: no mailbox, nothing to lose between two tasks). `observe`
only queues the run (a run of every check every second: the per-run work is kept to an append);
the queue is folded into the in-memory roll-up (the open minute and hour buckets, the uptime
strips of the four windows, the open incident) and the pending batch at the next flush or read,
each check's runs together (its runs in one slot of a strip are added at once), so every reader
sees every run observed before it. `run` writes the
batch every `flush_interval` (or sooner when it grows past `MAX_PENDING`) in one transaction
through `HistoryRepository`, and prunes by the retention keys once a minute. A write that fails
is logged and its batch kept for the next flush (the raw runs beyond `MAX_PENDING` are dropped:
the buckets and incidents, which carry the uptime, are never dropped).

On start `run` reports started and loads what a restart needs (open buckets, open incidents, the
strips); runs observed meanwhile are recorded once it is loaded. The checks start after it and
stop before it, so the last runs are flushed on a graceful stop. After a crash, at most
`flush_interval` of runs is lost.

Sharded hand-over (`take_over`, `release`, called by the share as it starts and stops checks):
what a replica holds of a check it did not run is stale (loaded at its start, or left from an
earlier time it ran the check). A check it takes over is therefore loaded again from the shared
history (its open buckets, open incident and strips, replacing what was held) before its first
run here is folded: its runs wait until then and are folded after, oldest first. The reload
runs at the next flush, which `take_over` wakes at once. A read that fails is logged and tried
again at the next flush, the runs still waiting; only once `MAX_PENDING` runs wait are they
folded onto what is held (a logged warning: the shared open buckets may then lose the previous
owner's runs, this replica's are kept). The previous owner's open incident is carried on: the
new owner's next pass closes it. A check it releases is forgotten at the next flush, after its
buckets are taken into that flush's batch (so a later takeover loads it again).

Readers: the overview reads the strips and open incidents from memory (`strip`, `uptime`,
`open_incidents`: no database access, so a page of 1,000 checks renders in milliseconds); a
check's page reads its buckets, runs and incidents from the database with what is not yet
written laid over them (`buckets`, `results`, `incidents`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import trio

from actors.clock import Clock
from actors.history.config import HistoryConfig
from actors.history.repository import Batch, HistoryRepository, Loaded, Pruning, StoredResult
from actors.history.rollup import (
    HOUR,
    MINUTE,
    WINDOWS,
    Accumulator,
    Bucket,
    Incident,
    Slot,
    Strip,
    Window,
    track_incident,
    window_strips,
)
from actors.models import CheckResult, CheckStatus
from actors.store.errors import StoreError

__all__ = ["MAX_PENDING", "HistoryRecorder", "HistoryStatistics"]

MAX_PENDING = 20_000
"""Runs waiting for the next flush beyond which the recorder flushes at once."""
_PRUNE_EVERY = 60.0
_STRIP_SLOTS = tuple((w.name, w.slot, w.resolution) for w in WINDOWS.values())
"""Per window: its name, the width of its strip's slots, the resolution of its buckets."""


@dataclass(slots=True)
class _CheckHistory:
    minute: Accumulator | None = None
    hour: Accumulator | None = None
    incident: Incident | None = None
    # Buckets loaded at a takeover, by (resolution, start): continued when a run reopens them.
    stored: dict[tuple[int, int], Bucket] = field(default_factory=dict)
    strips: dict[str, Strip] = field(default_factory=window_strips)


@dataclass(frozen=True, slots=True)
class HistoryStatistics:
    """Counters of one recorder: runs observed, flushes done and failed, runs pending."""

    observed: int
    flushes: int
    failed_flushes: int
    pending: int


def _latency_us(seconds: float) -> int:
    if not math.isfinite(seconds) or seconds < 0:
        return 0
    return round(seconds * 1_000_000)


class HistoryRecorder:
    """Keeps the check history (see the module docstring).

    Args:
        repository: where the history is stored (migrated by the caller).
        config: [history].
        clock: wall time (bucket boundaries, retention).
        logger: where failed writes are reported.
    """

    def __init__(
        self,
        *,
        repository: HistoryRepository,
        config: HistoryConfig,
        clock: Clock,
        logger: logging.Logger | None = None,
    ) -> None:
        self._repository = repository
        self._config = config
        self._clock = clock
        self._log = logger or logging.getLogger("history")
        self._checks: dict[str, _CheckHistory] = {}
        self._batch = Batch()
        self._queued: list[CheckResult] = []
        self._dirty: set[tuple[str, int]] = set()
        self._loaded = False
        self._early: list[CheckResult] = []
        # Sharded hand-over: checks taken over and not reloaded yet, their runs meanwhile, and
        # checks released (forgotten at the next flush).
        self._taking: set[str] = set()
        self._waiting: list[CheckResult] = []
        self._released: set[str] = set()
        self._wake = trio.Event()
        self._observed = 0
        self._flushes = 0
        self._failed = 0
        self._last_prune: float | None = None

    # -- writing -------------------------------------------------------------------------------

    def observe(self, result: CheckResult) -> None:
        """Record one run (the `HealthState` result listener). Never raises, never blocks.

        O(1) and small: the run is queued; the roll-up takes it (`_fold`) at the next flush or
        read, the runs of one check together (see the module docstring)."""
        if not self._loaded:
            if len(self._early) < MAX_PENDING:
                self._early.append(result)
            return
        queued = self._queued
        queued.append(result)
        if len(queued) >= MAX_PENDING:
            self._wake.set()

    def _fold(self) -> None:
        """Take the queued runs into the roll-up (buckets, strips, incident) and the batch."""
        queued = self._queued
        if not queued:
            return
        self._queued = []
        by_check: dict[str, list[CheckResult]] = {}
        taking = self._taking
        for result in queued:
            if taking and result.check in taking:
                self._waiting.append(result)  # folded once the check is reloaded
                continue
            runs = by_check.get(result.check)
            if runs is None:
                by_check[result.check] = [result]
            else:
                runs.append(result)
        raw = self._batch.results if self._config.raw_results else None
        for name, runs in by_check.items():
            self._fold_check(name, runs, raw)

    def _fold_check(
        self, name: str, runs: list[CheckResult], raw: list[StoredResult] | None
    ) -> None:
        """Fold the runs of check `name`, oldest first (and append them to `raw`, unless
        None). The runs of one minute are gathered first (count, failures, latencies) and
        added to the open buckets at once; the runs that fall in one slot of a strip are added
        to it at once (every slot of every strip is a function of the run's minute)."""
        history = self._checks.get(name)
        if history is None:
            history = self._checks[name] = _CheckHistory()
        minute, hour, incident = history.minute, history.hour, history.incident
        changed_incidents = self._batch.incidents
        # The minute gathered: its number, failures, latencies (us); then its runs are added.
        gathered = -1
        failures = 0
        latencies: list[int] = []
        # Per strip: the slot of the runs gathered and their sums (number, count, failures,
        # latency sum, max), added when a minute falls in another slot and at the end.
        open_slots: list[list[int] | None] = [None] * len(_STRIP_SLOTS)
        strips = [history.strips[window] for window, _, _ in _STRIP_SLOTS]
        observed = 0
        for result in runs:
            at = result.timestamp
            if not math.isfinite(at) or at < 0:
                continue  # no bucket holds it (a broken clock); the health state still shows it
            observed += 1
            status = result.status
            failed = status is CheckStatus.FAIL
            latency = _latency_us(result.latency_seconds)
            if raw is not None:
                raw.append(StoredResult(name, at, status.value, latency, result.message))
            number = int(at // MINUTE)
            if number != gathered:
                if latencies:
                    minute, hour = self._add_minute(
                        name, minute, hour, gathered, failures, latencies, open_slots, strips
                    )
                gathered, failures, latencies = number, 0, []
            failures += failed
            latencies.append(latency)
            if failed == (incident is None):  # a failure with none open, a pass with one open
                incident, changed = track_incident(
                    incident, check=name, failed=failed, at=at, message=result.message
                )
                if changed is not None:
                    changed_incidents[(name, changed.started)] = changed
        if latencies:
            minute, hour = self._add_minute(
                name, minute, hour, gathered, failures, latencies, open_slots, strips
            )
        for i, (_, width, _) in enumerate(_STRIP_SLOTS):
            slot = open_slots[i]
            if slot is not None:
                strips[i].add(slot[0] * width, slot[1], slot[2], slot[3], slot[4])
        history.minute, history.hour, history.incident = minute, hour, incident
        if observed:
            self._observed += observed
            self._dirty.add((name, MINUTE))
            self._dirty.add((name, HOUR))

    def _add_minute(
        self,
        name: str,
        minute: Accumulator | None,
        hour: Accumulator | None,
        number: int,
        failures: int,
        latencies: list[int],
        open_slots: list[list[int] | None],
        strips: list[Strip],
    ) -> tuple[Accumulator, Accumulator]:
        """Add the runs of minute `number` of check `name` to its open buckets (reopened when
        the minute is past them) and to the strips' open slots; the open buckets after."""
        start = number * MINUTE
        if minute is None or start > minute.start:
            minute = self._reopen(name, minute, MINUTE, start)
        minute.add_runs(failures, latencies)
        start = int(start // HOUR) * HOUR
        if hour is None or start > hour.start:
            hour = self._reopen(name, hour, HOUR, start)
        hour.add_runs(failures, latencies)
        count, total, worst = len(latencies), sum(latencies), max(latencies)
        for i, (_, width, resolution) in enumerate(_STRIP_SLOTS):
            # the slot of the minute's bucket (as the strips loaded from the buckets have it)
            at = number * MINUTE
            slot_number = (at - at % resolution) // width
            slot = open_slots[i]
            if slot is not None and slot[0] == slot_number:
                slot[1] += count
                slot[2] += failures
                slot[3] += total
                if worst > slot[4]:
                    slot[4] = worst
                continue
            if slot is not None:
                strips[i].add(slot[0] * width, slot[1], slot[2], slot[3], slot[4])
            open_slots[i] = [slot_number, count, failures, total, worst]
        return minute, hour

    def _reopen(
        self, name: str, acc: Accumulator | None, resolution: int, start: int
    ) -> Accumulator:
        """A new open bucket from `start`; the closed one's final state goes into the batch."""
        if acc is not None:
            self._batch.buckets[(name, resolution, acc.start)] = acc.bucket()
        stored = self._checks[name].stored
        if stored:
            bucket = stored.pop((resolution, start), None)
            if bucket is not None:
                return Accumulator.restore(bucket)
        return Accumulator(start, resolution)

    def _take_batch(self) -> Batch:
        self._fold()
        batch = self._batch
        for name, resolution in self._dirty:
            history = self._checks[name]
            acc = history.minute if resolution == MINUTE else history.hour
            if acc is not None:
                batch.buckets[(name, resolution, acc.start)] = acc.bucket()
        self._dirty = set()
        for name in self._released - self._taking:
            self._checks.pop(name, None)
        self._released = set()
        self._batch = Batch()
        return batch

    # -- sharded hand-over ---------------------------------------------------------------------

    def take_over(self, checks: Iterable[str]) -> None:
        """This replica runs `checks` from now on (they were run elsewhere, or not at all):
        reload them from the shared history at the next flush (woken now) before folding their
        runs (see the module docstring). Never raises, never blocks."""
        names = set(checks)
        if not names:
            return
        self._fold()
        self._taking |= names
        self._released -= names
        self._wake.set()

    def release(self, checks: Iterable[str]) -> None:
        """This replica no longer runs `checks` (stopped): their runs observed so far are
        folded now and written by the next flush, after which they are forgotten. Never
        raises, never blocks."""
        self._fold()
        self._released |= set(checks)

    async def _reload_taken(self) -> None:
        """Reload the checks taken over and fold their waiting runs (see the module
        docstring). Never raises a storage error."""
        if not self._taking or not self._loaded:
            return
        names = set(self._taking)
        now = self._clock.now()
        # From the oldest run waiting: the buckets it falls in may be closed by now.
        since = min(
            (r.timestamp for r in self._waiting if math.isfinite(r.timestamp) and r.timestamp >= 0),
            default=now,
        )
        try:
            loaded = await self._repository.load_checks(
                names, since=min(since, now), now=now, windows=WINDOWS.values()
            )
        except StoreError as exc:
            if len(self._waiting) < MAX_PENDING:
                self._log.warning(
                    "history: checks taken over not loaded, tried again at the next flush: %s",
                    exc,
                )
                return
            self._log.warning(
                "history: checks taken over not loaded, %d runs folded onto the history held"
                " here (the shared open buckets may lose the previous owner's runs): %s",
                len(self._waiting),
                exc,
            )
        else:
            self._replace(names, loaded)
        self._taking -= names
        waiting, self._waiting = self._waiting, []
        kept = [r for r in waiting if r.check in self._taking]
        self._waiting = kept
        self._queued = [r for r in waiting if r.check not in self._taking] + self._queued
        self._fold()

    def _replace(self, names: set[str], loaded: Loaded) -> None:
        """What is held of `names` replaced by `loaded` (a strip's shape moves on, so a bar
        drawn from the old one is not reused)."""
        old = {name: self._checks.get(name) for name in names}
        fresh = {name: _CheckHistory() for name in names}
        for name, buckets in loaded.open_buckets.items():
            # Held as stored buckets: the next run opens the one it falls in (no open bucket
            # before it, so none is written back unchanged).
            fresh[name].stored = {(b.resolution, b.start): b for b in buckets}
        for name, incident in loaded.open_incidents.items():
            fresh[name].incident = incident
        for row in loaded.strips:
            fresh[row.check].strips[row.window].add(
                row.start, row.count, row.failures, row.lat_sum, row.lat_max
            )
        for name, history in fresh.items():
            previous = old[name]
            if previous is not None:
                for window, strip in history.strips.items():
                    strip.shape += previous.strips[window].shape + 1
            self._checks[name] = history

    async def flush(self) -> bool:
        """Write what is pending (and prune when due) in one transaction; False if it failed
        (the batch is kept for the next flush, see the module docstring); then reload the
        checks taken over. Never raises a storage error."""
        written = await self._write()
        await self._reload_taken()
        return written

    async def _write(self) -> bool:
        batch = self._take_batch()
        now = self._clock.now()
        pruning = None
        if self._last_prune is None or now - self._last_prune >= _PRUNE_EVERY:
            config = self._config
            pruning = Pruning(
                minutes_before=now - config.minute_retention,
                hours_before=now - config.hour_retention,
                incidents_before=now - config.incident_retention,
                keep_results=config.raw_results,
            )
        if not len(batch) and pruning is None:
            return True
        try:
            await self._repository.write(batch, pruning)
        except StoreError as exc:
            self._failed += 1
            self._log.error("history: write failed, retried at the next flush: %s", exc)
            self._restore(batch)
            return False
        self._flushes += 1
        if pruning is not None:
            self._last_prune = now
        return True

    def _restore(self, failed: Batch) -> None:
        newer = self._batch
        failed.buckets.update(newer.buckets)
        failed.incidents.update(newer.incidents)
        failed.results.extend(newer.results)
        del failed.results[: max(0, len(failed.results) - MAX_PENDING)]
        self._batch = failed

    # -- the actor -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Report started, load the stored state, then flush every `flush_interval` until
        cancelled; a last flush runs on the way out (bounded to 5 s).

        Started comes first: loading 90 days of 1,000 checks takes seconds, and the checks
        (which start after the recorder) must not wait for it; their runs are kept until the
        load is done (at most `MAX_PENDING`) and then recorded in order.

        Raises:
            actors.store.errors.StoreError: the stored state cannot be loaded (the supervisor
                restarts the recorder).
        """
        task_status.started()
        await self.load()
        try:
            while True:
                with trio.move_on_after(self._config.flush_interval):
                    await self._wake.wait()
                self._wake = trio.Event()
                await self.flush()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                await self.flush()

    async def load(self) -> None:
        """Continue from the stored history (open buckets, open incidents, strips); runs
        observed before are replayed after it. Idempotent.

        Raises:
            actors.store.errors.StoreError: a query failed.
        """
        if self._loaded:
            return
        now = self._clock.now()
        loaded = await self._repository.load(now=now, windows=WINDOWS.values())
        for name, buckets in loaded.open_buckets.items():
            history = self._checks.setdefault(name, _CheckHistory())
            for bucket in buckets:
                if bucket.resolution == MINUTE:
                    history.minute = Accumulator.restore(bucket)
                else:
                    history.hour = Accumulator.restore(bucket)
        for name, incident in loaded.open_incidents.items():
            self._checks.setdefault(name, _CheckHistory()).incident = incident
        for row in loaded.strips:
            history = self._checks.setdefault(row.check, _CheckHistory())
            history.strips[row.window].add(
                row.start, row.count, row.failures, row.lat_sum, row.lat_max
            )
        self._loaded = True
        early, self._early = self._early, []
        for result in early:
            self.observe(result)

    # -- reading -------------------------------------------------------------------------------

    def strip(self, check: str, window: Window, now: float) -> list[Slot]:
        """The uptime bar of `check` over `window` at `now` (empty slots when nothing ran)."""
        self._fold()
        history = self._checks.get(check)
        if history is None:
            return Strip(window.slot).slots(now)
        return history.strips[window.name].slots(now)

    def columns(
        self, check: str, window: Window, now: float
    ) -> tuple[list[int], list[int], list[int], list[int]]:
        """`strip` as columns: runs, failures, latency sum and max (us) per slot."""
        self._fold()
        history = self._checks.get(check)
        strip = Strip(window.slot) if history is None else history.strips[window.name]
        return strip.columns(now)

    def shape(self, check: str, window: Window) -> int:
        """Changes whenever `check`'s uptime bar over `window` shows something new (see
        `Strip.shape`); -1 for a check without history."""
        self._fold()
        history = self._checks.get(check)
        return -1 if history is None else history.strips[window.name].shape

    def totals(self, check: str, window: Window, now: float) -> tuple[int, int]:
        """(runs, failures) of `check` over `window`."""
        self._fold()
        history = self._checks.get(check)
        return (0, 0) if history is None else history.strips[window.name].totals(now)

    def uptime(self, check: str, window: Window, now: float) -> float | None:
        """Share of `check`'s runs over `window` that did not fail (None without runs)."""
        count, failures = self.totals(check, window, now)
        return (count - failures) / count if count else None

    def open_incidents(self) -> Mapping[str, Incident]:
        """The incidents going on now, by check."""
        self._fold()
        return {
            name: history.incident
            for name, history in self._checks.items()
            if history.incident is not None
        }

    async def buckets(self, check: str, window: Window, now: float) -> list[Bucket]:
        """`check`'s buckets over `window` (minutes for 24 h, hours beyond), oldest first,
        the open one included.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        self._fold()
        resolution = window.resolution
        since = now - window.seconds + resolution
        stored = {b.start: b for b in await self._repository.buckets(check, resolution, since)}
        for (name, res, start), bucket in self._batch.buckets.items():
            if name == check and res == resolution and start >= since - resolution:
                stored[start] = bucket
        history = self._checks.get(check)
        if history is not None:
            acc = history.minute if resolution == MINUTE else history.hour
            if acc is not None and acc.count:
                stored[acc.start] = acc.bucket()
        return [stored[start] for start in sorted(stored) if start > since - resolution]

    async def results(self, check: str, limit: int) -> list[StoredResult]:
        """`check`'s newest `limit` runs, newest first (those not written yet included).

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        self._fold()
        pending = [r for r in reversed(self._batch.results) if r.check == check][:limit]
        stored = await self._repository.results(check, limit)
        seen = {r.at for r in pending}
        merged = pending + [r for r in stored if r.at not in seen]
        return merged[:limit]

    async def incidents(self, check: str, since: float) -> list[Incident]:
        """`check`'s incidents open or ended after `since`, newest first.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        self._fold()
        found = {i.started: i for i in await self._repository.incidents(check, since)}
        for (name, started), incident in self._batch.incidents.items():
            if name == check:
                found[started] = incident
        history = self._checks.get(check)
        if history is not None and history.incident is not None:
            found[history.incident.started] = history.incident
        return sorted(
            (i for i in found.values() if i.ended is None or i.ended >= since),
            key=lambda i: i.started,
            reverse=True,
        )

    def statistics(self) -> HistoryStatistics:
        """A frozen snapshot of the counters."""
        self._fold()
        return HistoryStatistics(
            self._observed, self._flushes, self._failed, len(self._batch.results)
        )
