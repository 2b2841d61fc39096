"""Pure roll-up of check results: buckets, incidents, uptime strips (plain data, no I/O).

- `Accumulator`: one open bucket (a minute or an hour of one check): run count, failures and
  latency min / sum / max, plus the latencies seen for its p95. `bucket()` freezes it into a
  `Bucket`. An hour of a 0.5 s check is 7,200 latencies: past `MAX_SAMPLES` every other sample
  is dropped and from then on only every other run is sampled (deterministic decimation with a
  doubling stride: every part of the bucket keeps the same weight, so p95 stays close). The
  samples are kept in an array of 64-bit integers, with a sorted copy that `bucket()` brings up
  to date by inserting the samples added since its last call (an hour's open bucket is frozen
  at every flush of the history: sorting its thousands of samples each time was the dearest
  part of a run's history).
- `track_incident`: the pass -> fail -> pass state machine. A run that fails opens an incident
  (start = its time, message = its message) unless one is open; a run that does not fail (pass
  or warn) closes the open one (end = its time).
- `Strip`: 90 slots over a window (24 h: 16 min each, 7 d: 112 min, 30 d: 8 h, 90 d: 1 day),
  aligned on multiples of the slot width since the epoch, kept as a ring: the bars and uptime
  figures of the overview are read from it without touching the database.
- `Window` / `parse_window`: the four windows by name ("24h", "7d", "30d", "90d").

Latencies are kept in whole microseconds (the database stores integers: smaller rows).
"""

from __future__ import annotations

import math
from array import array
from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass

from actors.history.errors import WindowError

__all__ = [
    "HOUR",
    "MAX_SAMPLES",
    "MINUTE",
    "SLOTS",
    "WINDOWS",
    "Accumulator",
    "Bucket",
    "Incident",
    "Slot",
    "Strip",
    "Window",
    "parse_window",
    "percentile",
    "slot_class",
    "track_incident",
    "window_strips",
    "uptime_ratio",
]

MINUTE = 60
HOUR = 3600
SLOTS = 90
"""Slots of an uptime bar, whatever the window."""
MAX_SAMPLES = 4096
"""Latencies an open bucket keeps for its p95 (then every other one is dropped)."""


@dataclass(frozen=True, slots=True)
class Window:
    """A window of the page and the API: its name, length (s) and the bucket resolution read."""

    name: str
    seconds: int
    resolution: int

    @property
    def slot(self) -> int:
        """Seconds per slot of its uptime bar (`SLOTS` slots cover the window)."""
        return self.seconds // SLOTS


WINDOWS: dict[str, Window] = {
    "24h": Window("24h", 86_400, MINUTE),
    "7d": Window("7d", 7 * 86_400, HOUR),
    "30d": Window("30d", 30 * 86_400, HOUR),
    "90d": Window("90d", 90 * 86_400, HOUR),
}
"""The windows by name, shortest first."""


def parse_window(name: str | None, default: str = "24h") -> Window:
    """The window called `name` (None or "": `default`).

    Raises:
        WindowError: `name` is not one of `WINDOWS`.
    """
    if not name:
        name = default
    window = WINDOWS.get(name)
    if window is None:
        raise WindowError(name, tuple(WINDOWS))
    return window


def percentile(ordered: Sequence[int], q: float) -> int:
    """The `q` quantile (0..1) of the sorted values, nearest rank; 0 for no values."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A closed or current bucket of one check: `start` (epoch s, a multiple of `resolution`),
    runs, failed runs, latency min / sum / p95 / max in microseconds."""

    start: int
    resolution: int
    count: int
    failures: int
    lat_min: int
    lat_sum: int
    lat_p95: int
    lat_max: int

    @property
    def lat_avg(self) -> float:
        """Mean latency in microseconds (0 without runs)."""
        return self.lat_sum / self.count if self.count else 0.0

    @property
    def up(self) -> int:
        """Runs that did not fail."""
        return self.count - self.failures


