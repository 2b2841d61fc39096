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
count      increments recorded         samples recorded                   observations
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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["AGGREGATES", "QUANTILES", "aggregate_values", "quantile"]

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
