"""The metric windows store: aggregations against brute-force recomputation, bounds, resets."""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from actors.clock import FixedClock
from actors.models import Labels
from actors.telemetry.exceptions import (
    AggregateError,
    LabelError,
    MetricDeclarationError,
    SampleError,
    UnknownMetricError,
)
from actors.telemetry.ring import Point
from actors.telemetry.store import DROPPED_METRIC, MetricStore
from actors.telemetry.windows import AGGREGATES, Staleness, quantile

T0 = 1_700_000_000.0
QS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def _store(**kw: float) -> MetricStore:
    return MetricStore(clock=FixedClock(T0), **kw)  # type: ignore[arg-type]


def _q(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def _brute(
    kind: str, aggregate: str, events: list[tuple[float, float]], start: float, end: float
) -> float | None:
    """Independent restatement of the documented semantics over the full sample list."""
    window = end - start
    inside = [v for t, v in events if start < t <= end]
    upto = [v for t, v in events if t <= end]
    before = [v for t, v in events if t <= start]
    if aggregate == "absent":
        return 1.0 if inside else None
    if not upto:
        return None  # no sample yet at `end`
    # increase/rate need a second sample (a counter's nonzero first increment is one, above its
    # implicit 0); read between the first and latest samples, the second counts as there.
    created, updated = events[0][0], events[-1][0]
    single = created >= min(updated, end)
    change = aggregate in ("increase", "rate") or (kind == "counter" and aggregate == "sum")
    if single and change and (kind == "gauge" or (kind == "counter" and sum(inside) == 0)):
        return None
    if kind == "counter":
        if aggregate == "last":
            return sum(upto)
        if aggregate in ("sum", "increase"):
            return sum(inside)
        if aggregate == "rate":
            return sum(inside) / window
        if aggregate == "count":
            return float(len(inside))
        pool = inside
    elif kind == "gauge":
        if aggregate == "last":
            return upto[-1] if upto else None
        if aggregate == "sum":
            return sum(inside) if inside else None
        if aggregate == "count":
            return float(len(inside))
        pool = ([before[-1]] if before else []) + inside
        if aggregate in ("increase", "rate"):
            if not pool:
                return None
            delta = pool[-1] - pool[0]
            return delta if aggregate == "increase" else delta / window
    else:
        if aggregate == "last":
            return inside[-1] if inside else None
        if aggregate == "sum":
            return sum(inside)
        if aggregate in ("count", "increase"):
            return float(len(inside))
        if aggregate == "rate":
            return len(inside) / window
        pool = inside
    if not pool:
        return None
    if aggregate == "avg":
        return sum(pool) / len(pool)
    if aggregate == "min":
        return min(pool)
    if aggregate == "max":
        return max(pool)
    return _q(pool, QS[aggregate])


# Distinct timestamps under a slot width of 0.05 s: no two samples share a slot (no folding).
events_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=600),
        st.floats(min_value=0, max_value=1e6, allow_nan=False),
    ),
    max_size=60,
    unique_by=lambda event: event[0],
)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["counter", "gauge", "histogram"]),
    raw=events_strategy,
    window=st.integers(min_value=1, max_value=700),
    now_offset=st.integers(min_value=0, max_value=700),
)
# A first increment whose rate underflows to 0.0 still added something.
@example(kind="counter", raw=[(0, 5e-324)], window=2, now_offset=0)
def test_aggregates_match_brute_force(
    kind: str, raw: list[tuple[int, float]], window: int, now_offset: int
) -> None:
    store = _store(retention=10_000.0, max_points=200_000, counter_resolution=0.0)
    name = "x_total" if kind == "counter" else "x"
    store.declare(name, kind, "x", ("k",))
    events = sorted((T0 + t, v) for t, v in raw)
    for t, v in events:
        store.record(name, v, {"k": "a"}, timestamp=t)
    end = T0 + now_offset
    start = end - window
    for aggregate in sorted(AGGREGATES):
        got = store.aggregate(name, {"k": "a"}, aggregate, float(window), now=end)
        want = _brute(kind, aggregate, events, start, end)
        if aggregate == "absent":
            assert got == ({} if want else {(): 1.0}), aggregate
            continue
        if not events:
            assert got == {}, aggregate
            continue
        if want is None:
            assert got == {}, aggregate
        else:
            assert list(got) == [(("k", "a"),)], aggregate
            assert math.isclose(got[(("k", "a"),)], want, rel_tol=1e-9, abs_tol=1e-6), (
                aggregate,
                got,
                want,
            )