class Accumulator:
    """The open bucket of one check at one resolution (see the module docstring)."""

    __slots__ = (
        "count",
        "failures",
        "lat_max",
        "lat_min",
        "lat_sum",
        "p95_floor",
        "resolution",
        "samples",
        "sorted_samples",
        "start",
        "stride",
    )

    def __init__(self, start: int, resolution: int) -> None:
        self.start = start
        self.resolution = resolution
        self.count = 0
        self.failures = 0
        self.lat_min = 0
        self.lat_sum = 0
        self.lat_max = 0
        self.samples = array("q")
        # `samples` in order, as of the last `bucket()` (None: made again, after a halving).
        self.sorted_samples: array[int] | None = array("q")
        self.stride = 1
        # A bucket restored after a restart lost its samples: its stored p95 is kept as a floor.
        self.p95_floor = 0

    @classmethod
    def restore(cls, bucket: Bucket) -> Accumulator:
        """Continue a stored bucket (after a restart; its p95 becomes a lower bound)."""
        acc = cls(bucket.start, bucket.resolution)
        acc.count, acc.failures = bucket.count, bucket.failures
        acc.lat_min, acc.lat_sum, acc.lat_max = bucket.lat_min, bucket.lat_sum, bucket.lat_max
        acc.p95_floor = bucket.lat_p95
        return acc

    def add(self, failed: bool, latency_us: int) -> None:
        """Count one run."""
        if self.count == 0 or latency_us < self.lat_min:
            self.lat_min = latency_us
        self.lat_max = max(self.lat_max, latency_us)
        self.count += 1
        self.failures += failed
        self.lat_sum += latency_us
        if self.count % self.stride == 0:
            self.samples.append(latency_us)
            if len(self.samples) > MAX_SAMPLES:
                self._halve()

    def _halve(self) -> None:
        """Every other sample dropped, and every other run sampled from now on."""
        self.samples = self.samples[1::2]
        self.stride *= 2
        self.sorted_samples = None

    def add_runs(self, failures: int, latencies_us: list[int]) -> None:
        """Count the runs of `latencies_us` (in order), `failures` of them failed: what
        `add` of each gives, in one call (the runs a check made within one fold)."""
        if not latencies_us:
            return
        low = min(latencies_us)
        if self.count == 0 or low < self.lat_min:
            self.lat_min = low
        self.lat_max = max(self.lat_max, max(latencies_us))
        self.failures += failures
        self.lat_sum += sum(latencies_us)
        samples = self.samples
        if self.stride == 1 and len(samples) + len(latencies_us) <= MAX_SAMPLES:
            samples.extend(latencies_us)
            self.count += len(latencies_us)
            return
        for latency in latencies_us:
            self.count += 1
            if self.count % self.stride == 0:
                self.samples.append(latency)
                if len(self.samples) > MAX_SAMPLES:
                    self._halve()

    def bucket(self) -> Bucket:
        """The bucket as it stands."""
        ordered = self.sorted_samples
        samples = self.samples
        if ordered is None or len(samples) - len(ordered) > 64:
            ordered = self.sorted_samples = array("q", sorted(samples))
        else:
            for latency in samples[len(ordered) :]:
                insort(ordered, latency)
        p95 = max(self.p95_floor, percentile(ordered, 0.95))
        return Bucket(
            self.start,
            self.resolution,
            self.count,
            self.failures,
            self.lat_min,
            self.lat_sum,
            min(p95, self.lat_max),
            self.lat_max,
        )


@dataclass(frozen=True, slots=True)
class Incident:
    """A pass -> fail -> pass episode of one check; `ended` is None while it lasts."""

    check: str
    started: float
    ended: float | None
    message: str

    @property
    def active(self) -> bool:
        """Still failing."""
        return self.ended is None

    def duration(self, now: float) -> float:
        """Seconds it lasted (until `now` while active)."""
        return (now if self.ended is None else self.ended) - self.started


def track_incident(
    current: Incident | None, *, check: str, failed: bool, at: float, message: str
) -> tuple[Incident | None, Incident | None]:
    """One run through the incident state machine: (open incident after it, incident changed by
    it: opened or closed, or None when nothing changed)."""
    if failed:
        if current is not None:
            return current, None
        opened = Incident(check, at, None, message)
        return opened, opened
    if current is None:
        return None, None
    closed = Incident(check, current.started, at, current.message)
    return None, closed


def slot_class(count: int, failures: int) -> str:
    """The colour class of a slot with `count` runs of which `failures` failed: "none" (no
    runs), "up" (no failure), "degraded" (under half failed), "down"."""
    if count == 0:
        return "none"
    if failures == 0:
        return "up"
    return "degraded" if failures * 2 < count else "down"


@dataclass(frozen=True, slots=True)
class Slot:
    """One slot of an uptime bar: its start, runs, failures and latency sum / max (us)."""

    start: int
    count: int
    failures: int
    lat_sum: int
    lat_max: int

    @property
    def ratio(self) -> float | None:
        """Share of runs that did not fail (None without runs)."""
        return (self.count - self.failures) / self.count if self.count else None

    @property
    def lat_avg(self) -> float | None:
        """Mean latency in microseconds (None without runs)."""
        return self.lat_sum / self.count if self.count else None


