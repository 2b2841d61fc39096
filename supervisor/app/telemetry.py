"""The telemetry subsystem: the metric store, the recording API, the agent registry, OTLP.

`TelemetrySubsystem` builds the metric store (`metric_retention(config)` seconds of samples, the
[limits] sizes and staleness, label anonymisation, the seed catalogue and the [[metrics]]
declarations), the agent registry, the OpenTelemetry setup (tracer, OTLP metric export), the
recording API (`actors.telemetry.recording.Telemetry`) and the OTLP receiver's translation. Its
children, when `[telemetry] otlp_endpoint` is set: `otlp`, the metric exporter, and
`otlp-forward`, which forwards the spans `POST /v1/traces` received. On reload it reports
"metric retention" in `needs_restart` when a new rule or metric check window is longer than the
store keeps (the store sizes its rings when a metric is declared).
"""

from __future__ import annotations

from collections.abc import Mapping

import trio

from actors.checks.metric import MetricCheckConfig
from actors.telemetry.agents import AgentRegistry
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.otel import build_otel
from actors.telemetry.otlp_forward import SpanForwarder
from actors.telemetry.otlp_ingest import IngestOptions, MetricsIngest
from actors.telemetry.otlp_traces import TracesIngest
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from actors.telemetry.windows import Staleness
from supervisor.app.reload import ReportBuilder
from supervisor.app.subsystem import Wiring
from supervisor.config import Config
from supervisor.logging_setup import logger_for
from supervisor.runtime import ChildSpec

__all__ = ["MIN_RETENTION", "TelemetrySubsystem", "format_seconds", "metric_retention"]

MIN_RETENTION = 3600.0
"""The metric store keeps at least this much history (seconds): the health document reads the
last minute, and a rule added at runtime with a window up to an hour finds its samples."""


def metric_retention(config: Config) -> float:
    """Seconds of samples the metric store must keep for `config`: the longest window of any
    rule (enabled or not: a reload may enable it) or `metric` check, and at least
    `MIN_RETENTION`."""
    windows = [rule.condition.window for rule in config.rules]
    windows += [
        check.condition.window for check in config.checks if isinstance(check, MetricCheckConfig)
    ]
    return max([MIN_RETENTION, *windows])


def format_seconds(seconds: float) -> str:
    """`seconds` as a duration a person reads: "2h", "5m" or "90s"."""
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _ingest_options(config: Config) -> IngestOptions:
    return IngestOptions(
        resource_attributes=config.otlp.resource_attributes,
        max_metrics=config.otlp.max_metrics,
    )


class TelemetrySubsystem:
    """The metric store and what records into it or exports it. See the module docstring.

    Attributes:
        store: the metric store (every sample is recorded once, here).
        agents: the agent registry (agents expected by `agents` checks, and those reporting).
        otel: the OpenTelemetry setup (`tracer`, `tracer_provider`, OTLP `metrics` exporter).
        api: the recording API (`record_*`, custom metrics, tracing).
        otlp_metrics, otlp_traces: the OTLP receiver's translation into the store.
    """

    def __init__(self, config: Config, wiring: Wiring, *, env: Mapping[str, str]) -> None:
        self._wiring = wiring
        limits = config.limits
        self.store = MetricStore(
            clock=wiring.clock,
            retention=metric_retention(config),
            max_points=limits.max_points_per_series,
            max_series=limits.max_series_per_metric,
            max_total_series=limits.max_series,
            max_total_points=limits.max_points,
            # [security] anonymize_labels: hashed where every sample enters the store.
            anonymizer=Anonymizer(
                config.security.anonymize_labels,
                config.security.anonymize_key.get_secret_value(),
            ),
            # [limits] staleness: when a pushed series stops being in force for readers.
            staleness=Staleness(limits.staleness, dict(limits.staleness_by_metric)),
        )
        declare_catalog(self.store, config.metrics)
        self.agents = AgentRegistry()
        self.otel = build_otel(
            config.telemetry, store=self.store, environ=env, logger=logger_for("otel")
        )
        self.api = Telemetry(store=self.store, agents=self.agents, tracer=self.otel.tracer)
        # The OTLP receiver (`POST /v1/metrics`, `/v1/traces`) records into the same store.
        self.otlp_metrics = MetricsIngest(self.store, _ingest_options(config))
        # Spans received are counted, then forwarded to the traces endpoint when one is set.
        settings = self.otel.settings
        self.span_forwarder = (
            SpanForwarder(
                endpoint=settings.traces_endpoint,
                headers=settings.traces_headers,
                timeout=settings.traces_timeout,
                logger=logger_for("otlp"),
            )
            if settings is not None and settings.traces_endpoint
            else None
        )
        forward = self.span_forwarder.submit if self.span_forwarder is not None else None
        self.otlp_traces = TracesIngest(self.store, forward=forward)
        self._log = logger_for("app")

    def specs(self) -> list[ChildSpec]:
        """`otlp`, the metric exporter, when OTLP metrics export is configured, and
        `otlp-forward`, which forwards the spans received, when a traces endpoint is."""
        specs = []
        exporter = self.otel.metrics
        if exporter is not None:
            specs.append(self._wiring.child("otlp", exporter.run))
        if self.span_forwarder is not None:
            specs.append(self._wiring.child("otlp-forward", self.span_forwarder.run))
        return specs

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """[otlp] applies to the next request; report "metric retention" when a new window is
        longer than the store keeps."""
        self.otlp_metrics.options = _ingest_options(new)
        retention = metric_retention(new)
        if retention <= self.store.retention:
            return
        report.needs_restart.append("metric retention")
        self._log.warning(
            "a rule or metric check window of %s is longer than the metric store keeps (%s):"
            " it reads at most %s of samples until the process restarts",
            format_seconds(retention),
            format_seconds(self.store.retention),
            format_seconds(self.store.retention),
        )

    async def aclose(self) -> None:
        """Flush and shut the OpenTelemetry setup down (at most 5 s; shielded)."""
        if self.otel.enabled:
            with trio.move_on_after(5, shield=True):
                await trio.to_thread.run_sync(self.otel.shutdown, abandon_on_cancel=True)
