"""OTLP export to a real local OTLP/HTTP receiver that decodes the protobuf payloads."""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trio
import trio.testing
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import NoOpTracer
from pydantic import SecretStr

from actors.telemetry.config import TelemetryConfig
from actors.telemetry.otel import build_otel
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.requests if p == path]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with self.server.lock:
            self.server.requests.append(
                (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
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


def _resource_attrs(resource: object) -> dict[str, str]:
    return {a.key: a.value.string_value for a in resource.attributes}  # type: ignore[attr-defined]


async def test_spans_and_metrics_reach_the_receiver(
    receiver: _Receiver, telemetry: Telemetry, store: MetricStore
) -> None:
    config = TelemetryConfig(
        service_name="blipee-test",
        environment="staging",
        otlp_endpoint=receiver.url,
        otlp_api_key=SecretStr("k-123"),
    )
    setup = build_otel(config, store=store, environ={"OTEL_EXPORTER_OTLP_HEADERS": "x-team=ops"})
    assert setup.enabled
    assert setup.metrics is not None
    traced = Telemetry(store=store, tracer=setup.tracer, agents=telemetry.agents)

    async def work() -> str:
        traced.record_agent_execution("carbon-hunter", 0.4, False)
        return "done"

    assert await traced.trace_async("custom.operation", work, {"k": "v"}) == "done"
    traced.record_ml_accuracy("compliance-risk", 0.9)
    assert await setup.metrics.export_once()
    await trio.to_thread.run_sync(setup.shutdown)

    (trace_headers, trace_body), *_ = receiver.bodies("/v1/traces")
    assert trace_headers["api-key"] == "k-123"
    assert trace_headers["x-team"] == "ops"
    traces = ExportTraceServiceRequest.FromString(trace_body)
    rs = traces.resource_spans[0]
    attrs = _resource_attrs(rs.resource)
    assert attrs["service.name"] == "blipee-test"
    assert attrs["deployment.environment"] == "staging"
    assert [s.name for s in rs.scope_spans[0].spans] == ["custom.operation"]

    (metric_headers, metric_body), *_ = receiver.bodies("/v1/metrics")
    assert metric_headers["api-key"] == "k-123"
    metrics = ExportMetricsServiceRequest.FromString(metric_body)
    rm = metrics.resource_metrics[0]
    attrs = _resource_attrs(rm.resource)
    assert attrs["service.name"] == "blipee-test"
    assert attrs["deployment.environment"] == "staging"
    by_name = {m.name: m for m in rm.scope_metrics[0].metrics}
    errors = by_name["agent_errors_total"]
    assert errors.sum.is_monotonic
    assert errors.sum.data_points[0].as_double == 1.0
    assert errors.sum.data_points[0].attributes[0].value.string_value == "carbon-hunter"
    hist = by_name["agent_execution_duration_seconds"].histogram.data_points[0]
    assert hist.count == 1
    assert hist.sum == pytest.approx(0.4)
    assert sum(hist.bucket_counts) == 1
    assert by_name["agent_execution_duration_seconds"].unit == "s"
    assert by_name["ml_model_accuracy"].gauge.data_points[0].as_double == 0.9


async def test_metrics_actor_exports_periodically_and_flushes_on_cancel(
    receiver: _Receiver, store: MetricStore, autojump_clock: trio.testing.MockClock
) -> None:
    config = TelemetryConfig(otlp_endpoint=receiver.url + "/", metrics_export_interval="10s")
    setup = build_otel(config, store=store)
    actor = setup.metrics
    assert actor is not None
    # the autojump clock would jump over any deadline while the export thread works
    actor.flush_timeout = math.inf
    store.record("organizations_active", 3)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        while actor.exports < 2:
            await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert actor.exports == 3  # two periodic exports, then the flush on cancel
    assert actor.failures == 0
    assert len(receiver.bodies("/v1/metrics")) == 3
    await trio.to_thread.run_sync(setup.shutdown)


def test_no_endpoint_means_no_provider_no_cost(store: MetricStore) -> None:
    setup = build_otel(TelemetryConfig(), store=store, environ={})
    assert not setup.enabled
    assert isinstance(setup.tracer, NoOpTracer)
    assert setup.metrics is None
    setup.shutdown()
    from_env = build_otel(
        TelemetryConfig(), store=store, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    )
    assert from_env.endpoint == "http://x:4318"
    from_env.shutdown()