class Strip:
    """`SLOTS` slots of `width` seconds, as a ring keyed by slot number (see module docstring).

    Memory: five arrays of `SLOTS` numbers, whatever the number of runs. `totals` is O(1) while
    the window does not move to a new slot (the sums are kept as runs are added). `shape`
    changes whenever what an uptime bar shows changes (a new slot, a slot's colour class, an
    older slot modified): a page may reuse a bar drawn at the same `shape`.
    """

    __slots__ = (
        "_count",
        "_failures",
        "_index",
        "_lat_max",
        "_lat_sum",
        "_newest",
        "_tot_count",
        "_tot_failures",
        "_tot_first",
        "_tot_valid",
        "shape",
        "width",
    )

    def __init__(self, width: int) -> None:
        self.width = width
        self.shape = 0
        self._newest = -1
        self._tot_first = 0
        self._tot_valid = False
        self._tot_count = 0
        self._tot_failures = 0
        self._index = array("q", [-1] * SLOTS)
        self._count = array("q", [0] * SLOTS)
        self._failures = array("q", [0] * SLOTS)
        self._lat_sum = array("q", [0] * SLOTS)
        self._lat_max = array("q", [0] * SLOTS)

    def add(self, at: float, count: int, failures: int, lat_sum: int, lat_max: int) -> None:
        """Count `count` runs at time `at` (a slot older than the ring holds is dropped)."""
        number = int(at // self.width)
        position = number % SLOTS
        held = self._index[position]
        if held > number:
            return  # older than the ring reaches
        if held != number:
            self._index[position] = number
            self._count[position] = 0
            self._failures[position] = 0
            self._lat_sum[position] = 0
            self._lat_max[position] = 0
            self.shape += 1
        elif number < self._newest:
            self.shape += 1
        else:
            before = slot_class(self._count[position], self._failures[position])
            after = slot_class(self._count[position] + count, self._failures[position] + failures)
            if before != after:
                self.shape += 1
        self._newest = max(self._newest, number)
        self._count[position] += count
        self._failures[position] += failures
        self._lat_sum[position] += lat_sum
        self._lat_max[position] = max(self._lat_max[position], lat_max)
        first = self._tot_first
        if self._tot_valid:
            if number > first + SLOTS - 1:
                self._tot_valid = False  # the window moved on: summed again when asked
            elif number >= first:
                self._tot_count += count
                self._tot_failures += failures

    def columns(self, now: float) -> tuple[list[int], list[int], list[int], list[int]]:
        """The slots of `slots(now)` as four columns (runs, failures, latency sum, latency
        max), without building a `Slot` each: the overview reads a thousand strips per page."""
        last = int(now // self.width)
        index = self._index
        counts: list[int] = []
        failures: list[int] = []
        sums: list[int] = []
        maxima: list[int] = []
        for number in range(last - SLOTS + 1, last + 1):
            position = number % SLOTS
            if index[position] == number:
                counts.append(self._count[position])
                failures.append(self._failures[position])
                sums.append(self._lat_sum[position])
                maxima.append(self._lat_max[position])
            else:
                counts.append(0)
                failures.append(0)
                sums.append(0)
                maxima.append(0)
        return counts, failures, sums, maxima

    def totals(self, now: float) -> tuple[int, int]:
        """(runs, failures) over the `SLOTS` slots ending with the one holding `now`."""
        last = int(now // self.width)
        first = last - SLOTS + 1
        if self._tot_valid and first == self._tot_first and self._newest <= last:
            return self._tot_count, self._tot_failures
        count = failures = 0
        for position, number in enumerate(self._index):
            if first <= number <= last:
                count += self._count[position]
                failures += self._failures[position]
        if self._newest <= last:
            self._tot_first, self._tot_count, self._tot_failures = first, count, failures
            self._tot_valid = True
        return count, failures

    def slots(self, now: float) -> list[Slot]:
        """The `SLOTS` slots ending with the one holding `now`, oldest first (empty where no run
        was recorded)."""
        last = int(now // self.width)
        out: list[Slot] = []
        for number in range(last - SLOTS + 1, last + 1):
            position = number % SLOTS
            if self._index[position] == number:
                out.append(
                    Slot(
                        number * self.width,
                        self._count[position],
                        self._failures[position],
                        self._lat_sum[position],
                        self._lat_max[position],
                    )
                )
            else:
                out.append(Slot(number * self.width, 0, 0, 0, 0))
        return out


def uptime_ratio(slots: Sequence[Slot] | Sequence[Bucket]) -> float | None:
    """Share of runs that did not fail over the slots or buckets (None without runs)."""
    count = sum(s.count for s in slots)
    failures = sum(s.failures for s in slots)
    return (count - failures) / count if count else None


def window_strips() -> dict[str, Strip]:
    """An empty strip for each window of `WINDOWS`, by window name (a check's uptime bars)."""
    return {name: Strip(w.slot) for name, w in WINDOWS.items()}
