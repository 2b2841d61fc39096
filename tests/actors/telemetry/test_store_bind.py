"""`MetricStore.bind`: a series resolved once records exactly as `record` does."""

from __future__ import annotations

import pytest

from actors.clock import FixedClock
from actors.telemetry.exceptions import LabelError, SampleError, UnknownMetricError
from actors.telemetry.store import MetricStore

T0 = 1_700_000_000.0


def _pair() -> tuple[MetricStore, MetricStore]:
    stores = MetricStore(clock=FixedClock(T0)), MetricStore(clock=FixedClock(T0))
    for store in stores:
        store.declare("up", "gauge", "up", ("check",), resolution=10.0)
        store.declare("runs_total", "counter", "runs", ("check", "result"))
        store.declare("latency", "histogram", "latency", ("check",), (0.1, 1.0))
    return stores


@pytest.mark.parametrize(
    ("name", "labels", "values"),
    [
        ("up", {"check": "a"}, [1.0, 0.0, 1.0, 1.0]),
        ("runs_total", {"check": "a", "result": "pass"}, [1.0, 1.0, 1.0]),
        ("latency", {"check": "a"}, [0.05, 0.5, 2.0, 0.07]),
    ],
)
def test_bound_records_as_record(name: str, labels: dict[str, str], values: list[float]) -> None:
    by_name, bound_store = _pair()
    bound = bound_store.bind(name, labels)
    heard: list[tuple[str, tuple[str, ...]]] = []
    bound_store.add_listener(lambda metric, key: heard.append((metric, key)))
    for i, value in enumerate(values):
        by_name.record(name, value, labels, timestamp=T0 + i * 3)
        bound.record(value, timestamp=T0 + i * 3)
    assert bound_store.handle(name).snapshot() == by_name.handle(name).snapshot()
    for aggregate in ("last", "count", "max", "sum"):
        assert bound_store.aggregate(name, {}, aggregate, 60.0, now=T0 + 20) == (
            by_name.aggregate(name, {}, aggregate, 60.0, now=T0 + 20)
        )
    assert heard == [(name, tuple(labels.values()))] * len(values)


def test_bound_series_dropped_by_the_limit_is_tried_again() -> None:
    store = MetricStore(clock=FixedClock(T0), max_series=1)
    store.declare("up", "gauge", "up", ("check",))
    store.record("up", 1.0, {"check": "first"})
    bound = store.bind("up", {"check": "second"})
    bound.record(1.0)
    bound.record(1.0)
    assert store.handle("up").dropped == 2
    assert list(store.handle("up").series) == [("first",)]


def test_bind_and_bound_errors() -> None:
    store, _ = _pair()
    with pytest.raises(UnknownMetricError):
        store.bind("nope", {})
    with pytest.raises(LabelError):
        store.bind("up", {"other": "a"})
    bound = store.bind("runs_total", {"check": "a", "result": "pass"})
    with pytest.raises(SampleError):
        bound.record(-1.0)
    assert store.handle("runs_total").series == {}
