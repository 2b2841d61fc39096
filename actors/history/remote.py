"""`RemoteHistory`: the history of the checks another sharded replica runs, read from the store.

A sharded replica records only the runs of its own checks (`HistoryRecorder`); the runs of the
others reach the shared history through their owners' flushes. This actor keeps, for the checks
run elsewhere (`checks()`, asked at each refresh), what the status page reads from memory (the
uptime strips of the four windows and the open incident) and answers a check page's reads
(buckets, runs, incidents) with one read of the store each, as the recorder does.

Refresh, every `interval` (`[history] flush_interval`: the owners write no faster) in its own
task, never on a request's path and never in the heartbeat (a first load can take seconds):

- a check not held yet is loaded: its strips summed by the database from the buckets that
  start before the tail (below), then its tail (in parts of `LOAD_BATCH` checks, each shown
  once whole);
- every check's tail: its buckets that start at or after the last refresh less `lag` (a few
  buckets a check), each compared with what was counted of it before, the difference added to
  the strips (a bucket is rewritten as its owner's runs accumulate in it). Older buckets are
  final: an owner commits a run's bucket within its flush interval of the run, and `lag` is that
  plus a margin;
- every check's open incident, shown only while the check's newest stored run failed (the next
  owner of a check carries its open incident on and closes it, but one can be left open in the
  shared history, e.g. written by an older version; the check's runs tell whether it is over).

So what the page shows of such a check is at most its owner's flush interval plus `interval`
(plus a read) behind the owner's runs. The reads of one refresh are a few statements whatever
the number of checks (`HistoryRepository.strips`, `buckets_since`, `open_incidents`), and a
refresh that fails changes nothing of what it had not finished (the next one reads again).
A check that runs here again is forgotten; when it moves away again it is loaded anew.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from actors.clock import Clock
from actors.history.repository import HistoryRepository, StoredResult
from actors.history.rollup import (
    HOUR,
    MINUTE,
    WINDOWS,
    Bucket,
    Incident,
    Strip,
    Window,
    window_strips,
)
from actors.store.errors import StoreError

__all__ = ["LAG_MARGIN", "LOAD_BATCH", "RemoteHistory", "RemoteStatistics"]

LAG_MARGIN = 60.0
"""Seconds added to the owners' flush interval before a bucket is taken as final: a slow flush,
the replicas' clocks apart, a run stamped when it started."""
LOAD_BATCH = 1000
"""Checks loaded per part: a first load of thousands of checks is done in parts (on PostgreSQL
each part's sums may scan the buckets table: fewer parts, fewer scans)."""
_ROWS_PER_CHECKPOINT = 10_000
"""Rows of a load counted between two checkpoints: the event loop is never held long."""
_RESOLUTIONS = (MINUTE, HOUR)


def _going_on(incident: Incident | None, newest: StoredResult | None) -> Incident | None:
    """`incident` unless a run after its start did not fail: an incident left open in the
    shared history (see the module docstring) is over once the check's runs pass."""
    if incident is None or newest is None or newest.at < incident.started:
        return incident
    return incident if newest.status == "fail" else None


@dataclass(slots=True)
class _Held:
    """What is kept of one check run elsewhere. `floor[res]`: buckets of that resolution
    starting before it are counted and final; `seen`: the buckets from it on, as counted."""

    strips: dict[str, Strip] = field(default_factory=window_strips)
    floor: dict[int, int] = field(default_factory=dict)
    seen: dict[tuple[int, int], Bucket] = field(default_factory=dict)
    incident: Incident | None = None


@dataclass(frozen=True, slots=True)
class RemoteStatistics:
    """Counters of one `RemoteHistory`: refreshes done and failed, checks held, buckets read
    by the last refresh."""

    refreshes: int
    failed: int
    checks: int
    buckets_read: int


