"""business_metric events cannot write the monitor's own metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actors.telemetry.api import ingest
from actors.telemetry.exceptions import ProtectedMetricError
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore

HEARTBEAT = {"type": "heartbeat", "agent": "carbon-hunter"}
ORGS = {"type": "business_metric", "name": "organizations_active", "value": 3}


def _body(*events: Any) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def test_business_metric_events_cannot_forge_the_monitors_own_metrics(
    telemetry: Telemetry, store: MetricStore
) -> None:
    store.declare("health_check_up", "gauge", "check up", ("check",))
    forged = {
        "type": "business_metric",
        "name": "health_check_up",
        "value": 1,
        "labels": {"check": "database"},
    }
    status, payload = ingest(telemetry, _body(forged, ORGS))
    assert status == 202
    assert payload["accepted"] == 1
    assert "belongs to the monitor" in payload["rejected"][0]["error"]
    assert store.handle("health_check_up").series == {}
    with pytest.raises(ProtectedMetricError):
        telemetry.record_business_metric("metric_series_dropped_total", 1, {"metric": "x"})
    # a metric the application declares itself stays writable...
    telemetry.gauge("queue_depth", "Jobs waiting.")
    telemetry.record_business_metric("queue_depth", 7)
    # ...unless the monitor declares the same metric too
    store.declare("queue_depth", "gauge", "Jobs waiting.")
    with pytest.raises(ProtectedMetricError):
        telemetry.record_business_metric("queue_depth", 8)