def test_quantile_interpolates_between_ranks() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([5.0], 0.99) == 5.0
    assert quantile([0.0, 10.0], 0.9) == 9.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_counter_absolute_totals_handle_resets() -> None:
    store = _store(counter_resolution=0.0)
    store.declare("req_total", "counter", "requests", ("app",))
    labels = {"app": "a"}
    # baseline, +5, +5, reset to 3 (counts 3), +4
    for i, total in enumerate([100.0, 105.0, 110.0, 3.0, 7.0]):
        store.set_counter_total("req_total", total, labels, timestamp=T0 + i)
    got = store.aggregate("req_total", labels, "increase", 10.0, now=T0 + 5)
    assert got == {(("app", "a"),): 17.0}
    assert store.aggregate("req_total", labels, "last", 10.0, now=T0 + 5)[(("app", "a"),)] == 7.0
    assert store.aggregate("req_total", labels, "rate", 10.0, now=T0 + 5)[(("app", "a"),)] == 1.7


def test_counter_increments_fold_within_resolution_but_stay_exact() -> None:
    store = _store(counter_resolution=1.0)
    store.declare("e_total", "counter", "events", ())
    h = store.handle("e_total")
    for i in range(10_000):
        h.record((), 1.0, T0 + i * 0.001)  # 10 s of a fast counter
    series = h.series[()]
    assert len(series.points) <= 11
    assert store.aggregate("e_total", {}, "increase", 60.0, now=T0 + 20) == {(): 10_000.0}


def test_retention_and_max_points_bound_the_ring() -> None:
    store = _store(retention=60.0, max_points=100)
    store.declare("g", "gauge", "g", ())
    h = store.handle("g")
    for i in range(1000):
        h.record((), float(i), T0 + i)
    points = h.series[()].points
    assert len(points) <= 100
    # gauges keep the point in force at the horizon
    assert points[0][0] <= T0 + 999 - 60
    assert store.aggregate("g", {}, "min", 30.0, now=T0 + 999) == {(): 969.0}


def test_gauge_last_holds_value_beyond_window() -> None:
    store = _store()
    store.declare("acc", "gauge", "acc", ("model",))
    store.record("acc", 0.7, {"model": "m"}, timestamp=T0)
    got = store.aggregate("acc", {}, "last", 300.0, now=T0 + 3600)
    assert got == {(("model", "m"),): 0.7}
    assert store.aggregate("acc", {}, "absent", 300.0, now=T0 + 3600) == {(): 1.0}


def test_cardinality_limit_drops_and_counts() -> None:
    store = _store(max_series=3)
    store.declare("hits_total", "counter", "hits", ("user",))
    h = store.handle("hits_total")
    for i in range(10):
        store.record("hits_total", 1.0, {"user": f"u{i}"})
    assert len(h.series) == 3
    assert h.dropped == 7
    dropped = store.aggregate(DROPPED_METRIC, {}, "last", 60.0)
    assert dropped == {(("metric", "hits_total"),): 7.0}


def test_per_metric_series_limit_override() -> None:
    store = _store(max_series=3)
    store.declare("wide", "gauge", "wide", ("k",), max_series=5)
    h = store.handle("wide")
    for i in range(10):
        h.record((str(i),), 1.0, T0)
    assert len(h.series) == 5


def test_matchers_and_labels() -> None:
    store = _store()
    store.declare("api_requests_total", "counter", "r", ("endpoint", "method", "status"))
    store.record("api_requests_total", 1, {"endpoint": "/a", "method": "GET", "status": "200"})
    store.record("api_requests_total", 2, {"endpoint": "/a", "method": "POST", "status": "500"})
    got = store.aggregate("api_requests_total", {"endpoint": "/a"}, "increase", 60.0)
    assert got == {
        (("endpoint", "/a"), ("method", "GET"), ("status", "200")): 1.0,
        (("endpoint", "/a"), ("method", "POST"), ("status", "500")): 2.0,
    }
    assert store.aggregate("api_requests_total", {"method": "PUT"}, "increase", 60.0) == {}
    assert store.aggregate("api_requests_total", {"nolabel": "x"}, "absent", 60.0) == {(): 1.0}
    assert len(store.aggregate("api_requests_total", {"nolabel": ""}, "count", 60.0)) == 2


