"""The metric windows store: the one path every metric sample takes.

Each sample is recorded once, into one series (metric name + label values). A series keeps what
`/metrics` and OTLP expose (a counter's running total, a gauge's value, a histogram's cumulative
buckets, sum and count) and a bounded ring of points over the whole `retention` that the rule
evaluator and the `metric` check aggregate over windows (`aggregate`, semantics in `windows`).

Time slots: a series holds at most one point per slot `(k * width, (k + 1) * width]`, with
`width = max(resolution, retention / (max_points - 1))` (gauges `max_points - 2`: they also keep
the point in force at the horizon; `resolution` is the one the metric was declared with, at
least `counter_resolution` for counters, 0 by default).
So `max_points` covers the whole retention whatever the sample rate (a gauge set every second
for 24 h under a 24 h retention: 9,998 slots of ~8.6 s), and a busy series never silently cuts
a long window short. A sample in the newest point's slot is folded into it: a counter's point
sums the slot's increments (`increase`/`rate` stay exact at slot granularity); a gauge's or
histogram's becomes `(t, last, first, min, max, sum, count[, bucket counts])`, so `last`, `min`,
`max`, `sum`, `count`, `avg` and a gauge's `increase` stay exact; percentiles over slots holding
three samples or more are approximated (error in `windows`). A point's time is its newest
sample's, so `last` and `absent` are exact; a window's boundary is at slot granularity. Under
`max_points - 1` samples per retention every sample has its own slot (nothing is folded) unless
two fall within one `width`. The ring itself (the points' shapes, what each weighs against the
budget, the one eviction path) is `ring.Ring`.

Bounds (memory stays bounded whatever the application sends):
- `retention` seconds: points older than that are dropped on the next record (a gauge keeps the
  one point that was in force when the retention horizon opened, so its value stays known);
- `max_points` per series: the ring's capacity (the slot width keeps a series within it; were a
  clock step to exceed it, the oldest points go first);
- `max_series` per metric (cardinality guard) and `max_total_series` for the whole store (the
  number of metrics is not bounded: the catalogue, the monitor's own, every `[[metrics]]` entry):
  a sample for a new series beyond either is dropped and counted in
  `metric_series_dropped_total{metric}` (whose own series, one per declared metric, are exempt);
- `max_total_points` for the whole store: once the rings hold that many points, a ring no longer
  grows; a new point replaces its series' oldest (every series keeps at least its newest point,
  so `last` stays exact and a counter's total is never lost; windows get shorter under pressure).
  A folded gauge slot counts as 2 points and a folded histogram slot as 3 (their memory next to
  a raw point's); folding over the budget also gives up the series' oldest points. Points given
  up that way are counted (`statistics().points_evicted`).

Worst-case memory, the store full (`bench/telemetry.py --worst`, see docs/benchmarks.md): about
`max_total_series * 2.2 KB + (max_total_points + 3 * max_total_series) * 135 B` with label
values up to 256 characters (the events API's limit) and three labels; with the defaults
(100,000 series, 4,000,000 points) about 0.75 GB, whatever the application sends (points are
charged by their memory, so raw and folded points cost about the same per budget unit).
`max_points` (per series) caps how much of the point budget one series can take. Without the
store-wide budgets each metric alone could hold 10,000 series x 10,000 points (over 10 GB), and
the number of metrics is not bounded.

Counters are fed increments (`record`) or absolute totals (`set_counter_total`, for apps that push
their own running totals). An absolute total lower than the previous one is a reset: the new total
counts as the increment, as Prometheus' `increase()` does. The ring holds increments, so `increase`
and `rate` are exact sums with resets already resolved.

Anonymisation happens here and only here: a store built with an `Anonymizer` replaces the value
of every anonymised label (`[security] anonymize_labels`) by its keyed hash in
`MetricHandle.record` / `set_total`, the one door every sample comes through (the events API, the
Python API and its thread recorder, the checks' health metrics, the monitor's own metrics). So the
series, `/metrics`, OTLP, the rules (and the alerts' labels), the metric checks and the API only
ever see the token. Readers pass label values as stored: a matcher on an anonymised label
compares with the token (as it would in Prometheus over `/metrics`); listeners receive the
stored (hashed) values, which `aggregate_series` takes back.

Time is wall-clock seconds (`Clock.now()`); a sample may carry its own timestamp. Points of a
series stay in time order: a timestamp older than the series' newest point is taken as that point's
time.

One thread: the store is used from the event loop's thread only (see `embed` for other threads).
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from actors.models import Labels
from actors.telemetry import windows
from actors.telemetry.exceptions import (
    AggregateError,
    LabelError,
    MetricDeclarationError,
    SampleError,
    UnknownMetricError,
)
from actors.telemetry.ring import Budget, Point, Ring

if TYPE_CHECKING:
    from actors.clock import Clock
    from actors.telemetry.anonymize import Anonymizer
    from actors.telemetry.exposition import StoreCollector

__all__ = [
    "DEFAULT_BUCKETS",
    "BoundSeries",
    "DROPPED_METRIC",
    "MetricHandle",
    "MetricKind",
    "MetricStore",
    "SeriesSnapshot",
    "StoreStatistics",
]

MetricKind = Literal["counter", "gauge", "histogram"]
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
DROPPED_METRIC = "metric_series_dropped_total"

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_INF = math.inf
Listener = Callable[[str, tuple[str, ...]], None]
"""A store listener: called with the metric name and the series' label values (declared order)."""


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """What one series exposes right now (for `/metrics` and OTLP).

    `value` is a counter's total or a gauge's value (0 for histograms). `buckets` are cumulative
    counts per upper bound of the metric's buckets, +Inf last (histograms only), `min`/`max` the
    extreme observations (inf/-inf before the first). `created` is the wall time of the series'
    first sample, `updated` of its latest.
    """

    label_values: tuple[str, ...]
    value: float
    buckets: tuple[int, ...]
    sum: float
    count: int
    created: float
    updated: float
    min: float = math.inf
    max: float = -math.inf


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """The store's use of its budgets (see `MetricStore.statistics`).

    `series` counts the series under the store-wide budget (all but
    `metric_series_dropped_total`'s own), `points` every ring point (a folded gauge slot as 2, a
    folded histogram slot as 3: their memory); `series_dropped` counts
    samples of new series dropped by a per-metric or the store-wide series limit,
    `points_evicted` ring points given up early because the store reached `max_total_points`.
    """

    series: int
    max_total_series: int
    points: int
    max_total_points: int
    series_dropped: int
    points_evicted: int


