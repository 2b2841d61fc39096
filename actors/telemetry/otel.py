"""OpenTelemetry: traces and the OTLP view of the metric store, over OTLP/HTTP (protobuf).

`build_otel(config, store=..., environ=...)` returns an `OtelSetup`:
- `tracer`: a real SDK tracer when an endpoint is configured, else a `NoOpTracer` (no provider, no
  exporter, no thread: spans cost next to nothing). Pass it to actors; nothing is set globally.
- `tracer_provider`: the SDK `TracerProvider` (or None), exporting spans to
  `<endpoint>/v1/traces` (`otlp.make_provider`). Give it to the ASGI/httpx instrumentations.
- `metrics`: an `OtlpMetricsExporter` actor (or None) that exports every series of the store to
  `<endpoint>/v1/metrics` every `metrics_interval` seconds (`otlp`).
- `shutdown()`: flushes pending spans and stops the span exporter (the metrics actor flushes when
  it is cancelled).

Settings, first non-empty wins: `[telemetry]` keys (which the default configuration already fills
from OTEL_* variables), then the standard variables in `environ`: OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_SERVICE_NAME, OTEL_ENVIRONMENT, OTEL_API_KEY (sent in the `otlp_api_key_header` header,
default `api-key`), OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`, added to every export).

Without an endpoint nothing of the SDK or its exporters is imported (`otlp` holds that part).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.trace import NoOpTracer, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from actors.telemetry.config import TelemetryConfig
    from actors.telemetry.otlp import OtlpMetricsExporter
    from actors.telemetry.store import MetricStore

__all__ = ["OtelSetup", "build_otel"]


def _parse_headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers


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
    from actors.telemetry import otlp  # the SDK and exporters: only when exporting

    resource = otlp.make_resource(service, environment)
    provider = otlp.make_provider(
        resource, sample_ratio=config.trace_sample_ratio, endpoint=base, headers=headers
    )
    metrics = otlp.make_metrics_exporter(
        store,
        resource,
        endpoint=base,
        headers=headers,
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