def test_errors_are_specific() -> None:
    store = _store()
    store.declare("c_total", "counter", "c", ("a",))
    with pytest.raises(UnknownMetricError):
        store.record("nope", 1.0)
    with pytest.raises(LabelError):
        store.record("c_total", 1.0, {"b": "x"})
    with pytest.raises(LabelError):
        store.record("c_total", 1.0)
    with pytest.raises(SampleError):
        store.record("c_total", -1.0, {"a": "x"})
    with pytest.raises(SampleError):
        store.record("c_total", math.nan, {"a": "x"})
    with pytest.raises(AggregateError):
        store.aggregate("c_total", {}, "median", 60.0)
    with pytest.raises(AggregateError):
        store.aggregate("c_total", {}, "rate", 0.0)
    with pytest.raises(MetricDeclarationError):
        store.declare("c_total", "gauge", "c")
    with pytest.raises(MetricDeclarationError):
        store.declare("bad", "counter", "counter without _total")
    with pytest.raises(MetricDeclarationError):
        store.declare("h", "histogram", "h", ("le",))
    with pytest.raises(MetricDeclarationError):
        store.declare("h", "histogram", "h", (), buckets=[1.0, 0.5])
    with pytest.raises(MetricDeclarationError):
        store.declare("g", "gauge", "")
    store.declare("c_total", "counter", "c", ("a",))  # identical: no-op


def test_listeners_called_per_record_with_the_series() -> None:
    store = _store()
    store.declare("g", "gauge", "g", ("a", "b"))
    seen: list[tuple[str, tuple[str, ...]]] = []

    def listener(name: str, series: tuple[str, ...]) -> None:
        seen.append((name, series))

    store.add_listener(listener)
    store.record("g", 1.0, {"b": "2", "a": "1"})
    store.record("g", 2.0, {"a": "x", "b": "y"})
    store.remove_listener(listener)
    store.record("g", 3.0, {"a": "1", "b": "2"})
    assert seen == [("g", ("1", "2")), ("g", ("x", "y"))]


def test_aggregate_series_reads_only_the_given_series() -> None:
    store = _store()
    store.declare("g", "gauge", "g", ("a", "b"))
    store.record("g", 1.0, {"a": "1", "b": "k"}, timestamp=T0)
    store.record("g", 2.0, {"a": "2", "b": "k"}, timestamp=T0 + 50)
    store.record("g", 3.0, {"a": "3", "b": "j"}, timestamp=T0 + 50)
    asked = [("1", "k"), ("3", "j"), ("9", "k")]
    # unknown series left out; a series without a value (none yet at `now`) is there as None
    got = store.aggregate_series("g", asked, {}, "last", 100.0, now=T0 + 30)
    assert got == {(("a", "1"), ("b", "k")): 1.0, (("a", "3"), ("b", "j")): None}
    # matchers apply as in `aggregate`; a label the metric lacks matches only ""
    got = store.aggregate_series("g", asked, {"b": "k"}, "last", 100.0, now=T0 + 60)
    assert got == {(("a", "1"), ("b", "k")): 1.0}
    assert store.aggregate_series("g", asked, {"zone": "eu"}, "last", 100.0, now=T0 + 60) == {}
    full = store.aggregate("g", {}, "max", 100.0, now=T0 + 60)
    every = store.aggregate_series(
        "g", list(store.handle("g").series), {}, "max", 100.0, now=T0 + 60
    )
    assert every == full
    with pytest.raises(AggregateError):
        store.aggregate_series("g", asked, {}, "absent", 10.0)


def test_out_of_order_timestamps_keep_ring_ordered() -> None:
    store = _store()
    store.declare("g", "gauge", "g")
    h = store.handle("g")
    h.record((), 1.0, T0 + 10)
    h.record((), 2.0, T0 + 5)
    # taken as the newest point's time, so it folds into that point's slot
    assert list(h.series[()].points) == [(T0 + 10, 2.0, 1.0, 1.0, 2.0, 3.0, 2)]
    assert store.aggregate("g", {}, "count", 60.0, now=T0 + 10) == {(): 2.0}


