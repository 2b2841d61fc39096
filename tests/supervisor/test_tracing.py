"""Traces of a running app reach a local OTLP/HTTP receiver that decodes the protobuf."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from supervisor.app import App
from supervisor.config import parse_config

SOURCE = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[telemetry]
service_name = "blipee-test"
environment = "staging"
otlp_endpoint = "{otlp}"

[[checks]]
name = "tree"
kind = "self"
interval = "1h"

[channels.hooks]
kind = "webhook"
url = "{otlp}/hook"
"""


class _Receiver(ThreadingHTTPServer):
    """Answers 200 to every POST and keeps (path, body)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, bytes]] = []
        self.headers: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> tuple[dict[str, str], list[Span]]:
        """Resource attributes (of the last batch) and every span received."""
        attrs: dict[str, str] = {}
        spans: list[Span] = []
        with self.lock:
            bodies = [body for path, body in self.requests if path == "/v1/traces"]
        for body in bodies:
            for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
                attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
                spans += [span for ss in rs.scope_spans for span in ss.spans]
        return attrs, spans


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with self.server.lock:
            self.server.requests.append((self.path, body))
            self.server.headers.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _attrs(span: Span) -> dict[str, str]:
    return {a.key: a.value.string_value or str(a.value.int_value) for a in span.attributes}


async def test_requests_served_checks_and_outgoing_calls_make_spans(
    tmp_path: Path, receiver: _Receiver
) -> None:
    config = parse_config(SOURCE.format(db=tmp_path / "m.db", otlp=receiver.url), env={})
    app = App(config, env={})
    assert app.otel.tracer_provider is not None
    checked = trio.Event()
    app.health.add_listener(lambda new, previous: checked.set())
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        with trio.fail_after(10):
            await checked.wait()  # the check's first run (within a second of the start)
        base = f"http://127.0.0.1:{app.api_server.port}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/api/v1/checks")).status_code == 200
            assert (await client.get(f"{base}/api/health/live")).status_code == 200
            sent = await client.post(f"{base}/api/test-alert", json={"channel": "hooks"})
            assert sent.status_code == 200, sent.text
        await app.stop()
    # `run` flushed the spans when it returned.
    resource, spans = receiver.spans()
    assert resource["service.name"] == "blipee-test"
    assert resource["deployment.environment"] == "staging"
    by_name = {span.name: span for span in spans}
    served = by_name["GET /api/v1/checks"]
    assert served.kind == Span.SPAN_KIND_SERVER
    assert "200" in (
        _attrs(served).get("http.status_code"),
        _attrs(served).get("http.response.status_code"),
    )
    assert not any("/api/health/live" in name for name in by_name)  # probes are not traced
    check = by_name["check tree"]
    assert _attrs(check)["check.kind"] == "self"
    outgoing = [span for span in spans if span.kind == Span.SPAN_KIND_CLIENT]
    assert [span.name for span in outgoing] == ["POST"]
    # The webhook call is a child of the test-alert request span: one trace.
    parent = by_name["POST /api/test-alert"]
    assert outgoing[0].trace_id == parent.trace_id


ANONYMISED = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[security]
anonymize_labels = ["organization"]
anonymize_key = "${{LABEL_HMAC_KEY}}"

[storage]
path = "{db}"

[telemetry]
otlp_endpoint = "{otlp}"
metrics_export_interval = "1h"

[[rules]]
id = "busy-org"
name = "Busy organisation"
[rules.condition]
metric = "network_connections_active"
aggregate = "last"
window = "5m"
operator = ">"
threshold = 100
"""


def _expected_token(key: str, value: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


async def test_anonymised_labels_never_leave_the_monitor_in_clear(
    tmp_path: Path, receiver: _Receiver
) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    env = {"LABEL_HMAC_KEY": "s3cret-key"}
    source = ANONYMISED.format(db=tmp_path / "m.db", otlp=receiver.url)
    app = App(parse_config(source, env=env), env=env)
    token = _expected_token("s3cret-key", "org-123")
    events = {
        "events": [
            {
                "type": "business_metric",
                "name": "network_connections",
                "value": 120,
                "labels": {"organization": "org-123"},
            },
            {"type": "user_message", "intent": "esg_analysis", "organization": "org-123"},
        ]
    }
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        base = f"http://127.0.0.1:{app.api_server.port}"
        async with httpx.AsyncClient() as client:
            posted = await client.post(f"{base}/api/v1/events", json=events)
            assert posted.status_code < 300, posted.text
            # The embedded Python API takes the same path.
            app.telemetry.record_user_message("reporting", "org-123")
            with trio.fail_after(10):
                while True:
                    alerts = (await client.get(f"{base}/api/v1/alerts")).json()["alerts"]
                    if alerts:
                        break
                    await trio.sleep(0.05)
            metrics = (await client.get(f"http://127.0.0.1:{app.metrics_server.port}/metrics")).text
        assert app.otel.metrics is not None
        assert await app.otel.metrics.export_once()
        await app.stop()

    assert [alert["labels"]["organization"] for alert in alerts] == [token]
    assert "org-123" not in str(alerts)
    assert f'network_connections_active{{organization="{token}"}} 120.0' in metrics
    assert f'user_messages_total{{intent="reporting",organization="{token}"}} 1.0' in metrics
    assert "org-123" not in metrics
    otlp_orgs: set[str] = set()
    for _, body in [r for r in receiver.requests if r[0] == "/v1/metrics"]:
        assert b"org-123" not in body
        request = ExportMetricsServiceRequest.FromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    points = [*metric.gauge.data_points, *metric.sum.data_points]
                    for point in points:
                        for attr in point.attributes:
                            if attr.key == "organization":
                                otlp_orgs.add(attr.value.string_value)
    assert otlp_orgs == {token}


FROM_ENV = """
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"
"""


async def test_otel_variables_reach_a_real_receiver(tmp_path: Path, receiver: _Receiver) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_EXPORTER_OTLP_HEADERS": "X-Team=ops,authorization=Bearer%20t0k",
        "OTEL_SERVICE_NAME": "env-service",
        "OTEL_RESOURCE_ATTRIBUTES": "team=esg%20ops,deployment.environment=staging",
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
    }
    app = App(parse_config(FROM_ENV.format(db=tmp_path / "m.db"), env=env), env=env)
    assert app.otel.metrics is not None
    assert app.otel.metrics.interval == 3600.0
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        with app.tracer.start_as_current_span("from-env"):
            app.telemetry.record_business_metric("organizations", 3)
        assert await app.otel.metrics.export_once()
        await app.stop()
    with receiver.lock:
        seen = dict(receiver.headers)  # the last request of each path
        bodies = [body for path, body in receiver.requests if path == "/v1/metrics"]
    for path in ("/v1/traces", "/v1/metrics"):
        assert seen[path]["x-team"] == "ops"
        assert seen[path]["authorization"] == "Bearer t0k"
    resource, spans = receiver.spans()
    assert "from-env" in {span.name for span in spans}
    metrics = ExportMetricsServiceRequest.FromString(bodies[0]).resource_metrics[0]
    metric_resource = {a.key: a.value.string_value for a in metrics.resource.attributes}
    for attrs in (resource, metric_resource):
        assert attrs["service.name"] == "env-service"
        assert attrs["team"] == "esg ops"
        assert attrs["deployment.environment"] == "staging"
