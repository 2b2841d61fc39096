"""The OTLP side of OpenTelemetry: the SDK tracer provider, exporters and the metrics actor.

Imported only when an OTLP endpoint is configured (`otel.build_otel` imports it then), so a
monitor that exports nothing never loads the SDK and its exporters.

- `make_resource(attributes)`: the SDK's `telemetry.sdk.*` attributes plus `attributes`
  (resolved by `otel.resolve_otel`: service.name, deployment.environment, OTEL_RESOURCE_ATTRIBUTES).
  Built without `Resource.create`, whose detectors read the process environment: the environment
  is the one the composition root passed in.
- `make_sampler(name, ratio)`: a sampler of the SDK's OTEL_TRACES_SAMPLER table.
- `make_provider(...)`: the SDK `TracerProvider` with that resource and sampler, a
  `BatchSpanProcessor` over an `OTLPSpanExporter` to the traces endpoint.
- `OtlpMetricsExporter`: an actor that reads the store every `interval` seconds and exports every
  series to the metrics endpoint: counters as monotonic cumulative sums, gauges as gauges,
  histograms as explicit-bucket histograms (`collect_metrics`). The store is the only source (one
  metrics path); there is no MeterProvider, since OTel observable instruments cannot express
  histograms and the SDK's readers take no external producer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

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
from opentelemetry.sdk.resources import (
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.sdk.version import __version__ as sdk_version

if TYPE_CHECKING:
    from actors.telemetry.store import MetricStore

__all__ = [
    "OtlpMetricsExporter",
    "collect_metrics",
    "make_metrics_exporter",
    "make_provider",
    "make_resource",
    "make_sampler",
]

_SCOPE = InstrumentationScope("blipee-monitor")
_log = logging.getLogger("actors.telemetry.otel")


def make_resource(attributes: Mapping[str, str]) -> Resource:
    """The resource every span and metric carries: the SDK's own attributes, then `attributes`."""
    return Resource(
        {
            TELEMETRY_SDK_LANGUAGE: "python",
            TELEMETRY_SDK_NAME: "opentelemetry",
            TELEMETRY_SDK_VERSION: sdk_version,
            **attributes,
        }
    )


def make_sampler(name: str, ratio: float | None) -> sampling.Sampler:
    """The SDK's sampler `name` (an OTEL_TRACES_SAMPLER value), with `ratio` for ratio samplers.

    Raises:
        KeyError: `name` is not in the SDK's table (`otel.resolve_otel` checked it).
        ValueError: `ratio` outside 0..1 (the SDK's check).
    """
    factory: Any = sampling._KNOWN_SAMPLERS[name]
    if ratio is None:
        return cast("sampling.Sampler", factory)
    return cast("sampling.Sampler", factory(ratio))


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


def make_provider(
    resource: Resource,
    *,
    sampler: sampling.Sampler,
    endpoint: str,
    headers: dict[str, str],
    timeout: float,
) -> TracerProvider:
    """The SDK tracer provider exporting spans to `endpoint` (the full URL; see the docstring)."""
    provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def make_metrics_exporter(
    store: MetricStore,
    resource: Resource,
    *,
    endpoint: str,
    headers: dict[str, str],
    interval: float,
    timeout: float = 10.0,
    logger: logging.Logger | None = None,
) -> OtlpMetricsExporter:
    """The metrics actor exporting `store` to `endpoint` (the full URL) every `interval` s."""
    return OtlpMetricsExporter(
        store=store,
        exporter=OTLPMetricExporter(endpoint=endpoint, headers=headers, timeout=timeout),
        resource=resource,
        interval=interval,
        logger=logger,
    )