def test_histogram_snapshot_is_cumulative() -> None:
    store = _store()
    store.declare("d_seconds", "histogram", "d", (), buckets=[0.1, 1.0])
    h = store.handle("d_seconds")
    for v in (0.05, 0.1, 0.5, 2.0):
        h.record((), v, T0)
    (snap,) = h.snapshot()
    assert snap.buckets == (2, 3, 4)
    assert snap.count == 4
    assert snap.sum == pytest.approx(2.65)


class _CountingRing(deque[Point]):
    """A ring that counts the points read from it (item reads and iteration steps)."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        _CountingRing.reads += 1
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[Point]:
        for point in super().__iter__():
            _CountingRing.reads += 1
            yield point

    def __reversed__(self) -> Iterator[Point]:
        for point in super().__reversed__():
            _CountingRing.reads += 1
            yield point


@pytest.mark.parametrize("kind", ["counter", "gauge", "histogram"])
def test_cheap_aggregates_do_not_read_every_point_of_the_window(kind: str) -> None:
    store = _store(retention=10_000.0, max_points=20_000, counter_resolution=0.0)
    name = "busy_total" if kind == "counter" else "busy"
    store.declare(name, kind, "busy", ())
    h = store.handle(name)
    for i in range(10_000):
        h.record((), float(i % 7), T0 + i)
    series = h.series[()]
    series.points = _CountingRing(series.points, maxlen=series.points.maxlen)
    end = T0 + 9_999
    cheap = ["last", "absent", "count"]
    if kind != "counter":
        cheap += ["increase", "rate"]
    for aggregate in cheap:
        for now in (end, end - 2_500.5):  # at now, and a window ending in the past (bisect)
            if kind == "counter" and aggregate == "last" and now < end:
                continue  # a counter's total in the past subtracts the increments after it
            _CountingRing.reads = 0
            store.aggregate(name, {}, aggregate, 5_000.0, now=now)
            assert _CountingRing.reads <= 80, (aggregate, now, _CountingRing.reads)
    _CountingRing.reads = 0
    store.aggregate(name, {}, "sum", 5_000.0, now=end)
    assert _CountingRing.reads >= 5_000  # the window's points are read only where needed


def _ring_points(store: MetricStore) -> int:
    """Ring points as the budget counts them: a folded gauge slot 2, a histogram's 3."""
    weight = {2: 1, 7: 2, 8: 3}
    return sum(weight[len(p)] for h in store.metrics() for s in h.series.values() for p in s.points)


def test_store_wide_series_budget_drops_and_counts_across_metrics() -> None:
    store = _store(max_series=10, max_total_series=5)
    store.declare("a_total", "counter", "a", ("k",))
    store.declare("b", "gauge", "b", ("k",))
    for i in range(4):
        store.record("a_total", 1.0, {"k": str(i)})
    for i in range(4):
        store.record("b", 1.0, {"k": str(i)})
    assert len(store.handle("a_total").series) == 4
    assert len(store.handle("b").series) == 1  # the budget, not b's own limit of 10
    store.record("b", 2.0, {"k": "0"})  # an existing series still records
    assert store.aggregate("b", {}, "last", 60.0) == {(("k", "0"),): 2.0}
    # the drops are counted even though the budget is spent (that metric is exempt)
    assert store.aggregate(DROPPED_METRIC, {}, "last", 60.0) == {(("metric", "b"),): 3.0}
    stats = store.statistics()
    assert (stats.series, stats.max_total_series, stats.series_dropped) == (5, 5, 3)


