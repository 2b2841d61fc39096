"""Stock OpenTelemetry SDKs (Python, and JavaScript run by Node.js) exporting over OTLP/HTTP to a
running monitor: the seed's metrics arrive under their Prometheus names, in the series the events
API feeds, spans become RED metrics, and a rule on the exported agent errors fires the webhook.

The JavaScript packages are installed by `npm ci` from tests/e2e/otlp_js/package-lock.json into
that folder (once; `node_modules` is not committed). Without node or npm the test is skipped,
and fails under CI=true."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.e2e.harness import ROOT, HttpPeer, Monitor, require_binary, wait_until

JS = ROOT / "tests" / "e2e" / "otlp_js"
TOKEN = "otlp-e2e-token-8c1f"
HOOK = "/hooks/otlp"

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[security]
api_token = "{token}"

[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "5s"

[log]
format = "json"

[[rules]]
id = "agent-errors"
name = "Agent Errors"
severity = "critical"
channels = ["hooks"]
summary = "{{{{ value }}}} agent errors"
[rules.condition]
metric = "agent_errors_total"
aggregate = "increase"
window = "5m"
operator = ">"
threshold = 0

[routing]
group_by = ["alertname"]
group_wait = "0s"
group_interval = "300ms"
repeat_interval = "1h"

[channels.hooks]
kind = "webhook"
url = "{receiver}{hook}"
timeout = "2s"
"""


@pytest.fixture
def monitor(tmp_path: Path, receiver: HttpPeer) -> Iterator[Monitor]:
    config = tmp_path / "otlp.toml"
    config.write_text(
        CONFIG.format(token=TOKEN, db=tmp_path / "m.db", receiver=receiver.url, hook=HOOK)
    )
    proc = Monitor(config)
    try:
        proc.start()
        yield proc
    finally:
        status = proc.stop()
    assert status == 0, proc.log()[-4000:]


def _firing(receiver: HttpPeer) -> list[Any]:
    out = []
    for request in receiver.received(HOOK):
        body: Any = request.json()
        if body.get("status") == "firing":
            out.append(body)
    return out


def test_python_sdk_metrics_and_spans_reach_the_store_and_fire_a_rule(
    monitor: Monitor, receiver: HttpPeer
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    resource = Resource({"service.name": "blipee-os", "service.instance.id": "web-1"})
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{monitor.api}/v1/metrics", headers=headers),
        export_interval_millis=3_600_000,
    )
    meters = MeterProvider(metric_readers=[reader], resource=resource)
    spans = TracerProvider(resource=resource)
    spans.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{monitor.api}/v1/traces", headers=headers))
    )
    try:
        meter = meters.get_meter("blipee-os")
        executions = meter.create_counter("agent.executions")
        errors = meter.create_counter("agent.errors")
        duration = meter.create_histogram("agent.execution.duration", unit="s")
        requests = meter.create_counter("api.requests")
        latency = meter.create_histogram("ml.prediction.latency", unit="s")
        agent = {"agent": "carbon-hunter"}
        executions.add(3, {**agent, "status": "success"})
        executions.add(1, {**agent, "status": "error"})
        errors.add(1, agent)
        duration.record(0.8, agent)
        requests.add(5, {"endpoint": "/api/chat", "method": "POST", "status": 200})
        latency.record(0.04, {"model": "emissions-predictor"})
        assert meters.force_flush()  # the first totals: each series' baseline
        errors.add(2, agent)
        executions.add(2, {**agent, "status": "error"})
        latency.record(0.2, {"model": "emissions-predictor"})
        assert meters.force_flush()

        tracer = spans.get_tracer("blipee-os")
        for ok in (True, False, False):
            with tracer.start_as_current_span("POST /api/chat") as span:
                span.set_status(Status(StatusCode.OK if ok else StatusCode.ERROR))
    finally:
        meters.shutdown()
        spans.shutdown()

    fired = wait_until(lambda: _firing(receiver), "the firing webhook", timeout=10)[0]
    alert = fired["alerts"][0]
    assert alert["labels"]["alertname"] == "Agent Errors"
    assert alert["labels"]["agent"] == "carbon-hunter"
    assert alert["annotations"]["summary"] == "2 agent errors"

    with httpx.Client(base_url=monitor.metrics, timeout=5.0) as scraper:
        text = scraper.get("/metrics").text
    # the seed catalogue's series, as the events API would have written them
    assert 'agent_executions_total{agent="carbon-hunter",status="error"} 3.0' in text
    assert 'api_requests_total{endpoint="/api/chat",method="POST",status="200"} 5.0' in text
    assert 'ml_prediction_latency_seconds_count{model="emissions-predictor"} 2.0' in text
    assert 'agent_execution_duration_seconds_count{agent="carbon-hunter"} 1.0' in text
    assert (
        'traces_spans_total{service="blipee-os",span="POST /api/chat",status="error"} 2.0' in text
    )
    assert 'traces_span_duration_seconds_count{service="blipee-os",span="POST /api/chat"} 3.0' in (
        text
    )


