"""The recording API: seed events -> catalogue metrics, anonymisation, custom metrics, spans."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import shutil
import subprocess

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from actors.clock import FixedClock
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.catalog import SEED_METRICS, declare_catalog
from actors.telemetry.config import MetricDecl
from actors.telemetry.exceptions import LabelError, SampleError, UnknownMetricError
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore

ORG = hmac.new(b"test-key", b"org-123", hashlib.sha256).hexdigest()[:16]


def _exposition(store: MetricStore) -> str:
    registry = CollectorRegistry()
    registry.register(store.collector())
    return generate_latest(registry).decode()


def _record_everything(telemetry: Telemetry) -> None:
    telemetry.record_agent_execution("esg-chief-of-staff", 1.5, True)
    telemetry.record_agent_execution("carbon-hunter", 0.2, False)
    telemetry.record_ml_prediction("emissions-predictor", 0.12, 0.93)
    telemetry.record_ml_accuracy("compliance-risk", 0.87)
    telemetry.record_api_request("/api/v1/orchestrator", "post", 200, 0.25)
    telemetry.record_api_request("/api/agents/status", "GET", 503, 1.25)
    telemetry.record_business_metric("network_connections", 12, {"organization": "org-123"})
    telemetry.record_business_metric("benchmarks", 1, {"organization": "org-456"})
    telemetry.record_user_message("esg_analysis", "org-789")
    telemetry.record_business_metric(
        "emissions", 1234.5, {"organization": "org-123", "scope": "scope1"}
    )
    telemetry.record_business_metric("organizations_active", 42, {})


def test_every_seed_metric_is_exposed_and_promtool_clean(telemetry: Telemetry) -> None:
    _record_everything(telemetry)
    text = _exposition(telemetry.store)
    for spec in SEED_METRICS:
        assert f"# TYPE {spec.name} {spec.kind}" in text
        sample = spec.name + "_bucket" if spec.kind == "histogram" else spec.name
        assert f"\n{sample}" in text, spec.name
    assert "metric_series_dropped_total" in text
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed")
        pytest.skip("promtool is not installed")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == b""


def test_openmetrics_exposition_works(telemetry: Telemetry) -> None:
    _record_everything(telemetry)
    registry = CollectorRegistry()
    registry.register(telemetry.store.collector())
    text = generate_openmetrics(registry).decode()  # type: ignore[no-untyped-call]
    assert text.endswith("# EOF\n")
    assert 'agent_executions_total{agent="carbon-hunter",status="error"} 1.0' in text


def test_events_map_to_catalogue(telemetry: Telemetry) -> None:
    _record_everything(telemetry)
    agg = telemetry.store.aggregate
    assert agg("agent_errors_total", {}, "increase", 60) == {(("agent", "carbon-hunter"),): 1.0}
    assert agg("agent_executions_total", {"status": "success"}, "increase", 60) == {
        (("agent", "esg-chief-of-staff"), ("status", "success")): 1.0
    }
    assert agg("api_errors_total", {}, "increase", 60) == {
        (("endpoint", "/api/agents/status"), ("method", "GET")): 1.0
    }
    assert agg("api_requests_total", {"method": "POST"}, "count", 60) == {
        (("endpoint", "/api/v1/orchestrator"), ("method", "POST"), ("status", "200")): 1.0
    }
    assert agg("emissions_tracked_kg_total", {}, "last", 60) == {
        (("organization", ORG), ("scope", "scope1")): 1234.5
    }
    assert agg("ml_prediction_confidence", {}, "p50", 60) == {
        (("model", "emissions-predictor"),): 0.93
    }
    assert agg("organizations_active", {}, "last", 60) == {(): 42.0}
    assert telemetry.agents is not None
    assert telemetry.agents.status("carbon-hunter", telemetry.store.now()) is not None


def test_anonymised_values_never_reach_the_store(telemetry: Telemetry) -> None:
    telemetry.record_user_message("esg_analysis", "org-secret")
    telemetry.record("network_connections_active", 3, {"organization": "org-secret"})
    text = _exposition(telemetry.store)
    assert "org-secret" not in text
    for handle in telemetry.store.metrics():
        for values in handle.series:
            assert "org-secret" not in values


def test_generated_key_when_empty() -> None:
    a, b = Anonymizer(["organization"]), Anonymizer(["organization"])
    assert a.generated_key
    assert a.hash("x") == a.hash("x")
    assert a.hash("x") != b.hash("x")
    assert not Anonymizer(["organization"], "k").generated_key


def test_bad_values_are_rejected_before_anything_is_recorded(telemetry: Telemetry) -> None:
    with pytest.raises(SampleError):
        telemetry.record_agent_execution("a", -1.0, True)
    with pytest.raises(SampleError):
        telemetry.record_ml_prediction("m", 0.1, 1.5)
    with pytest.raises(SampleError):
        telemetry.record_api_request("/x", "GET", 42, 0.1)
    with pytest.raises(SampleError):
        telemetry.record_ml_accuracy("m", math.nan)
    with pytest.raises(UnknownMetricError):
        telemetry.record_business_metric("nope", 1, {})
    with pytest.raises(LabelError):
        telemetry.record_business_metric("emissions", 1, {"organization": "o"})
    assert all(not h.series for h in telemetry.store.metrics())


def test_custom_and_user_declared_metrics(clock: FixedClock) -> None:
    store = MetricStore(clock=clock)
    declare_catalog(
        store,
        [MetricDecl(name="reports_generated_total", type="counter", labels=("kind",))],
    )
    telemetry = Telemetry(store=store)
    telemetry.record_business_metric("reports_generated_total", 2, {"kind": "csrd"})
    events = telemetry.counter("custom_events_total", "Total custom events", ["type"])
    events.add(1, {"type": "special_event"})
    depth = telemetry.gauge("queue_depth", "Queue depth")
    depth.set(7)
    sizes = telemetry.histogram("payload_bytes", "Payload sizes", buckets=[100, 1000])
    sizes.observe(512)
    assert store.aggregate("custom_events_total", {}, "last", 60) == {
        (("type", "special_event"),): 1.0
    }
    assert store.aggregate("reports_generated_total", {}, "last", 60) == {(("kind", "csrd"),): 2.0}
    text = _exposition(store)
    assert (
        "# HELP reports_generated_total reports_generated_total (declared in [[metrics]])." in text
    )
    assert 'payload_bytes_bucket{le="1000.0"} 1.0' in text


def _tracer() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_trace_async_and_decorator_make_spans(store: MetricStore) -> None:
    provider, exporter = _tracer()
    telemetry = Telemetry(store=store, tracer=provider.get_tracer("test"))

    async def work() -> int:
        return 41

    assert await telemetry.trace_async("custom.operation", work, {"organization": "org-123"}) == 41

    @telemetry.traced("decorated.async")
    async def decorated(x: int) -> int:
        return x + 1

    @telemetry.traced()
    def plain(x: int) -> int:
        return x * 2

    assert await decorated(1) == 2
    assert plain(2) == 4
    with pytest.raises(ValueError), telemetry.span("failing"):
        raise ValueError("boom")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) >= {"custom.operation", "decorated.async", "failing"}
    assert spans["custom.operation"].attributes == {"organization": ORG}
    assert not spans["failing"].status.is_ok
    provider.shutdown()