def test_store_wide_point_budget_bounds_the_rings_and_keeps_last_exact() -> None:
    store = _store(retention=1_000.0, counter_resolution=0.0, max_total_points=100)
    store.declare("g", "gauge", "g", ("k",))
    store.declare("c_total", "counter", "c", ("k",))
    for step in range(50):
        for k in range(4):
            store.record("g", float(step), {"k": str(k)}, timestamp=T0 + step)
            store.record("c_total", 1.0, {"k": str(k)}, timestamp=T0 + step)
    stats = store.statistics()
    assert stats.points == _ring_points(store) <= 100 + stats.series
    assert stats.points_evicted == 8 * 50 - stats.points
    end = T0 + 49
    assert store.aggregate("g", {}, "last", 10.0, now=end) == {
        (("k", str(k)),): 49.0 for k in range(4)
    }
    assert store.aggregate("c_total", {}, "last", 10.0, now=end) == {
        (("k", str(k)),): 50.0 for k in range(4)
    }
    # the newest points survive: a short window is still exact
    assert store.aggregate("c_total", {}, "increase", 5.0, now=end) == {
        (("k", str(k)),): 5.0 for k in range(4)
    }
    # retention frees points back to the budget: other series can grow again
    for k in range(4):
        store.record("g", 1.0, {"k": str(k)}, timestamp=T0 + 5_000)
        store.record("c_total", 1.0, {"k": str(k)}, timestamp=T0 + 5_000)
    # counters keep the new point; gauges also the one in force at the horizon
    assert store.statistics().points == _ring_points(store) == 4 * 1 + 4 * 2


@settings(max_examples=50, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["counter", "gauge", "histogram"]),
            st.integers(0, 5),
            st.integers(0, 30),
        ),
        max_size=200,
    ),
    budget=st.integers(1, 40),
)
def test_point_budget_count_matches_the_rings(ops: list[tuple[str, int, int]], budget: int) -> None:
    store = _store(retention=10.0, max_points=6, max_total_points=budget, max_total_series=8)
    names = {"counter": "c_total", "gauge": "g", "histogram": "h"}
    for kind, name in names.items():
        store.declare(name, kind, name, ("k",))
    for kind, key, t in ops:
        store.record(names[kind], 1.0, {"k": str(key)}, timestamp=T0 + t)
        stats = store.statistics()
        assert stats.points == _ring_points(store)
        # every series keeps its newest point, folded or not
        assert stats.points <= budget + 3 * stats.series
        assert stats.series <= 8


# -- folded series: one point per time slot, the whole retention covered -----------------------

DAY = 86_400


