"""OpenTelemetry: traces and the OTLP view of the metric store, over OTLP/HTTP (protobuf).

`build_otel(config, store=..., environ=...)` returns an `OtelSetup`:
- `tracer`: a real SDK tracer when an endpoint is configured, else a `NoOpTracer` (no provider, no
  exporter, no thread: spans cost next to nothing). Pass it to actors; nothing is set globally.
- `tracer_provider`: the SDK `TracerProvider` (or None): resource `service.name`,
  `deployment.environment` (and `deployment.environment.name`, the newer key), sampler
  `ParentBased(TraceIdRatioBased(trace_sample_ratio))`, a `BatchSpanProcessor` over an
  `OTLPSpanExporter` to `<endpoint>/v1/traces`. Give it to the ASGI/httpx instrumentations.
- `metrics`: an `OtlpMetricsExporter` actor (or None) that reads the store every
  `metrics_interval` seconds and exports every series to `<endpoint>/v1/metrics`: counters as
  monotonic cumulative sums, gauges as gauges, histograms as explicit-bucket histograms. The store
  is the only source (one metrics path); there is no MeterProvider, since OTel observable
  instruments cannot express histograms and the SDK's readers take no external producer.
- `shutdown()`: flushes pending spans and stops the span exporter (the metrics actor flushes when
  it is cancelled).

Settings, first non-empty wins: `[telemetry]` keys (which the default configuration already fills
from OTEL_* variables), then the standard variables in `environ`: OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_SERVICE_NAME, OTEL_ENVIRONMENT, OTEL_API_KEY (sent in the `otlp_api_key_header` header,
default `api-key`), OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`, added to every export).
"""

from __future__ import annotations

import logging
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NoOpTracer, Tracer

if TYPE_CHECKING:
    from actors.telemetry.config import TelemetryConfig
    from actors.telemetry.store import MetricStore

__all__ = ["OtelSetup", "OtlpMetricsExporter", "build_otel", "collect_metrics", "make_resource"]

_SCOPE = InstrumentationScope("blipee-monitor")
_log = logging.getLogger(__name__)


def _parse_headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers


def make_resource(service_name: str, environment: str) -> Resource:
    """The resource every span and metric carries."""
    return Resource.create(
        {
            "service.name": service_name,
            "deployment.environment": environment,
            "deployment.environment.name": environment,
        }
    )


def _unit(name: str) -> str:
    base = name.removesuffix("_total")
    if base.endswith("_seconds"):
        return "s"
    if base.endswith("_kg"):
        return "kg"
    if base.endswith("_bytes"):
        return "By"
    return ""


def collect_metrics(store: MetricStore, resource: Resource, now: float) -> MetricsData:
    """Every series of `store` as OTLP cumulative data points at wall time `now`."""
    now_ns = int(now * 1e9)
    metrics: list[Metric] = []
    for handle in store.metrics():
        names = handle.labelnames
        snaps = handle.snapshot()
        if not snaps:
            continue
        data: Any
        if handle.kind == "histogram":
            points_h: list[HistogramDataPoint] = []
            for snap in snaps:
                counts = [b - a for a, b in zip((0, *snap.buckets), snap.buckets, strict=False)]
                points_h.append(
                    HistogramDataPoint(
                        attributes=dict(zip(names, snap.label_values, strict=True)),
                        start_time_unix_nano=int(snap.created * 1e9),
                        time_unix_nano=now_ns,
                        count=snap.count,
                        sum=snap.sum,
                        bucket_counts=counts,
                        explicit_bounds=list(handle.buckets),
                        min=snap.min if math.isfinite(snap.min) else 0.0,
                        max=snap.max if math.isfinite(snap.max) else 0.0,
                    )
                )
            data = Histogram(points_h, AggregationTemporality.CUMULATIVE)
        else:
            points = [
                NumberDataPoint(
                    attributes=dict(zip(names, snap.label_values, strict=True)),
                    start_time_unix_nano=int(snap.created * 1e9),
                    time_unix_nano=now_ns,
                    value=snap.value,
                )
                for snap in snaps
            ]
            if handle.kind == "counter":
                data = Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=True)
            else:
                data = Gauge(points)
        metrics.append(Metric(handle.name, handle.help, _unit(handle.name), data))
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(_SCOPE, metrics, "")], "")])