class _Series(Ring):
    """A series: its ring of points (see `ring`) and what `/metrics` and OTLP expose."""

    __slots__ = (
        "buckets",
        "count",
        "created",
        "max",
        "min",
        "slot_end",
        "sum",
        "total",
        "updated",
    )

    def __init__(self, t: float, max_points: int, n_buckets: int, budget: Budget) -> None:
        super().__init__(max_points, budget)
        self.slot_end = -_INF  # the newest point's slot ends here (inclusive)
        self.total = 0.0  # counter total / gauge value
        self.sum = 0.0
        self.count = 0
        self.min = _INF
        self.max = -_INF
        self.buckets: list[int] | None = [0] * n_buckets if n_buckets else None
        self.created = t
        self.updated = t


def _time(point: Point) -> float:
    return point[0]


def _slice(points: deque[Point], i: int, j: int) -> list[Point]:
    """points[i:j], read from the nearer end of the ring (windows end at now)."""
    n = len(points)
    if n - j < i:
        out = list(itertools.islice(reversed(points), n - j, n - i))
        out.reverse()
        return out
    return list(itertools.islice(points, i, j))


def _first(point: Point) -> float:
    """The first value of a slot (raw or folded)."""
    return point[1] if len(point) == 2 else point[2]


def _values(points: deque[Point], i: int, j: int) -> list[float]:
    """The values of points[i:j], read from the nearer end of the ring (windows end at now)."""
    n = len(points)
    if n - j < i:
        out = [p[1] for p in itertools.islice(reversed(points), n - j, n - i)]
        out.reverse()
        return out
    return [p[1] for p in itertools.islice(points, i, j)]


def _sum_after(points: deque[Point], j: int) -> float:
    """The sum of the values of points[j:], added newest first (as the window walk did)."""
    after = 0.0
    for p in itertools.islice(reversed(points), len(points) - j):
        after += p[1]
    return after