def test_a_gauge_set_every_second_covers_a_day_under_the_point_cap() -> None:
    # The default rule "Network Growth Stalled": increase of a gauge over 24 h. Before slots, the
    # 10,000-point ring kept only the last ~2.8 h and the increase was computed over those.
    store = _store(retention=float(DAY))
    store.declare("network_connections_active", "gauge", "c", ("organization",))
    h = store.handle("network_connections_active")
    values = [float(1_000 + i // 100 + (i % 7) * 3) for i in range(DAY)]
    for i, v in enumerate(values):
        h.record(("o",), v, T0 + i)
    series = h.series[("o",)]
    assert len(series.points) <= store.max_points
    assert store.statistics().points == _ring_points(store)
    now = T0 + DAY - 1
    labels = (("organization", "o"),)

    def agg(aggregate: str, window: float = DAY) -> float:
        return store.aggregate("network_connections_active", {}, aggregate, window, now=now)[labels]

    assert agg("increase") == values[-1] - values[0]  # the whole day, exactly
    assert agg("rate") == (values[-1] - values[0]) / DAY
    assert agg("min") == min(values)
    assert agg("max") == max(values)
    assert agg("count") == DAY
    assert agg("sum") == math.fsum(values)
    assert math.isclose(agg("avg"), statistics.fmean(values), rel_tol=1e-12)
    assert agg("last", 1.0) == values[-1]
    assert store.aggregate("network_connections_active", {}, "absent", 1.0, now=now) == {}
    # shorter windows: exact at slot granularity (a slot is ~8.6 s here)
    slot = DAY / (store.max_points - 2)
    for window in (3600.0, 6 * 3600.0):
        got = agg("increase", window)
        lo = min(values[DAY - 1 - int(window) - int(slot) - 1 :])
        hi = max(values[DAY - 1 - int(window) - int(slot) - 1 :])
        assert values[-1] - hi <= got <= values[-1] - lo
    # p50 over folded slots: within the widest slot's spread of the exact value
    spread = max(p[4] - p[3] for p in series.points if len(p) > 2)
    assert abs(agg("p50") - statistics.median(values)) <= spread


def test_a_counter_incremented_every_second_covers_a_day_exactly() -> None:
    store = _store(retention=float(DAY))
    store.declare("benchmarks_performed_total", "counter", "b", ())
    h = store.handle("benchmarks_performed_total")
    for i in range(DAY):
        h.record((), float(i % 3), T0 + i)
    assert len(h.series[()].points) <= store.max_points
    now = T0 + DAY - 1
    total = float(sum(i % 3 for i in range(DAY)))
    assert store.aggregate("benchmarks_performed_total", {}, "increase", DAY, now=now) == {
        (): total
    }
    assert store.aggregate("benchmarks_performed_total", {}, "rate", DAY, now=now) == {
        (): total / DAY
    }
    assert store.aggregate("benchmarks_performed_total", {}, "last", 1.0, now=now) == {(): total}


def test_a_histogram_observed_every_second_covers_a_day() -> None:
    store = _store(retention=float(DAY))
    bounds = (0.1, 0.5, 1.0, 5.0)
    store.declare("d_seconds", "histogram", "d", (), buckets=bounds)
    h = store.handle("d_seconds")
    values = [0.05 + (i * 7919 % 1000) / 250.0 for i in range(DAY)]
    for i, v in enumerate(values):
        h.record((), v, T0 + i)
    assert len(h.series[()].points) <= store.max_points
    now = T0 + DAY - 1

    def agg(aggregate: str) -> float:
        return store.aggregate("d_seconds", {}, aggregate, DAY, now=now)[()]

    assert agg("count") == agg("increase") == DAY
    assert agg("sum") == math.fsum(values)
    assert (agg("min"), agg("max"), agg("last")) == (min(values), max(values), values[-1])
    ordered = sorted(values)
    for name, q in QS.items():
        exact = quantile(ordered, q)
        got = agg(name)
        # within the bucket the quantile falls in (the +Inf bucket ends at the max)
        edges = (min(values), *bounds, max(values))
        k = next(k for k in range(1, len(edges)) if exact <= edges[k])
        assert edges[k - 1] <= got <= edges[k], (name, got, exact)


def _slot_brute(
    kind: str,
    aggregate: str,
    events: list[tuple[float, float]],
    start: float,
    end: float,
    width: float,
) -> float | None:
    """The documented semantics at slot granularity, for windows on slot boundaries."""
    if kind != "counter" or aggregate not in ("count", "avg", "min", "max", *QS):
        return _brute(kind, aggregate, events, start, end)
    sums: dict[int, float] = {}
    for t, v in events:
        if start < t <= end:
            k = math.ceil(t / width)
            sums[k] = sums.get(k, 0.0) + v
    if not any(t <= end for t, _ in events):
        return None
    if not sums:
        return 0.0 if aggregate == "count" else None
    return _brute("histogram", aggregate, [(end, v) for v in sums.values()], start, end)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["counter", "gauge", "histogram"]),
    raw=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=300),
            st.floats(min_value=0, max_value=1e6, allow_nan=False),
        ),
        max_size=80,
    ),
    bounds=st.tuples(st.integers(0, 30), st.integers(1, 35)),
)
def test_folded_aggregates_match_brute_force_at_slot_granularity(
    kind: str, raw: list[tuple[int, float]], bounds: tuple[int, int]
) -> None:
    # slots of 10 s (retention 1000 s over 100 slots); windows on slot boundaries
    width = 10.0
    store = _store(
        retention=1_000.0, max_points=102 if kind == "gauge" else 101, counter_resolution=0.0
    )
    name = "x_total" if kind == "counter" else "x"
    buckets = (1.0, 100.0, 1e4, 1e5)
    store.declare(name, kind, "x", (), buckets=buckets if kind == "histogram" else None)
    events = sorted((T0 + t, v) for t, v in raw)
    for t, v in events:
        store.record(name, v, timestamp=t)
    series = store.handle(name).series.get(())
    assert series is None or len(series.points) <= 101
    first, last = min(bounds), max(bounds)
    start, end = T0 + width * first, T0 + width * (last if last > first else first + 1)
    window = end - start
    slot_samples: dict[int, list[float]] = {}
    for t, v in events:
        slot_samples.setdefault(math.ceil(t / width), []).append(v)
    for aggregate in sorted(AGGREGATES):
        got = store.aggregate(name, {}, aggregate, window, now=end).get(())
        want = _slot_brute(kind, aggregate, events, start, end, width)
        if aggregate == "absent":
            assert (got is None) == (want is not None) or not events, aggregate
            continue
        if not events or want is None:
            assert got is None, aggregate
            continue
        assert got is not None, aggregate
        if aggregate not in QS or kind == "counter":
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6), (aggregate, got, want)
            continue
        held = [
            values
            for k, values in slot_samples.items()
            if start < k * width <= end or (kind == "gauge" and k * width <= start)
        ]
        if all(len(values) <= 2 for values in held):
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6), (aggregate, got, want)
        elif kind == "gauge":
            spread = max(max(values) - min(values) for values in held)
            assert abs(got - want) <= spread * (1 + 1e-9) + 1e-6, (aggregate, got, want)
        else:
            pool = sorted(v for t, v in events if start < t <= end)
            rank = QS[aggregate] * (len(pool) - 1)
            x_lo, x_hi = pool[math.floor(rank)], pool[math.ceil(rank)]
            edges = (-math.inf, *buckets, math.inf)
            lo = max(next(edges[k - 1] for k in range(1, 6) if x_lo <= edges[k]), pool[0])
            hi = min(next(edges[k] for k in range(1, 6) if x_hi <= edges[k]), pool[-1])
            assert lo - 1e-6 <= got <= hi + 1e-6, (aggregate, got, want, lo, hi)


