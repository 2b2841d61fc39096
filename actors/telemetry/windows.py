"""Pure aggregation of one series' samples over a time window.

A series keeps a ring of `(t, v)` points in time order (see `store`). What `v` means depends on
the metric kind, and so does each aggregate:

=========  ==========================  =================================  =====================
aggregate  counter (v = increment)     gauge (v = value set)              histogram (v = observ.)
=========  ==========================  =================================  =====================
last       running total               latest value (even if older than   latest observation in
                                       the window: a gauge holds its      the window
                                       value, as a scraped one would)
sum        increase                    sum of samples in the window       sum of observations
count      points (slots) with         samples recorded                   observations
           increments
increase   sum of increments (exact;   last held - first held value       observations
           resets resolved on entry)
rate       increase / window           (last - first held) / window       observations / window
avg/min/   over the increments         over the values held during the    over the observations
max/pNN                                window: samples in it plus the
                                       value carried in at its start
absent     see `MetricStore.aggregate`
=========  ==========================  =================================  =====================

The window is the half-open interval `(now - window, now]`. Percentiles interpolate linearly
between closest ranks (rank `q * (n - 1)` over the sorted values, like numpy's default). A series
with nothing to aggregate yields `None` (no value); counters and histograms yield 0 for
`sum`/`count`/`increase`/`rate` when nothing happened in the window, since a known series that
did not move is a fact, not a gap.

Folded slots (see `store`): a series holds at most one point per time slot. A counter's point is
the sum of the slot's increments (so `increase`/`rate`/`sum` stay exact at slot granularity and
`count`/`avg`/`min`/`max`/`pNN` are over per-slot sums). A gauge's or histogram's point is either
one raw `(t, v)` or, once a second sample falls into the slot, a folded
`(t, last, first, min, max, sum, count[, buckets])` (`aggregate_slots`): `last`, `count`, `sum`,
`avg`, `min`, `max` and a gauge's `increase`/`rate` stay exact over the slots in the window; so do
percentiles while every slot in the window holds at most two samples (they are its min and max).
Beyond that a percentile is approximated:

- histogram: from the metric's buckets summed over the window (as Prometheus'
  `histogram_quantile`), interpolated inside the bucket and clamped to the window's min and max:
  off by at most the width of the bucket the quantile falls in (+Inf bucket: up to the max);
- gauge: each slot's samples are taken as its min, its max and the mean of the others: off by at
  most the widest (max - min) of a folded slot in the window.

The window boundary is at slot granularity: a slot counts as in the window when its newest sample
is (its time is its newest sample's time, so `last` and `absent` stay exact).

What a series' history says before any window is read (`visible`, applied by the store to every
aggregate and to `/metrics`):

- staleness (`Staleness`; Prometheus' lookback, 5 m by default): an application series whose
  latest sample is `staleness` old or older is stale. A stale series has no value at an instant
  (`last` of a counter or gauge, `/metrics`) and counts as absent for `absent`; over a window
  it has only what its samples in the window say, so with none there it has no value at all
  (no 0 for a counter that did not move, no value carried into a gauge's window). A
  `count < 1` rule on a series that stopped reporting resolves, as in Prometheus.
- a series has no value at a time before its first sample; `increase` and `rate` of a
  counter or gauge (and a counter's `sum`, its increase) have no value until the series has a
  second sample (as Prometheus, which needs two samples): a gauge set once, or a counter whose
  first total (`set_counter_total`) is only its baseline, says nothing yet about change. A
  counter fed increments (`record`) starts from an implicit 0, so its first increment is
  already a change and counts.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AGGREGATES",
    "DEFAULT_STALENESS",
    "QUANTILES",
    "Staleness",
    "aggregate_slots",
    "aggregate_values",
    "live",
    "quantile",
    "visible",
]

QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
AGGREGATES: frozenset[str] = frozenset(
    {"last", "avg", "min", "max", "sum", "count", "rate", "increase", "absent", *QUANTILES}
)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Return the `q`-quantile (0..1) of non-empty, ascending `sorted_values`.

    Raises:
        ValueError: `sorted_values` is empty or `q` is outside 0..1.
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside 0..1")
    rank = q * (n - 1)
    low = math.floor(rank)
    high = min(low + 1, n - 1)
    frac = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


def aggregate_values(
    kind: str,
    aggregate: str,
    values: Sequence[float],
    window: float,
    *,
    carried: float | None = None,
    total: float = 0.0,
    latest: float | None = None,
) -> float | None:
    """Aggregate the in-window `values` (time order) of one series of `kind`.

    `carried` is, for gauges, the value held when the window opened (latest sample before it);
    `total` is a counter's running total at the window's end; `latest` is the latest sample at or
    before the window's end (gauge `last`). Returns None when the series has no value.

    Raises:
        ValueError: `aggregate` is unknown, or `rate` with a window that is not positive.
    """
    if aggregate == "rate" and window <= 0:
        raise ValueError("rate needs a positive window")
    if kind == "counter":
        return _counter(aggregate, values, window, total)
    if kind == "gauge":
        return _gauge(aggregate, values, window, carried, latest)
    return _histogram(aggregate, values, window)


DEFAULT_STALENESS = 300.0
"""Seconds after its latest sample an application series goes stale (Prometheus' lookback)."""


@dataclass(frozen=True, slots=True)
class Staleness:
    """How long the latest sample of each metric's series stays in force, in seconds.

    `default` applies to the application's metrics (`external`: the seed catalogue and
    `[[metrics]]`), `metrics` overrides it by metric name. The monitor's own metrics
    (`health_check_up`, `alerts_firing`, ...) are state it keeps and records when it changes:
    they never go stale unless listed. 0 means never stale.
    """

    default: float = DEFAULT_STALENESS
    metrics: Mapping[str, float] = field(default_factory=dict)

    def of(self, metric: str, *, external: bool) -> float:
        """The staleness of `metric`'s series (0: never stale)."""
        found = self.metrics.get(metric)
        if found is not None:
            return found
        return self.default if external else 0.0


def live(updated: float, now: float, staleness: float) -> bool:
    """Whether a series whose latest sample is at `updated` is still in force at `now`."""
    return staleness <= 0 or updated > now - staleness


def visible(
    kind: str,
    aggregate: str,
    value: float | None,
    *,
    created: float,
    updated: float,
    start: float,
    end: float,
    staleness: float = 0.0,
    added: float | None = None,
) -> float | None:
    """`value` (a series' aggregate over `(start, end]`) as its history allows it.

    `created` and `updated` are the times of the series' first and latest samples. None when the
    series is stale at `end` (see the module docstring: at an instant, or with no sample in the
    window), when it had no sample yet at `end`, or for a counter's or gauge's
    `increase`/`rate` (and a counter's `sum`, its increase) before its second sample (a
    counter's first increment, above an implicit 0, is one: a first sample that adds nothing,
    such as a baseline total, is withheld, and so is a lone sample once it left the window).
    A series read at a time between its first and latest samples counts as having its second
    (the ring is not read). `added` is a counter's increase over the window when `value` is not
    it (a rate: a tiny increase over a long window can underflow to a rate of 0.0, which must
    not read as a first sample that added nothing); None means `value` is the increase.
    """
    if value is None or created > end:
        return None
    if not live(updated, end, staleness) and (
        updated <= start or aggregate == "absent" or (aggregate == "last" and kind != "histogram")
    ):
        return None
    single = created >= min(updated, end)
    change = aggregate in ("increase", "rate") or (kind == "counter" and aggregate == "sum")
    nothing_added = (value if added is None else added) == 0
    if single and change and (kind == "gauge" or (kind == "counter" and nothing_added)):
        return None
    return value


_SCALE = 2.0**-64


def _fsum(values: Sequence[float]) -> float:
    """Exact sum of finite values; +-inf instead of OverflowError when it exceeds a float.

    Gauges and histograms take any finite value, so 1e308 + 1e308 can reach a window: the rule
    evaluator must get a value it can compare, never an exception.
    """
    try:
        return math.fsum(values)
    except OverflowError:
        # Scaling by a power of two is exact; 2**-64 leaves room for any realistic count of
        # points, and the float product rounds to +-inf instead of raising.
        return math.fsum(v * _SCALE for v in values) / _SCALE


def _spread(aggregate: str, values: Sequence[float]) -> float | None:
    if not values:
        return None
    if aggregate == "avg":
        return _fsum(values) / len(values)
    if aggregate == "min":
        return min(values)
    if aggregate == "max":
        return max(values)
    q = QUANTILES.get(aggregate)
    if q is None:
        raise ValueError(f"unknown aggregate {aggregate!r}")
    return quantile(sorted(values), q)


def _counter(aggregate: str, values: Sequence[float], window: float, total: float) -> float | None:
    if aggregate == "last":
        return total
    if aggregate in ("sum", "increase"):
        return _fsum(values)
    if aggregate == "rate":
        return _fsum(values) / window
    if aggregate == "count":
        return float(len(values))
    return _spread(aggregate, values)


def _gauge(
    aggregate: str,
    values: Sequence[float],
    window: float,
    carried: float | None,
    latest: float | None,
) -> float | None:
    if aggregate == "last":
        return latest
    if aggregate == "sum":
        return _fsum(values) if values else None
    if aggregate == "count":
        return float(len(values))
    held = values if carried is None else [carried, *values]
    if aggregate in ("increase", "rate"):
        if len(held) < 2:
            return 0.0 if held else None
        delta = held[-1] - held[0]
        return delta if aggregate == "increase" else delta / window
    return _spread(aggregate, held)


def _histogram(aggregate: str, values: Sequence[float], window: float) -> float | None:
    if aggregate == "last":
        return values[-1] if values else None
    if aggregate == "sum":
        return _fsum(values)
    if aggregate in ("count", "increase"):
        return float(len(values))
    if aggregate == "rate":
        return len(values) / window
    return _spread(aggregate, values)


# Folded point layout: (t, last, first, min, max, sum, count[, buckets]); a raw point is (t, v).
_FOLDED = 3


def aggregate_slots(
    kind: str,
    aggregate: str,
    slots: Sequence[tuple[Any, ...]],
    window: float,
    *,
    carried: float | None = None,
    bounds: Sequence[float] = (),
) -> float | None:
    """Aggregate a gauge's or histogram's in-window points, raw or folded (time order).

    `carried` is a gauge's value held when the window opened; `bounds` a histogram's bucket upper
    bounds (+Inf implicit), used for percentiles once a slot holds three samples or more (see the
    module docstring for the error). Same results as `aggregate_values` on raw points.

    Raises:
        ValueError: `aggregate` is unknown, a counter, or `rate` with a window not positive.
    """
    if aggregate == "rate" and window <= 0:
        raise ValueError("rate needs a positive window")
    if kind not in ("gauge", "histogram"):
        raise ValueError(f"slots of a {kind} hold raw points: use aggregate_values")
    gauge = kind == "gauge"
    if aggregate == "last":
        if slots:
            return float(slots[-1][1])
        return carried if gauge else None
    n = 0
    for p in slots:
        n += p[6] if len(p) > _FOLDED else 1
    if aggregate == "count" or (not gauge and aggregate in ("increase", "rate")):
        return float(n) / window if aggregate == "rate" else float(n)
    if aggregate == "sum":
        if gauge and not slots:
            return None
        return _fsum([p[5] if len(p) > _FOLDED else p[1] for p in slots])
    if gauge and aggregate in ("increase", "rate"):
        if not slots:
            return None if carried is None else 0.0
        first = carried if carried is not None else _first(slots[0])
        delta = float(slots[-1][1]) - first
        return delta if aggregate == "increase" else delta / window
    if gauge and carried is not None:
        slots = [(0.0, carried), *slots]
        n += 1
    if not slots:
        return None
    if aggregate == "avg":
        return _fsum([p[5] if len(p) > _FOLDED else p[1] for p in slots]) / n
    if aggregate == "min":
        return float(min(p[3] if len(p) > _FOLDED else p[1] for p in slots))
    if aggregate == "max":
        return float(max(p[4] if len(p) > _FOLDED else p[1] for p in slots))
    q = QUANTILES.get(aggregate)
    if q is None:
        raise ValueError(f"unknown aggregate {aggregate!r}")
    if all(len(p) <= _FOLDED or p[6] <= 2 for p in slots):
        values: list[float] = []
        for p in slots:
            if len(p) > _FOLDED:
                values.append(p[3])
                values.append(p[4])
            else:
                values.append(p[1])
        return quantile(sorted(values), q)
    if gauge:
        return _weighted_quantile(slots, n, q)
    return _bucket_quantile(slots, n, q, bounds)


def _first(p: tuple[Any, ...]) -> float:
    return float(p[2] if len(p) > _FOLDED else p[1])


def _weighted_quantile(slots: Sequence[tuple[Any, ...]], n: int, q: float) -> float:
    """A gauge's quantile with each folded slot taken as min, max and the mean of the rest."""
    pairs: list[tuple[float, int]] = []
    for p in slots:
        if len(p) <= _FOLDED:
            pairs.append((p[1], 1))
            continue
        low, high, count = p[3], p[4], p[6]
        pairs.append((low, 1))
        pairs.append((high, 1))
        if count > 2:
            rest = (p[5] - low - high) / (count - 2)
            pairs.append((min(max(rest, low), high), count - 2))
    pairs.sort()
    rank = q * (n - 1)
    low_rank = math.floor(rank)
    frac = rank - low_rank
    below = _at_rank(pairs, low_rank)
    above = _at_rank(pairs, min(low_rank + 1, n - 1))
    return below + (above - below) * frac


def _at_rank(pairs: Sequence[tuple[float, int]], rank: int) -> float:
    seen = 0
    for value, weight in pairs:
        seen += weight
        if rank < seen:
            return value
    return pairs[-1][0]


def _bucket_quantile(
    slots: Sequence[tuple[Any, ...]], n: int, q: float, bounds: Sequence[float]
) -> float:
    """A histogram's quantile from bucket counts (raw points counted into their bucket)."""
    counts = [0] * (len(bounds) + 1)
    low = math.inf
    high = -math.inf
    for p in slots:
        if len(p) > _FOLDED:
            for k, c in enumerate(p[7]):
                counts[k] += c
            low = min(low, p[3])
            high = max(high, p[4])
        else:
            v = p[1]
            counts[bisect.bisect_left(bounds, v)] += 1
            low = min(low, v)
            high = max(high, v)
    rank = q * (n - 1)
    seen = 0
    for k, c in enumerate(counts):
        if c and rank < seen + c:
            lower = max(bounds[k - 1] if k else low, low)
            upper = min(bounds[k] if k < len(bounds) else high, high)
            estimate = lower + (upper - lower) * (rank - seen + 0.5) / c
            return min(max(estimate, low), high)
        seen += c
    return high