def _npm_ci(npm: str) -> None:
    """The lock file's packages in tests/e2e/otlp_js/node_modules (once)."""
    if (JS / "node_modules" / ".package-lock.json").exists():
        return
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_javascript_sdk_metrics_and_spans_reach_the_store_and_fire_a_rule(
    monitor: Monitor, receiver: HttpPeer
) -> None:
    node = require_binary("node")
    _npm_ci(require_binary("npm"))
    env = {**os.environ, "MONITOR_URL": monitor.api, "MONITOR_TOKEN": TOKEN}
    done = subprocess.run(
        [node, "export.mjs"], cwd=JS, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exported" in done.stdout

    fired = wait_until(lambda: _firing(receiver), "the firing webhook", timeout=10)[0]
    alert = fired["alerts"][0]
    assert alert["labels"]["alertname"] == "Agent Errors"
    assert alert["labels"]["agent"] == "esg-chief-of-staff"
    assert alert["annotations"]["summary"] == "3 agent errors"

    with httpx.Client(base_url=monitor.metrics, timeout=5.0) as scraper:
        text = scraper.get("/metrics").text
    assert 'agent_executions_total{agent="esg-chief-of-staff",status="error"} 3.0' in text
    assert 'api_requests_total{endpoint="/api/agents",method="GET",status="200"} 7.0' in text
    assert 'api_request_duration_seconds_count{endpoint="/api/agents",method="GET"} 1.0' in text
    assert 'ml_prediction_latency_seconds_bucket{le="0.05",model="emissions-predictor"} 1.0' in (
        text
    )
    assert 'ml_prediction_latency_seconds_count{model="emissions-predictor"} 2.0' in text
    assert 'ml_model_accuracy{model="emissions-predictor"} 0.93' in text
    assert 'traces_spans_total{service="blipee-os",span="GET /api/agents",status="ok"} 2.0' in text


def test_spans_are_forwarded_to_the_configured_otlp_endpoint(
    tmp_path: Path, receiver: HttpPeer
) -> None:
    config = tmp_path / "forward.toml"
    text = CONFIG.format(token=TOKEN, db=tmp_path / "m.db", receiver=receiver.url, hook=HOOK)
    config.write_text(text + f'\n[telemetry]\notlp_endpoint = "{receiver.url}"\n')
    monitor = Monitor(config)
    try:
        monitor.start()
        spans = TracerProvider(resource=Resource({"service.name": "blipee-os"}))
        exporter = OTLPSpanExporter(
            endpoint=f"{monitor.api}/v1/traces", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        spans.add_span_processor(SimpleSpanProcessor(exporter))
        with spans.get_tracer("blipee-os").start_as_current_span("forward-me"):
            pass
        spans.shutdown()

        def forwarded() -> bool:
            return any(b"forward-me" in r.body for r in receiver.received("/v1/traces"))

        wait_until(forwarded, "the span at the collector")
    finally:
        assert monitor.stop() == 0, monitor.log()[-4000:]