def test_folded_slots_count_their_weight_against_the_point_budget() -> None:
    store = _store(retention=100.0, max_points=101, max_total_points=30)
    store.declare("d_seconds", "histogram", "d", (), buckets=(1.0,))
    h = store.handle("d_seconds")
    for step in range(40):  # two observations per 1 s slot: every slot folds
        h.record((), 0.5, T0 + step + 0.25)
        h.record((), 2.0, T0 + step + 0.5)
    stats = store.statistics()
    assert stats.points == _ring_points(store) <= 30
    assert len(h.series[()].points) == 10  # 10 folded slots of weight 3
    assert stats.points_evicted == 30
    now = T0 + 39.5
    assert store.aggregate("d_seconds", {}, "count", 5.0, now=now) == {(): 10.0}
    assert store.aggregate("d_seconds", {}, "last", 5.0, now=now) == {(): 2.0}
    assert store.aggregate("d_seconds", {}, "max", 5.0, now=now) == {(): 2.0}


def test_a_metric_resolution_folds_its_samples_into_slots_of_that_width() -> None:
    store = _store()
    store.declare("fast", "gauge", "fast", ("k",), resolution=10.0)
    store.declare("plain", "gauge", "plain", ("k",))
    for i in range(60):  # one sample a second for a minute
        value = float(i % 7)
        store.record("fast", value, {"k": "a"}, timestamp=T0 + i)
        store.record("plain", value, {"k": "a"}, timestamp=T0 + i)
    fast = store.handle("fast").series[("a",)].points
    plain = store.handle("plain").series[("a",)].points
    assert len(plain) == 60
    assert len(fast) <= 7  # 60 s in 10 s slots (plus the slot the first sample opened)
    now = T0 + 59
    for aggregate in ("last", "min", "max", "avg", "count", "sum"):
        assert store.aggregate("fast", {}, aggregate, 120.0, now=now) == store.aggregate(
            "plain", {}, aggregate, 120.0, now=now
        ), aggregate
    with pytest.raises(MetricDeclarationError):
        store.declare("bad", "gauge", "bad", resolution=-1.0)


def test_increase_and_rate_need_a_second_sample() -> None:
    # Prometheus has no increase()/rate()/delta() of a single sample; answering 0 made a
    # `< 1` rule fire at start-up.
    store = _store()
    store.declare("g", "gauge", "g")
    store.declare("c_total", "counter", "c")
    store.declare("e_total", "counter", "e")
    store.record("g", 5.0, timestamp=T0)
    store.set_counter_total("c_total", 100.0, timestamp=T0)  # a baseline, not a change
    for name in ("g", "c_total"):
        for aggregate in ("increase", "rate"):
            assert store.aggregate(name, {}, aggregate, 60.0, now=T0 + 1) == {}, (name, aggregate)
            assert store.aggregate_series(name, [()], {}, aggregate, 60.0, now=T0 + 1) == {(): None}
    store.record("g", 7.0, timestamp=T0 + 10)
    store.set_counter_total("c_total", 103.0, timestamp=T0 + 10)
    assert store.aggregate("g", {}, "increase", 60.0, now=T0 + 11) == {(): 2.0}
    assert store.aggregate("c_total", {}, "increase", 60.0, now=T0 + 11) == {(): 3.0}
    # Increments start from an implicit 0: the first one is already a change.
    store.record("e_total", 2.0, timestamp=T0)
    assert store.aggregate("e_total", {}, "increase", 60.0, now=T0 + 1) == {(): 2.0}
    # Before its first sample a series has no value at all.
    assert store.aggregate("g", {}, "last", 60.0, now=T0 - 1) == {}


