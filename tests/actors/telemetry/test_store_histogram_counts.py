"""`MetricHandle.record_histogram_counts`: batches of observations given by bucket (OTLP)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.clock import FixedClock
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.exceptions import MetricDeclarationError, SampleError
from actors.telemetry.store import MetricStore

T0 = 1_700_000_000.0
BOUNDS = (0.1, 1.0, 10.0)


def _store(**kw: object) -> MetricStore:
    store = MetricStore(clock=FixedClock(T0), **kw)  # type: ignore[arg-type]
    store.declare("d_seconds", "histogram", "d", ("k",), BOUNDS)
    return store


def _agg(store: MetricStore, aggregate: str, window: float = 60.0) -> float:
    (value,) = store.aggregate("d_seconds", {}, aggregate, window, now=T0 + 100).values()
    return value


def test_delta_batches_add_observations_and_expose_cumulative_buckets() -> None:
    store = _store()
    h = store.handle("d_seconds")
    h.record_histogram_counts(("a",), [1, 2, 0, 1], 20.5, T0 + 90)
    h.record_histogram_counts(("a",), [0, 1, 0, 0], 0.5, T0 + 95)
    (snap,) = h.snapshot()
    assert snap.buckets == (1, 4, 4, 5)
    assert snap.count == 5
    assert snap.sum == pytest.approx(21.0)
    assert _agg(store, "count") == 5
    assert _agg(store, "increase") == 5
    assert _agg(store, "sum") == pytest.approx(21.0)
    assert _agg(store, "avg") == pytest.approx(21.0 / 5)
    # the median falls in the (0.1, 1] bucket, as Prometheus' histogram_quantile would say
    assert 0.1 <= _agg(store, "p50") <= 1.0


def test_a_single_observation_is_exact() -> None:
    store = _store()
    h = store.handle("d_seconds")
    h.record_histogram_counts(("a",), [0, 0, 1, 0], 4.2, T0 + 90)
    assert _agg(store, "last") == pytest.approx(4.2)
    assert _agg(store, "p99") == pytest.approx(4.2)


def test_cumulative_batches_start_at_a_baseline_and_resolve_resets() -> None:
    store = _store()
    h = store.handle("d_seconds")
    h.record_histogram_counts(("a",), [5, 5, 0, 0], 3.0, T0 + 10, cumulative=True)
    # the baseline is exposed but nothing was observed in any window yet
    assert h.snapshot()[0].count == 10
    assert store.aggregate("d_seconds", {}, "count", 60, now=T0 + 10) == {(("k", "a"),): 0.0}
    h.record_histogram_counts(("a",), [6, 7, 0, 1], 20.0, T0 + 70, cumulative=True)
    assert _agg(store, "increase") == 4  # 1 + 2 + 1 new observations
    assert _agg(store, "sum") == pytest.approx(17.0)
    # the client restarted: its counts went down, the batch counts entirely
    h.record_histogram_counts(("a",), [1, 0, 0, 0], 0.05, T0 + 80, cumulative=True)
    assert _agg(store, "increase") == 5
    (snap,) = h.snapshot()
    assert snap.buckets == (1, 1, 1, 1)  # what the client says now
    assert snap.sum == pytest.approx(0.05)


def test_listeners_hear_every_batch_even_an_empty_one() -> None:
    store = _store()
    heard: list[tuple[str, tuple[str, ...]]] = []
    store.add_listener(lambda name, values: heard.append((name, values)))
    h = store.handle("d_seconds")
    h.record_histogram_counts(("a",), [0, 0, 0, 0], 0.0, T0, cumulative=True)
    h.record_histogram_counts(("a",), [0, 0, 0, 0], 0.0, T0 + 1, cumulative=True)
    assert heard == [("d_seconds", ("a",))] * 2


def test_labels_are_anonymised_at_the_store() -> None:
    store = _store(anonymizer=Anonymizer(["k"], "key"))
    store.handle("d_seconds").record_histogram_counts(("acme",), [1, 0, 0, 0], 0.01, T0)
    (series,) = store.handle("d_seconds").series
    assert series == (Anonymizer(["k"], "key").hash("acme"),)


def test_bad_batches_are_refused_whole() -> None:
    store = _store()
    h = store.handle("d_seconds")
    with pytest.raises(SampleError, match="expected 4 bucket counts"):
        h.record_histogram_counts(("a",), [1, 2], 1.0, T0)
    with pytest.raises(SampleError, match="none negative"):
        h.record_histogram_counts(("a",), [1, -1, 0, 0], 1.0, T0)
    with pytest.raises(SampleError, match="sum must be finite"):
        h.record_histogram_counts(("a",), [1, 0, 0, 0], float("nan"), T0)
    assert not h.series
    store.declare("c_total", "counter", "c")
    with pytest.raises(MetricDeclarationError, match="need a histogram"):
        store.handle("c_total").record_histogram_counts((), [1], 1.0, T0)


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.tuples(st.integers(0, 40), st.lists(st.integers(0, 3), min_size=4, max_size=4)),
        max_size=40,
    ),
    budget=st.integers(1, 30),
)
def test_the_point_budget_counts_batches_as_the_rings_hold_them(
    batches: list[tuple[int, list[int]]], budget: int
) -> None:
    store = _store(retention=20.0, max_points=5, max_total_points=budget)
    h = store.handle("d_seconds")
    weight = {2: 1, 7: 2, 8: 3}
    for t, counts in sorted(batches):
        h.record_histogram_counts(("a",), counts, float(sum(counts)), T0 + t)
        held = sum(weight[len(p)] for s in h.series.values() for p in s.points)
        assert store.statistics().points == held
    total = sum(sum(counts) for _, counts in batches)
    if batches:
        assert h.snapshot()[0].count == total