class OtlpMetricsExporter:
    """Actor: exports the store's series every `interval` seconds; flushes once when cancelled.

    The export itself (blocking HTTP in the OTLP exporter) runs in a worker thread; the snapshot
    is taken on the event loop's thread, so the store needs no lock.
    """

    def __init__(
        self,
        *,
        store: MetricStore,
        exporter: MetricExporter,
        resource: Resource,
        interval: float = 60.0,
        flush_timeout: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self._store = store
        self._exporter = exporter
        self._resource = resource
        self.interval = interval
        self.flush_timeout = flush_timeout
        self._log = logger or _log
        self.exports = 0
        self.failures = 0

    async def export_once(self) -> bool:
        """Export the current series now; True on success (failures are logged, not raised)."""
        data = collect_metrics(self._store, self._resource, self._store.now())
        result = await trio.to_thread.run_sync(self._exporter.export, data, abandon_on_cancel=True)
        self.exports += 1
        if result is not MetricExportResult.SUCCESS:
            self.failures += 1
            self._log.warning("OTLP metrics export failed")
            return False
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Export every `interval` until cancelled, then flush once (bounded by flush_timeout)."""
        task_status.started()
        try:
            while True:
                await trio.sleep(self.interval)
                await self.export_once()
        finally:
            with trio.move_on_after(self.flush_timeout, shield=True):
                await self.export_once()
            await trio.to_thread.run_sync(self._exporter.shutdown)


@dataclass
class OtelSetup:
    """What `build_otel` made; see the module docstring."""

    tracer: Tracer
    tracer_provider: TracerProvider | None = None
    metrics: OtlpMetricsExporter | None = None
    resource: Resource | None = None
    endpoint: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """True when an OTLP endpoint is configured."""
        return self.tracer_provider is not None

    def shutdown(self) -> None:
        """Flush pending spans and stop the span exporter (blocking; call from a thread)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
            self.tracer_provider.shutdown()


def build_otel(
    config: TelemetryConfig,
    *,
    store: MetricStore,
    environ: Mapping[str, str] | None = None,
    metrics_interval: float | None = None,
    logger: logging.Logger | None = None,
) -> OtelSetup:
    """Build tracing and the OTLP metrics actor from `config` (see the module docstring).

    Nothing starts here: the span processor's thread starts with the first span, and the metrics
    actor runs when the supervisor starts it.
    """
    env = environ or {}
    endpoint = (config.otlp_endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")).strip()
    if not endpoint:
        return OtelSetup(tracer=NoOpTracer())
    service = config.service_name or env.get("OTEL_SERVICE_NAME", "") or "blipee-os"
    environment = config.environment or env.get("OTEL_ENVIRONMENT", "") or "production"
    headers = _parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    api_key = config.otlp_api_key.get_secret_value() or env.get("OTEL_API_KEY", "")
    if api_key:
        headers[config.otlp_api_key_header] = api_key
    base = endpoint.rstrip("/")
    resource = make_resource(service, environment)
    provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(config.trace_sample_ratio)),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers))
    )
    metrics = OtlpMetricsExporter(
        store=store,
        exporter=OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers=headers),
        resource=resource,
        interval=config.metrics_export_interval if metrics_interval is None else metrics_interval,
        logger=logger,
    )
    return OtelSetup(
        tracer=provider.get_tracer("blipee-monitor"),
        tracer_provider=provider,
        metrics=metrics,
        resource=resource,
        endpoint=base,
        headers=headers,
    )