class MetricHandle:
    """One declared metric: its identity, its series, and the fast recording path.

    `record(label_values, value, t)` takes label values already in `labelnames` order; it is what
    the recording API calls on its hot path. Get one from `MetricStore.handle` after `declare`.
    `external` is True for metrics the application may write by name (`business_metric` events):
    the seed catalogue and user-declared metrics, never the monitor's own.
    """

    __slots__ = (
        "_anon_index",
        "_anonymizer",
        "_budget",
        "_exempt",
        "_listeners",
        "_max_points",
        "_max_series",
        "_on_drop",
        "_resolution",
        "_retention",
        "_slot",
        "_sorted_index",
        "buckets",
        "dropped",
        "external",
        "help",
        "kind",
        "labelnames",
        "name",
        "series",
    )

    def __init__(
        self,
        *,
        name: str,
        kind: MetricKind,
        help: str,
        labelnames: tuple[str, ...],
        buckets: tuple[float, ...],
        retention: float,
        max_points: int,
        max_series: int,
        resolution: float,
        listeners: list[Listener],
        on_drop: Callable[[str], None],
        budget: Budget,
        external: bool = False,
        exempt: bool = False,
        anonymizer: Anonymizer | None = None,
    ) -> None:
        self.name = name
        self.external = external
        self.kind: MetricKind = kind
        self.help = help
        self.labelnames = labelnames
        self.buckets = buckets
        self.series: dict[tuple[str, ...], _Series] = {}
        self.dropped = 0
        self._retention = retention
        self._max_points = max_points
        self._max_series = max_series
        self._resolution = resolution
        # One point per slot of this width, so `max_points` covers the whole retention: the
        # points in force within it span at most retention / width + 1 slots, and a gauge also
        # keeps the one in force at the horizon.
        spare = 2 if kind == "gauge" else 1
        self._slot = max(resolution, retention / max(1, max_points - spare))
        self._listeners = listeners
        self._on_drop = on_drop
        self._budget = budget
        self._exempt = exempt
        self._sorted_index = tuple(sorted(range(len(labelnames)), key=labelnames.__getitem__))
        # Positions of the anonymised labels; empty (the common case) costs one test per sample.
        self._anonymizer = anonymizer
        self._anon_index: tuple[int, ...] = (
            tuple(i for i, n in enumerate(labelnames) if n in anonymizer.labels)
            if anonymizer is not None
            else ()
        )

    def _anonymize(self, label_values: tuple[str, ...]) -> tuple[str, ...]:
        """`label_values` with the anonymised positions replaced by their tokens."""
        anonymizer = self._anonymizer
        if anonymizer is None or len(label_values) != len(self.labelnames):
            return label_values  # (a wrong count: `_new_series` raises LabelError)
        out = list(label_values)
        for i in self._anon_index:
            out[i] = anonymizer.hash(out[i])
        return tuple(out)

    # -- recording ---------------------------------------------------------------------------

    def _new_series(self, label_values: tuple[str, ...], t: float) -> _Series | None:
        budget = self._budget
        if len(self.series) >= self._max_series or (
            budget.series >= budget.max_series and not self._exempt
        ):
            self.dropped += 1
            budget.dropped += 1
            self._on_drop(self.name)
            return None
        if len(label_values) != len(self.labelnames):
            raise LabelError(self.name, self.labelnames, [f"<{len(label_values)} values>"])
        n_buckets = len(self.buckets) + 1 if self.kind == "histogram" else 0
        series = _Series(t, self._max_points, n_buckets, budget)
        self.series[label_values] = series
        if not self._exempt:
            budget.series += 1
        return series

    def record(self, label_values: tuple[str, ...], value: float, t: float) -> None:
        """Record `value` at wall time `t` into the series `label_values` and notify listeners.

        Counter: add the increment; gauge: set; histogram: observe. A new series beyond the
        metric's series limit is dropped and counted (no error). `label_values` are clear
        values: the anonymised ones are hashed here, before anything is kept or any listener
        hears of the series (see the module docstring).

        Raises:
            SampleError: NaN or infinite value or timestamp, a negative counter increment, or
                one that would take the counter's total to infinity (nothing is recorded).
            LabelError: `label_values` has the wrong number of values.
        """
        # Validate before anything is created: a bad sample must not leave an empty series
        # behind (it would take a slot of the series limit and show on /metrics).
        self._check(value, t)
        if self._anon_index:
            label_values = self._anonymize(label_values)
        series = self.series.get(label_values)
        if series is None:
            series = self._new_series(label_values, t)
            if series is None:
                return
        self._apply(series, label_values, value, t)

    def _check(self, value: float, t: float) -> None:
        """Raise `SampleError` for a sample `record` refuses (see there)."""
        kind = self.kind
        if kind == "counter":
            if not 0.0 <= value < _INF:
                raise SampleError(self.name, value, "a counter increment must be finite and >= 0")
        elif not -_INF < value < _INF:
            raise SampleError(self.name, value, f"a {kind} value must be finite")
        if not -_INF < t < _INF:
            raise SampleError(self.name, t, "the timestamp must be finite")

    def _apply(
        self, series: _Series, label_values: tuple[str, ...], value: float, t: float
    ) -> None:
        """Record a checked sample into `series` (whose key is `label_values`) and notify."""
        kind = self.kind
        points = series.points
        # Same slot as the newest point (an older timestamp counts as the newest point's): fold.
        fold = False
        if points:
            last_t = points[-1][0]
            if t < last_t:
                t = last_t
            fold = t <= series.slot_end
        if kind == "counter":
            total = series.total + value
            if total == _INF:
                raise SampleError(self.name, value, "the counter's total would overflow")
            series.total = total
            if fold:
                series.fold((t, points[-1][1] + value))
        elif kind == "gauge":
            series.total = value
            if fold:
                p = points[-1]
                if len(p) == 7:
                    _, _, first, low, high, acc, n = p
                    if value < low:
                        low = value
                    elif value > high:
                        high = value
                    series.fold((t, value, first, low, high, acc + value, n + 1))
                else:
                    v = p[1]
                    low, high = (value, v) if value < v else (v, value)
                    series.promote((t, value, v, low, high, v + value, 2))
        else:
            series.sum += value
            series.count += 1
            if value < series.min:
                series.min = value
            if value > series.max:
                series.max = value
            k = bisect.bisect_left(self.buckets, value)
            series.buckets[k] += 1  # type: ignore[index]
            if fold:
                p = points[-1]
                if len(p) == 8:
                    _, _, first, low, high, acc, n, slot_buckets = p
                    slot_buckets[k] += 1
                    if value < low:
                        low = value
                    elif value > high:
                        high = value
                    series.fold((t, value, first, low, high, acc + value, n + 1, slot_buckets))
                else:
                    v = p[1]
                    slot_buckets = [0] * (len(self.buckets) + 1)
                    slot_buckets[k] += 1
                    slot_buckets[bisect.bisect_left(self.buckets, v)] += 1
                    low, high = (value, v) if value < v else (v, value)
                    series.promote((t, value, v, low, high, v + value, 2, slot_buckets))
        if not fold:
            series.append((t, value))
            width = self._slot
            end = math.ceil(t / width) * width
            series.slot_end = end if end >= t else end + width
        # Retention: a gauge keeps the one point in force at the horizon.
        cutoff = t - self._retention
        if kind == "gauge":
            while len(points) > 1 and points[1][0] <= cutoff:
                series.evict_oldest()
        else:
            while points[0][0] <= cutoff:
                series.evict_oldest()
        series.updated = t
        for listener in self._listeners:
            listener(self.name, label_values)

    def _series_for(
        self, label_values: tuple[str, ...], t: float
    ) -> tuple[tuple[str, ...], _Series | None, bool]:
        """The key (anonymised values) and series of clear `label_values`, made at `t` if new
        (None: a series limit dropped it), and whether it is new."""
        key = self._anonymize(label_values) if self._anon_index else label_values
        series = self.series.get(key)
        if series is not None:
            return key, series, False
        return key, self._new_series(key, t), True

    def set_total(self, label_values: tuple[str, ...], total: float, t: float) -> None:
        """Record a counter's absolute running total (as pushed by an app that keeps its own).

        The first total of a series is its baseline (no increase, as in Prometheus); a total lower
        than the previous one is a reset and counts entirely as the increment. `label_values`
        are clear values, anonymised as in `record`.

        Raises:
            MetricDeclarationError: the metric is not a counter.
            SampleError: NaN, infinite or negative total, or a non-finite timestamp.
        """
        if self.kind != "counter":
            raise MetricDeclarationError(self.name, "set_counter_total needs a counter")
        if not 0.0 <= total < _INF:
            raise SampleError(self.name, total, "a counter total must be finite and >= 0")
        if not -_INF < t < _INF:
            raise SampleError(self.name, t, "the timestamp must be finite")
        # `record` hashes the clear values again (cached): pass it the clear ones.
        _, series, new = self._series_for(label_values, t)
        if series is None:
            return
        if new:
            series.total = total
            self.record(label_values, 0.0, t)
            return
        increment = total - series.total if total >= series.total else total
        self.record(label_values, increment, t)
        series.total = total

    def record_histogram_counts(
        self,
        label_values: tuple[str, ...],
        counts: Sequence[int],
        total: float,
        t: float,
        *,
        cumulative: bool = False,
        low: float | None = None,
        high: float | None = None,
    ) -> None:
        """Record a batch of observations given by bucket: `counts` per bucket of the metric
        (`buckets`, +Inf last, not cumulative), `total` their sum, `low`/`high` their extremes
        when known (OTLP histograms carry them optionally).

        Delta (`cumulative=False`): the counts are new observations. Cumulative: they are the
        series' running counts since the client started (as `set_total` for counters): the
        first batch of a series is its baseline (nothing observed in any window yet), a later
        one adds what it has over the previous (any count lower than before is a reset: the
        batch counts entirely). What the series exposes is then the client's counts.

        A batch of several observations is one folded slot in the ring (see `ring`): `count`,
        `sum`, `avg`, `increase`/`rate` stay exact, percentiles come from the buckets, and `last`
        (unknown within a batch) is the batch's mean; without `low`/`high`, `min`/`max` are the
        bounds of the outermost non-empty buckets. `label_values` are clear values, anonymised
        as in `record`.

        Raises:
            MetricDeclarationError: the metric is not a histogram.
            SampleError: not one count per bucket, a negative count, or a non-finite sum,
                extreme or timestamp (nothing is recorded).
            LabelError: `label_values` has the wrong number of values.
        """
        bounds = self.buckets
        if self.kind != "histogram":
            raise MetricDeclarationError(self.name, "bucket counts need a histogram")
        if len(counts) != len(bounds) + 1 or min(counts) < 0:
            raise SampleError(
                self.name,
                float(len(counts)),
                f"expected {len(bounds) + 1} bucket counts (+Inf last), none negative",
            )
        for what, number in (("sum", total), ("timestamp", t), ("min", low), ("max", high)):
            if number is not None and not -_INF < number < _INF:
                raise SampleError(self.name, number, f"the {what} must be finite")
        key, series, new = self._series_for(label_values, t)
        if series is None:
            return
        if new and cumulative:  # the baseline: the client's counts so far, nothing new to observe
            self._expose_counts(series, counts, total, low, high)
            self._touch(series, key, t)
            return
        delta = list(counts)
        added = total
        previous = series.buckets
        assert previous is not None  # a histogram's series has buckets
        if cumulative and all(map(operator.ge, counts, previous)):
            delta = [c - p for c, p in zip(counts, previous, strict=True)]
            added = total - series.sum
            low = high = None  # the client's extremes cover its whole run, not this batch
        n = sum(delta)
        if n:
            self._observe_counts(series, delta, n, added, t, low, high)
        if cumulative:
            self._expose_counts(series, counts, total, low, high)
        elif n:
            for k, c in enumerate(delta):
                previous[k] += c
            series.sum += added
            series.count += n
            self._extremes(series, low, high)
        self._touch(series, key, t)

    @staticmethod
    def _extremes(series: _Series, low: float | None, high: float | None) -> None:
        if low is not None and low < series.min:
            series.min = low
        if high is not None and high > series.max:
            series.max = high

    def _expose_counts(
        self,
        series: _Series,
        counts: Sequence[int],
        total: float,
        low: float | None,
        high: float | None,
    ) -> None:
        """What a cumulative batch says the series holds: the client's running counts."""
        series.buckets = list(counts)
        series.sum = total
        series.count = sum(counts)
        self._extremes(series, low, high)

    def _observe_counts(
        self,
        series: _Series,
        delta: list[int],
        n: int,
        added: float,
        t: float,
        low: float | None,
        high: float | None,
    ) -> None:
        """Put `n` observations (`delta` per bucket, summing to `added`) in the ring at `t`."""
        bounds = self.buckets
        mean = added / n
        if low is None:
            first = next(k for k, c in enumerate(delta) if c)
            low = min(bounds[first - 1] if first else bounds[0], mean)
        if high is None:
            last = max(k for k, c in enumerate(delta) if c)
            high = max(bounds[last] if last < len(bounds) else bounds[-1], mean)
        points = series.points
        if points and t < points[-1][0]:
            t = points[-1][0]
        if points and t <= series.slot_end:
            p = points[-1]
            if len(p) == 8:
                _, _, first_v, lo, hi, acc, count, slot_buckets = p
                for k, c in enumerate(delta):
                    slot_buckets[k] += c
                series.fold(
                    (t, mean, first_v, min(lo, low), max(hi, high), acc + added, count + n,
                     slot_buckets)
                )  # fmt: skip
            else:
                v = p[1]
                slot_buckets = list(delta)
                slot_buckets[bisect.bisect_left(bounds, v)] += 1
                series.promote(
                    (t, mean, v, min(low, v), max(high, v), v + added, n + 1, slot_buckets)
                )
        else:
            if n == 1:
                series.append((t, added))
            else:
                series.append((t, mean))
                series.promote((t, mean, mean, low, high, added, n, delta))
            width = self._slot
            end = math.ceil(t / width) * width
            series.slot_end = end if end >= t else end + width
        cutoff = t - self._retention
        while points[0][0] <= cutoff:
            series.evict_oldest()

    def _touch(self, series: _Series, key: tuple[str, ...], t: float) -> None:
        """The series reported at `t`: it is in force, and listeners hear of it."""
        if t > series.updated:
            series.updated = t
        for listener in self._listeners:
            listener(self.name, key)

    # -- reading -----------------------------------------------------------------------------

    def labels_of(self, label_values: tuple[str, ...]) -> Labels:
        """The canonical sorted `Labels` of a series."""
        names = self.labelnames
        return tuple((names[i], label_values[i]) for i in self._sorted_index)

    def snapshot(self) -> list[SeriesSnapshot]:
        """Every series' exposition values, in creation order."""
        return [_snapshot(label_values, s) for label_values, s in self.series.items()]

    def snapshot_chunks(self, size: int) -> Iterator[list[SeriesSnapshot]]:
        """`snapshot()` in lists of at most `size` series, each read when its list is made: the
        caller may let the loop record between lists (a series recorded meanwhile shows its
        newer values, one created meanwhile is left out, one removed meanwhile is kept)."""
        items = list(self.series.items())
        for start in range(0, len(items), size):
            yield [_snapshot(label_values, s) for label_values, s in items[start : start + size]]

    def _visible(
        self,
        s: _Series,
        aggregate: str,
        start: float,
        end: float,
        window: float,
        staleness: float,
    ) -> float | None:
        """`_aggregate_series` as the series' history allows it (`windows.visible`)."""
        value = self._aggregate_series(s, aggregate, start, end, window)
        added = None
        if value == 0.0 and self.kind == "counter" and aggregate == "rate":
            added = self._aggregate_series(s, "increase", start, end, window)
        return windows.visible(
            self.kind,
            aggregate,
            value,
            created=s.created,
            updated=s.updated,
            start=start,
            end=end,
            staleness=staleness,
            added=added,
        )

    def _aggregate_series(
        self, s: _Series, aggregate: str, start: float, end: float, window: float
    ) -> float | None:
        # Positions, not a walk: `j` points are at or before `end`, `i` at or before `start`, so
        # the window's points are points[i:j]. The ring is in time order, so both come from a
        # binary search (the usual `end` = now is O(1): every point is at or before it), and
        # `last`, `absent`, `count` and a gauge's `increase`/`rate` read only the ends.
        points = s.points
        n = len(points)
        if not n:
            return windows.aggregate_values(self.kind, aggregate, (), window, total=s.total)
        j = n if points[-1][0] <= end else bisect.bisect_right(points, end, key=_time)
        kind = self.kind
        if aggregate == "last":
            if kind == "counter":
                return s.total - _sum_after(points, j) if j < n else s.total
            if kind == "gauge":
                return points[j - 1][1] if j else None
            return points[j - 1][1] if j and points[j - 1][0] > start else None
        if aggregate == "absent":
            return 1.0 if j and points[j - 1][0] > start else None
        i = 0 if points[0][0] > start else bisect.bisect_right(points, start, key=_time, hi=j)
        if aggregate == "count" or (kind == "histogram" and aggregate in ("increase", "rate")):
            if s.folded:
                return windows.aggregate_slots(kind, aggregate, _slice(points, i, j), window)
            counted = float(j - i)
            return counted / window if aggregate == "rate" else counted
        carried: float | None = points[i - 1][1] if i else None
        if kind == "gauge" and aggregate in ("increase", "rate"):
            if i == j:
                return None if carried is None else 0.0
            first = _first(points[i]) if carried is None else carried
            delta = float(points[j - 1][1]) - first
            return delta if aggregate == "increase" else delta / window
        if s.folded:
            return windows.aggregate_slots(
                kind, aggregate, _slice(points, i, j), window, carried=carried, bounds=self.buckets
            )
        return windows.aggregate_values(
            kind,
            aggregate,
            _values(points, i, j),
            window,
            carried=carried,
            total=s.total - _sum_after(points, j) if j < n else s.total,
            latest=points[j - 1][1] if j else None,
        )