class RemoteHistory:
    """The history of the checks run elsewhere (see the module docstring).

    Args:
        repository: the shared history.
        checks: the checks another replica runs now (asked at each refresh).
        clock: wall time (bucket boundaries).
        interval: seconds between refreshes (`[history] flush_interval`).
        lag: seconds after a run within which its owner has written its bucket (the owners'
            flush interval plus `LAG_MARGIN` by default).
        logger: where failed refreshes are reported.
    """

    def __init__(
        self,
        *,
        repository: HistoryRepository,
        checks: Callable[[], Iterable[str]],
        clock: Clock,
        interval: float,
        lag: float | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._repository = repository
        self._checks = checks
        self._clock = clock
        self._interval = interval
        self._lag = interval + LAG_MARGIN if lag is None else lag
        self._log = logger or logging.getLogger("history")
        self._held: dict[str, _Held] = {}
        # The last shape of each strip of a check no longer held: a check loaded again starts
        # from it, so a page never reuses a bar drawn from the strips it had before.
        self._shapes: dict[tuple[str, str], int] = {}
        self._read_at: float | None = None
        self._refreshes = 0
        self._failed = 0
        self._buckets_read = 0

    # -- the actor -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Report started, then refresh every `interval` until cancelled. A refresh that fails
        is logged and done again at the next."""
        task_status.started()
        while True:
            try:
                await self.refresh()
            except StoreError as exc:
                self._failed += 1
                self._log.warning("history of the checks run elsewhere not read: %s", exc)
            await trio.sleep(self._interval)

    async def refresh(self) -> None:
        """Load the checks run elsewhere not held yet, then read every held one's tail and open
        incident (see the module docstring); forget the checks that run here now.

        Raises:
            actors.store.errors.StoreError: a read failed (what was read before is kept).
        """
        now = self._clock.now()
        names = list(dict.fromkeys(self._checks()))
        wanted = set(names)
        for name in [name for name in self._held if name not in wanted]:
            self._forget(name)
        since = (now if self._read_at is None else self._read_at) - self._lag
        floors = {res: int(since // res) * res for res in _RESOLUTIONS}
        held = [name for name in names if name in self._held]
        new = [name for name in names if name not in self._held]
        for at in range(0, len(new), LOAD_BATCH):
            await self._load(new[at : at + LOAD_BATCH], now=now, since=since, floors=floors)
        # Each held check's tail from its floor (the last refresh's): the buckets that become
        # final now are read a last time.
        read = 0
        tails: list[tuple[int, dict[str, list[Bucket]]]] = []
        for res in _RESOLUTIONS:
            start = min((self._held[name].floor[res] for name in held), default=floors[res])
            tail = await self._repository.buckets_since(held, res, start)
            read += sum(len(buckets) for buckets in tail.values())
            tails.append((res, tail))
        incidents = await self._repository.open_incidents(names)
        newest = await self._repository.latest(incidents) if incidents else {}
        # Everything read: applied at once (a page never sees half a refresh).
        for res, tail in tails:
            for name in held:
                self._apply(self._held[name], res, tail.get(name, ()), floors[res])
        for name in names:
            check = self._held.get(name)
            if check is not None:
                check.incident = _going_on(incidents.get(name), newest.get(name))
        self._read_at = now
        self._refreshes += 1
        self._buckets_read = read

    async def _load(
        self, names: Sequence[str], *, now: float, since: float, floors: Mapping[int, int]
    ) -> None:
        """Hold `names`: their strips summed from the buckets before the floors (`since`
        rounded down), their tails from the floors on."""
        rows = await self._repository.strips(names, now=now, windows=WINDOWS.values(), before=since)
        tails = [
            (res, await self._repository.buckets_since(names, res, floors[res]))
            for res in _RESOLUTIONS
        ]
        loaded = {name: self._fresh(name, floors) for name in names}
        for at, row in enumerate(rows, 1):
            loaded[row.check].strips[row.window].add(
                row.start, row.count, row.failures, row.lat_sum, row.lat_max
            )
            if at % _ROWS_PER_CHECKPOINT == 0:
                await trio.lowlevel.checkpoint()  # `loaded` is not shown before it is whole
        for res, tail in tails:
            for name, check in loaded.items():
                self._apply(check, res, tail.get(name, ()), floors[res])
        self._held.update(loaded)

    def _fresh(self, name: str, floors: Mapping[int, int]) -> _Held:
        check = _Held(floor=dict(floors))
        for window, strip in check.strips.items():
            strip.shape = self._shapes.pop((name, window), -1) + 1
        return check

    def _forget(self, name: str) -> None:
        check = self._held.pop(name)
        for window, strip in check.strips.items():
            self._shapes[(name, window)] = strip.shape

    @staticmethod
    def _apply(check: _Held, res: int, buckets: Iterable[Bucket], floor: int) -> None:
        """Count `buckets` of resolution `res` into `check`'s strips (each bucket's difference
        from what was counted of it), then take those before `floor` as final."""
        seen = check.seen
        least = check.floor[res]
        strips = [check.strips[w.name] for w in WINDOWS.values() if w.resolution == res]
        for bucket in buckets:
            if bucket.start < least:
                continue  # counted already, final
            before = seen.get((res, bucket.start))
            if before == bucket:
                continue
            count, failures, lat_sum = bucket.count, bucket.failures, bucket.lat_sum
            if before is not None:
                count -= before.count
                failures -= before.failures
                lat_sum -= before.lat_sum
            for strip in strips:
                strip.add(bucket.start, count, failures, lat_sum, bucket.lat_max)
            seen[(res, bucket.start)] = bucket
        if floor > least:
            check.floor[res] = floor
            for key in [key for key in seen if key[0] == res and key[1] < floor]:
                del seen[key]

    # -- reading -------------------------------------------------------------------------------

    def holds(self, check: str) -> bool:
        """Whether `check` is held (loaded by a refresh since it runs elsewhere)."""
        return check in self._held

    def columns(
        self, check: str, window: Window, now: float
    ) -> tuple[list[int], list[int], list[int], list[int]]:
        """`check`'s uptime bar over `window` as columns: runs, failures, latency sum and max
        (us) per slot (empty when not held)."""
        held = self._held.get(check)
        strip = Strip(window.slot) if held is None else held.strips[window.name]
        return strip.columns(now)

    def totals(self, check: str, window: Window, now: float) -> tuple[int, int]:
        """(runs, failures) of `check` over `window`."""
        held = self._held.get(check)
        return (0, 0) if held is None else held.strips[window.name].totals(now)

    def shape(self, check: str, window: Window) -> int:
        """Changes whenever `check`'s uptime bar over `window` shows something new, also when
        the check is loaded again; -1 when not held."""
        held = self._held.get(check)
        return -1 if held is None else held.strips[window.name].shape

    def open_incidents(self) -> Mapping[str, Incident]:
        """The incidents going on now of the checks held, as of the last refresh."""
        return {
            name: held.incident for name, held in self._held.items() if held.incident is not None
        }

    async def buckets(self, check: str, window: Window, now: float) -> list[Bucket]:
        """`check`'s stored buckets over `window` (minutes for 24 h, hours beyond), oldest
        first: one read.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        resolution = window.resolution
        since = now - window.seconds + resolution
        stored = await self._repository.buckets(check, resolution, since)
        return [b for b in stored if b.start > since - resolution]

    async def results(self, check: str, limit: int) -> list[StoredResult]:
        """`check`'s newest `limit` stored runs, newest first: one read.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        return await self._repository.results(check, limit)

    async def incidents(self, check: str, since: float) -> list[Incident]:
        """`check`'s stored incidents open or ended after `since`, newest first: one read.

        Raises:
            actors.store.errors.StoreError: the query failed.
        """
        return await self._repository.incidents(check, since)

    def statistics(self) -> RemoteStatistics:
        """A frozen snapshot of the counters."""
        return RemoteStatistics(self._refreshes, self._failed, len(self._held), self._buckets_read)
