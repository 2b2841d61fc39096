"""The metric store against values it cannot hold: overflow, NaN, rejected samples."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actors.telemetry.api import ingest
from actors.telemetry.exceptions import SampleError
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore

HEARTBEAT = {"type": "heartbeat", "agent": "carbon-hunter"}
ORGS = {"type": "business_metric", "name": "organizations_active", "value": 3}


def _body(*events: Any) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def test_huge_values_never_overflow_a_counter_or_an_aggregate(
    telemetry: Telemetry, store: MetricStore
) -> None:
    emission = {
        "type": "business_metric",
        "name": "emissions",
        "value": 1e308,
        "labels": {"organization": "o", "scope": "1"},
    }
    status, payload = ingest(telemetry, _body(emission, emission, emission))
    assert status == 202
    assert payload["accepted"] == 1
    assert [r["index"] for r in payload["rejected"]] == [1, 2]
    assert "overflow" in payload["rejected"][0]["error"]
    [(_labels, total)] = store.aggregate("emissions_tracked_kg_total", {}, "last", 60).items()
    assert total == 1e308
    # gauges and histograms take any finite value: their window sums saturate, never raise
    store.declare("big_seconds", "histogram", "h", buckets=(1.0,))
    store.declare("level", "gauge", "g")
    for _ in range(4):
        store.record("big_seconds", 1e308)
        store.record("level", 1.7e308)
    assert store.aggregate("big_seconds", {}, "sum", 60) == {(): float("inf")}
    assert store.aggregate("level", {}, "avg", 60) == {(): float("inf")}


def test_a_rejected_sample_leaves_no_empty_series(store: MetricStore) -> None:
    store.declare("jobs_total", "counter", "jobs", ("queue",), max_series=1)
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(SampleError):
            store.record("jobs_total", bad, {"queue": "a"})
    with pytest.raises(SampleError):
        store.record("jobs_total", 1.0, {"queue": "a"}, timestamp=float("nan"))
    assert store.handle("jobs_total").series == {}
    store.record("jobs_total", 1.0, {"queue": "b"})  # the one slot is still free
    assert store.handle("jobs_total").dropped == 0