class BoundSeries:
    """One series of one metric, resolved once: `record(value)` is the sample's whole path.

    Get one from `MetricStore.bind`. For a writer that records into the same series again and
    again (a check's health metrics each run), it saves resolving the metric by name, mapping
    labels to values and looking the series up per sample. A series, once made, stays in its
    metric for the store's life (points expire, series do not), so the resolved series never
    goes stale; one the series limit dropped is looked up again (and counted dropped again) by
    the next sample, as `MetricStore.record` would.
    """

    __slots__ = ("_handle", "_key", "_now", "_series", "_values")

    def __init__(
        self, handle: MetricHandle, label_values: tuple[str, ...], now: Callable[[], float]
    ) -> None:
        self._handle = handle
        self._values = label_values
        self._key = label_values
        self._series: _Series | None = None
        self._now = now

    def record(self, value: float, *, timestamp: float | None = None) -> None:
        """As `MetricStore.record` into this series.

        Raises:
            SampleError: as `MetricHandle.record`.
        """
        handle = self._handle
        t = self._now() if timestamp is None else timestamp
        handle._check(value, t)
        series = self._series
        if series is None:
            key, series, _ = handle._series_for(self._values, t)
            if series is None:
                return
            self._key, self._series = key, series
        handle._apply(series, self._key, value, t)


