"""The frozen frame's renderer writes what prometheus_client's encoders write (differential)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from actors.clock import FixedClock
from actors.telemetry.exposition import freeze, render
from actors.telemetry.store import MetricStore

ODD = ["plain", 'quo"te', "back\\slash", "new\nline", "ünï ☃", ""]


def _store() -> MetricStore:
    store = MetricStore(clock=FixedClock(1_700_000_000.0))
    store.declare("jobs_total", "counter", 'Jobs "done"\\ by\nworker.', ("worker", "status"))
    store.declare("other_total", "counter", "Another counter.", ("a",))
    store.declare("temperature", "gauge", "Degrees.", ("zone", "a"))
    store.declare("no_labels", "gauge", "No labels.", ())
    store.declare("never_recorded", "gauge", "Declared only.", ("x",))
    store.declare(
        "latency_seconds", "histogram", "Latency.", ("check", "zone"), (0.005, 0.1, 1.0, 2.5e6)
    )
    store.declare("signed", "histogram", "Negative bounds.", ("a",), (-1.0, 0.0, 1.0))
    store.declare("plain_histogram", "histogram", "No labels.", (), (1.0,))
    for i, odd in enumerate(ODD):
        store.record("jobs_total", float(i) + 0.5, {"worker": odd, "status": "ok"})
        store.record("other_total", 1.0, {"a": odd})
        store.record("temperature", -1.5 * i, {"zone": odd, "a": "x"})
        for value in (0.001, 0.05, 0.7, 3.0, 1e7):
            store.record("latency_seconds", value * (i + 1), {"check": odd, "zone": "eu"})
        store.record("signed", -0.5 * i, {"a": odd})
    store.record("temperature", 1e300, {"zone": "hot", "a": "x"})
    store.record("temperature", -2.5e-7, {"zone": "cold", "a": "x"})
    store.record("no_labels", 123456789.0)
    store.record("plain_histogram", 0.5)
    return store


@pytest.mark.parametrize("openmetrics", [False, True])
def test_render_is_what_prometheus_client_writes(openmetrics: bool) -> None:
    store = _store()
    registry = CollectorRegistry()
    registry.register(store.collector())
    if openmetrics:
        expected = generate_openmetrics(registry).decode()  # type: ignore[no-untyped-call]
        assert expected.endswith("# EOF\n")
        expected = expected[: -len("# EOF\n")]
    else:
        expected = generate_latest(registry).decode()
    assert render(freeze(store), openmetrics=openmetrics) == expected


def test_a_frame_does_not_change_when_the_store_does() -> None:
    store = _store()
    frames = freeze(store)
    before = render(frames)
    store.record("jobs_total", 100.0, {"worker": "plain", "status": "ok"})
    store.record("temperature", 1.0, {"zone": "new", "a": "x"})
    assert render(frames) == before
    assert render(freeze(store)) != before