def test_a_stale_series_is_absent_at_an_instant_and_has_only_its_window_samples() -> None:
    # Prometheus' lookback: a series not updated for `staleness` (5 m) is no longer there.
    store = _store()
    store.declare("g", "gauge", "g", ("k",), external=True)
    store.declare("c_total", "counter", "c", ("k",), external=True)
    store.declare("own", "gauge", "the monitor's own")  # not external: never stale
    for t in (0.0, 10.0):
        store.record("g", 3.0, {"k": "a"}, timestamp=T0 + t)
        store.record("c_total", 1.0, {"k": "a"}, timestamp=T0 + t)
    store.record("own", 1.0, timestamp=T0)
    a = (("k", "a"),)

    def read(name: str, aggregate: str, window: float, at: float) -> dict[Labels, float]:
        return store.aggregate(name, {}, aggregate, window, now=T0 + at)

    assert read("g", "last", 60, 309) == {a: 3.0}
    assert read("g", "last", 60, 310) == {}  # 300 s after the latest sample
    assert read("c_total", "last", 60, 310) == {}
    assert read("own", "last", 60, 10_000) == {(): 1.0}
    # Over a window: what its samples in it say; none there, no value (no 0, nothing carried).
    assert read("c_total", "count", 60, 309) == {a: 0.0}  # live and idle: a fact
    assert read("c_total", "count", 60, 310) == {}
    assert read("g", "avg", 60, 310) == {}
    assert read("c_total", "increase", 600, 400) == {a: 2.0}  # stale, but its samples are in
    assert read("g", "max", 600, 400) == {a: 3.0}
    assert read("c_total", "increase", 600, 611) == {}
    # `absent` sees a stale series as absent, even when a longer window still holds samples.
    assert read("g", "absent", 600, 309) == {}
    assert read("g", "absent", 600, 310) == {(): 1.0}
    assert store.aggregate_series("g", [("a",)], {}, "last", 60, now=T0 + 310) == {a: None}
    # A new sample brings it back.
    store.record("g", 4.0, {"k": "a"}, timestamp=T0 + 400)
    assert read("g", "last", 60, 400) == {a: 4.0}


def test_staleness_per_metric_and_never() -> None:
    staleness = Staleness(default=60.0, metrics={"slow": 3600.0, "forever": 0.0})
    store = MetricStore(clock=FixedClock(T0), staleness=staleness)
    for name in ("fast", "slow", "forever"):
        store.declare(name, "gauge", name, external=True)
        store.record(name, 1.0, timestamp=T0)
    at = T0 + 600
    assert store.aggregate("fast", {}, "last", 60, now=at) == {}
    assert store.aggregate("slow", {}, "last", 60, now=at) == {(): 1.0}
    assert store.aggregate("forever", {}, "last", 60, now=T0 + 10**6) == {(): 1.0}


def test_metrics_leaves_out_stale_series() -> None:
    clock = FixedClock(T0)
    store = MetricStore(clock=clock)
    store.declare("g", "gauge", "g", ("k",), external=True)
    store.declare("own", "gauge", "the monitor's own")
    store.record("g", 1.0, {"k": "old"})
    store.record("own", 1.0)
    clock.advance(200)
    store.record("g", 2.0, {"k": "new"})
    clock.advance(150)  # "old" is 350 s old, "new" 150 s
    registry = CollectorRegistry()
    registry.register(store.collector())
    text = generate_latest(registry).decode()
    assert 'g{k="new"} 2.0' in text
    assert 'k="old"' not in text
    assert "own 1.0" in text
    assert "# TYPE g gauge" in text  # the family stays declared