class MetricStore:
    """Declared metrics, their series and windows. See the module docstring for the bounds.

    Construct one per process (the composition root does) and pass it to whoever records or reads.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        retention: float = 3600.0,
        max_points: int = 10_000,
        max_series: int = 10_000,
        counter_resolution: float = 1.0,
        max_total_series: int = 100_000,
        max_total_points: int = 4_000_000,
        anonymizer: Anonymizer | None = None,
        staleness: windows.Staleness | None = None,
    ) -> None:
        """Create an empty store holding `metric_series_dropped_total{metric}`.

        `staleness` (default `windows.Staleness()`: 5 m for the application's metrics) says when
        a series' latest sample stops being in force for readers and `/metrics` (see
        `windows.visible`); it is a public attribute, read at every read.

        `anonymizer` (default: none) hashes the values of its labels in every sample recorded
        (see the module docstring); it applies to every metric, declared before or after.

        `max_points` caps each series' ring (points fold into time slots so that it covers the
        whole `retention`), `max_series` each metric's series (a metric may override it in
        `declare`); `max_total_series` and `max_total_points` bound the whole store, which
        bounds its memory (see the module docstring for the worst case). `counter_resolution`
        is a counter's smallest slot width.

        Raises:
            ValueError: a bound is not positive (`counter_resolution` may be 0: slots of
                `retention / (max_points - 1)`).
        """
        if (
            retention <= 0
            or max_points < 1
            or max_series < 1
            or counter_resolution < 0
            or max_total_series < 1
            or max_total_points < 1
        ):
            raise ValueError(
                "retention, max_points, max_series, max_total_series and max_total_points must"
                " be positive, counter_resolution >= 0"
            )
        self._clock = clock
        self.retention = retention
        self.max_points = max_points
        self.max_series = max_series
        self.counter_resolution = counter_resolution
        self.max_total_series = max_total_series
        self.max_total_points = max_total_points
        self.anonymizer = anonymizer if anonymizer else None
        # When a series' latest sample stops being in force (`windows.Staleness`): applied
        # where series are read (`aggregate*`) and exposed, never to what the rings keep.
        self.staleness = staleness if staleness is not None else windows.Staleness()
        # Which series (by labels) are exported (`/metrics`, OTLP); None: all. Sharded replicas
        # leave out the series of checks another replica runs now (their last values here are
        # stale). Reading (`aggregate*`) is not affected.
        self.export_filter: Callable[[Mapping[str, str]], bool] | None = None
        self._budget = Budget(max_total_series, max_total_points)
        self._metrics: dict[str, MetricHandle] = {}
        self._listeners: list[Listener] = []
        self.declare(
            DROPPED_METRIC,
            "counter",
            "Samples of new series dropped because the metric reached its series limit.",
            ("metric",),
        )
        self._dropped = self._metrics[DROPPED_METRIC]
        # One series per declared metric at most: outside the series budget, so a drop can
        # always be counted.
        self._dropped._exempt = True

    # -- declaring ---------------------------------------------------------------------------

    def declare(
        self,
        name: str,
        kind: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
        *,
        max_series: int | None = None,
        external: bool = False,
        resolution: float = 0.0,
    ) -> None:
        """Declare a metric (get its handle with `handle`); re-declaring identically is a no-op.

        `resolution` is the smallest slot width of the metric's series in seconds (a counter's is
        at least the store's `counter_resolution`): a series keeps at most one point per slot,
        samples within one fold into it (see the module docstring for what stays exact), so a
        metric sampled every second costs 1 / resolution of the points over its retention.

        `external=True` lets applications write it by name (`business_metric` events); the
        monitor's own metrics keep the default, so an API client cannot forge them. A metric
        declared both ways is not external (the monitor's declaration wins).

        Counter names must end in `_total` (the name exposed is the name declared). Histogram
        `buckets` are finite, strictly increasing upper bounds (+Inf is implicit); default
        `DEFAULT_BUCKETS`.

        Raises:
            MetricDeclarationError: invalid name, kind, label names, help or buckets, or `name`
                already declared differently.
        """
        labels = tuple(labelnames)
        if not _NAME.match(name):
            raise MetricDeclarationError(name, "not a valid Prometheus metric name")
        if kind not in ("counter", "gauge", "histogram"):
            raise MetricDeclarationError(name, f"unknown kind {kind!r}")
        if kind == "counter" and not name.endswith("_total"):
            raise MetricDeclarationError(name, "a counter's name must end in _total")
        if kind != "counter" and name.endswith("_total"):
            raise MetricDeclarationError(name, "only counters may end in _total")
        if not help.strip():
            raise MetricDeclarationError(name, "help text is required")
        if not 0.0 <= resolution < _INF:
            raise MetricDeclarationError(name, "the resolution must be finite and >= 0")
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__"):
                raise MetricDeclarationError(name, f"invalid label name {label!r}")
            if kind == "histogram" and label == "le":
                raise MetricDeclarationError(name, "a histogram cannot have a label named 'le'")
        if len(set(labels)) != len(labels):
            raise MetricDeclarationError(name, "duplicate label names")
        bounds: tuple[float, ...] = ()
        if kind == "histogram":
            bounds = tuple(float(b) for b in (DEFAULT_BUCKETS if buckets is None else buckets))
            if bounds and bounds[-1] == _INF:
                bounds = bounds[:-1]
            if not bounds:
                raise MetricDeclarationError(name, "a histogram needs at least one bucket")
            if any(not math.isfinite(b) for b in bounds) or any(
                a >= b for a, b in itertools.pairwise(bounds)
            ):
                raise MetricDeclarationError(name, "buckets must be finite and strictly increasing")
        elif buckets is not None:
            raise MetricDeclarationError(name, "only histograms take buckets")
        existing = self._metrics.get(name)
        if existing is not None:
            if (existing.kind, existing.labelnames, existing.buckets) != (kind, labels, bounds):
                raise MetricDeclarationError(
                    name,
                    f"already declared as {existing.kind} with labels {list(existing.labelnames)}",
                )
            existing.external = existing.external and external
            return
        handle = MetricHandle(
            name=name,
            kind=cast("MetricKind", kind),
            help=help.strip(),
            labelnames=labels,
            buckets=bounds,
            retention=self.retention,
            max_points=self.max_points,
            max_series=self.max_series if max_series is None else max_series,
            resolution=max(resolution, self.counter_resolution if kind == "counter" else 0.0),
            listeners=self._listeners,
            on_drop=self._count_drop,
            budget=self._budget,
            external=external,
            anonymizer=self.anonymizer,
        )
        self._metrics[name] = handle

    def _count_drop(self, name: str) -> None:
        self._dropped.record((name,), 1.0, self._clock.now())

    def handle(self, name: str) -> MetricHandle:
        """The handle of declared metric `name`.

        Raises:
            UnknownMetricError: `name` was not declared.
        """
        try:
            return self._metrics[name]
        except KeyError:
            raise UnknownMetricError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def metrics(self) -> Iterator[MetricHandle]:
        """Every declared metric, in declaration order."""
        return iter(list(self._metrics.values()))

    def statistics(self) -> StoreStatistics:
        """The store's series and points against its budgets, and what the budgets cost."""
        b = self._budget
        return StoreStatistics(
            series=b.series,
            max_total_series=b.max_series,
            points=b.points,
            max_total_points=b.max_points,
            series_dropped=b.dropped,
            points_evicted=b.evicted,
        )

    def now(self) -> float:
        """The store clock's wall time."""
        return self._clock.now()

    # -- recording ---------------------------------------------------------------------------

    def label_values(
        self, handle: MetricHandle, labels: Mapping[str, str] | None
    ) -> tuple[str, ...]:
        """`labels` as values in `handle`'s label order.

        Raises:
            LabelError: the label names differ from the declared ones.
        """
        names = handle.labelnames
        if not labels:
            if names:
                raise LabelError(handle.name, names, ())
            return ()
        if len(labels) != len(names):
            raise LabelError(handle.name, names, labels)
        try:
            return tuple([labels[n] for n in names])
        except KeyError:
            raise LabelError(handle.name, names, labels) from None

    def record(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record one sample: counter -> add `value`, gauge -> set, histogram -> observe.

        Raises:
            UnknownMetricError: `name` was not declared.
            LabelError: `labels` names differ from the declared label names.
            SampleError: a value the metric cannot take (see `MetricHandle.record`).
        """
        handle = self._metrics.get(name)
        if handle is None:
            raise UnknownMetricError(name)
        handle.record(
            self.label_values(handle, labels),
            value,
            self._clock.now() if timestamp is None else timestamp,
        )

    def bind(self, name: str, labels: Mapping[str, str] | None = None) -> BoundSeries:
        """The series `labels` of `name`, for recording into it again and again
        (`BoundSeries.record`); it is made by the first sample, as by `record`.

        Raises:
            UnknownMetricError: `name` was not declared.
            LabelError: `labels` names differ from the declared label names.
        """
        handle = self.handle(name)
        return BoundSeries(handle, self.label_values(handle, labels), self._clock.now)

    def set_counter_total(
        self,
        name: str,
        total: float,
        labels: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record a counter's absolute total; a lower total than before is a reset.

        Raises:
            UnknownMetricError, LabelError, SampleError, MetricDeclarationError (not a counter).
        """
        handle = self.handle(name)
        handle.set_total(
            self.label_values(handle, labels),
            total,
            self._clock.now() if timestamp is None else timestamp,
        )

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(metric_name, label_values)` synchronously after every recorded sample.

        `label_values` are the series' label values in the metric's declared label order (what
        `aggregate_series` takes back), so a listener can re-read just the series that changed.

        Keep it cheap and non-raising (e.g. a mailbox `send_nowait`): it runs on the hot path and
        an exception from it propagates to whoever recorded.
        """
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling `callback`; no error if it was not registered."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    # -- reading -----------------------------------------------------------------------------

    def series_labels(self, name: str, label_values: tuple[str, ...]) -> Labels:
        """The canonical `Labels` of the series of `name` with `label_values` (declared order,
        as listeners receive them).

        Raises:
            UnknownMetricError: `name` was not declared.
            LabelError: `label_values` are not one value per declared label.
        """
        handle = self.handle(name)
        if len(label_values) != len(handle.labelnames):
            raise LabelError(name, handle.labelnames, label_values)
        return handle.labels_of(label_values)

    def aggregate(
        self,
        name: str,
        matchers: Mapping[str, str],
        aggregate: str,
        window: float,
        *,
        now: float | None = None,
    ) -> dict[Labels, float]:
        """One value per series of `name` matching every matcher, over `(now - window, now]`.

        A matcher on a label the metric does not have matches only the empty value (Prometheus
        semantics). Series without a value (see `windows`, stale ones included) are left out.
        `absent` returns `{(): 1.0}` when no matching live series has a sample in the window,
        else `{}`.

        Raises:
            UnknownMetricError: `name` was not declared.
            AggregateError: unknown aggregate, negative window, or `rate` over a zero window.
        """
        handle = self.handle(name)
        start, end, checks = self._window_of(handle, matchers, aggregate, window, now)
        if checks is None:
            return {(): 1.0} if aggregate == "absent" else {}
        staleness = self.staleness.of(name, external=handle.external)
        out: dict[Labels, float] = {}
        for label_values, series in list(handle.series.items()):
            if any(label_values[i] != wanted for i, wanted in checks):
                continue
            value = handle._visible(series, aggregate, start, end, window, staleness)
            if value is not None:
                if aggregate == "absent":
                    return {}
                out[handle.labels_of(label_values)] = value
        if aggregate == "absent":
            return {(): 1.0}
        return out

    def aggregate_series(
        self,
        name: str,
        series: Iterable[tuple[str, ...]],
        matchers: Mapping[str, str],
        aggregate: str,
        window: float,
        *,
        now: float | None = None,
    ) -> dict[Labels, float | None]:
        """`aggregate` restricted to `series` (label values, as listeners receive them).

        Every given series that exists and matches every matcher is in the answer, with None
        where it has no value over the window (so a caller knows the series it asked about that
        no longer hold a value); series that do not exist or do not match are left out. Not for
        `absent`, which is about every series of the metric.

        Raises:
            UnknownMetricError: `name` was not declared.
            AggregateError: unknown aggregate, `absent`, negative window, or `rate` over a zero
                window.
        """
        handle = self.handle(name)
        if aggregate == "absent":
            raise AggregateError(aggregate, "absent is about every series; use aggregate")
        start, end, checks = self._window_of(handle, matchers, aggregate, window, now)
        out: dict[Labels, float | None] = {}
        if checks is None:
            return out
        staleness = self.staleness.of(name, external=handle.external)
        known = handle.series
        for label_values in series:
            found = known.get(label_values)
            if found is None or any(label_values[i] != wanted for i, wanted in checks):
                continue
            out[handle.labels_of(label_values)] = handle._visible(
                found, aggregate, start, end, window, staleness
            )
        return out

    def _window_of(
        self,
        handle: MetricHandle,
        matchers: Mapping[str, str],
        aggregate: str,
        window: float,
        now: float | None,
    ) -> tuple[float, float, list[tuple[int, str]] | None]:
        """Validate a read; its `(start, end]` and matcher checks (None: nothing can match)."""
        if aggregate not in windows.AGGREGATES:
            raise AggregateError(aggregate, f"unknown; use one of {sorted(windows.AGGREGATES)}")
        if not window >= 0:
            raise AggregateError(aggregate, "the window must be >= 0")
        if aggregate == "rate" and window == 0:
            raise AggregateError(aggregate, "rate needs a positive window")
        end = self._clock.now() if now is None else now
        checks: list[tuple[int, str]] = []
        for label, wanted in matchers.items():
            try:
                checks.append((handle.labelnames.index(label), wanted))
            except ValueError:
                if wanted != "":
                    return end - window, end, None
        return end - window, end, checks

    def collector(self) -> StoreCollector:
        """A prometheus_client collector exposing every declared metric (register it yourself)."""
        from actors.telemetry.exposition import StoreCollector  # late: exposition imports store

        return StoreCollector(self)


def _snapshot(label_values: tuple[str, ...], s: _Series) -> SeriesSnapshot:
    cumulative: tuple[int, ...] = ()
    if s.buckets is not None:
        acc = 0
        running = []
        for c in s.buckets:
            acc += c
            running.append(acc)
        cumulative = tuple(running)
    return SeriesSnapshot(
        label_values=label_values,
        value=s.total,
        buckets=cumulative,
        sum=s.sum,
        count=s.count,
        created=s.created,
        updated=s.updated,
        min=s.min,
        max=s.max,
    )
