"""Configuration of OpenTelemetry export ([telemetry]) and user-declared metrics ([[metrics]])."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from actors.configtypes import ConfigModel, Duration, Secret

__all__ = ["MetricDecl", "OtlpConfig", "TelemetryConfig"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class TelemetryConfig(ConfigModel):
    """[telemetry]: OTLP export of traces and metrics.

    Every key is optional: an unset key (empty string, or absent) falls back to the standard
    OpenTelemetry environment variable (`actors.telemetry.otel.resolve_otel` has the table), so
    an operator's OTEL_* settings work as they do for any SDK, and a key set here wins. Export
    is off when neither `otlp_endpoint` nor an OTEL_EXPORTER_OTLP_*ENDPOINT variable is set.
    """

    service_name: str = ""
    """`service.name`; unset: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, else "blipee-os"."""
    environment: str = ""
    """`deployment.environment`; unset: OTEL_ENVIRONMENT, OTEL_RESOURCE_ATTRIBUTES, else
    "production"."""
    otlp_endpoint: str = ""
    """Base URL (`/v1/traces`, `/v1/metrics` appended); unset: OTEL_EXPORTER_OTLP_*ENDPOINT."""
    otlp_api_key: Secret = SecretStr("")
    otlp_api_key_header: str = Field(default="api-key", min_length=1)
    """Header that carries `otlp_api_key` (e.g. "api-key", "x-honeycomb-team")."""
    otlp_protocol: Literal["http/protobuf"] | None = None
    """The only protocol supported; unset: OTEL_EXPORTER_OTLP_PROTOCOL (which must say the same)."""
    otlp_timeout: Duration | None = None
    """Per export request; unset: OTEL_EXPORTER_OTLP_TIMEOUT (seconds), else 10 s."""
    resource_attributes: dict[str, str] = Field(default_factory=dict)
    """Extra resource attributes, over those of OTEL_RESOURCE_ATTRIBUTES."""
    trace_sample_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    """Set: `parentbased_traceidratio` with this ratio; unset: OTEL_TRACES_SAMPLER and
    OTEL_TRACES_SAMPLER_ARG, else `parentbased_always_on`."""
    metrics_export_interval: Duration | None = None
    """How often the store is exported; unset: OTEL_METRIC_EXPORT_INTERVAL (ms), else 60 s."""

    @field_validator("otlp_timeout", "metrics_export_interval")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < float("inf"):
            raise ValueError("must be longer than 0s")
        return value


class OtlpConfig(ConfigModel):
    """[otlp]: the OTLP/HTTP receiver (`POST /v1/metrics`, `POST /v1/traces`).

    `service.name` and `service.instance.id` always become the `job` and `instance` labels; the
    resource attributes listed here become labels too (`deployment.environment` ->
    `deployment_environment`) of the metrics a client declares by sending them.
    """

    resource_attributes: tuple[str, ...] = ()
    """Resource attributes kept as labels, e.g. ["deployment.environment", "host.name"]."""
    max_metrics: int = Field(default=1000, ge=0)
    """How many new metric names OTLP clients may declare (the store's budgets bound series)."""

    @field_validator("resource_attributes")
    @classmethod
    def _attributes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if not key.strip():
                raise ValueError("a resource attribute name cannot be empty")
            if key in ("service.name", "service.namespace", "service.instance.id"):
                raise ValueError(f"{key} is always kept (as job or instance); do not list it")
        return value


class MetricDecl(ConfigModel):
    """[[metrics]]: a custom metric the application records (over HTTP or the Python API)."""

    name: str
    type: Literal["counter", "gauge", "histogram"]
    help: str = ""
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _METRIC_NAME.match(value):
            raise ValueError(f"invalid metric name {value!r}; use [a-zA-Z_:][a-zA-Z0-9_:]*")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for label in value:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r}")
        if len(set(value)) != len(value):
            raise ValueError("label names must be unique")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MetricDecl:
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"a counter's name must end in '_total' (e.g. '{self.name}_total')")
        if self.buckets is not None:
            if self.type != "histogram":
                raise ValueError("buckets are only for histograms")
            if list(self.buckets) != sorted(set(self.buckets)) or not self.buckets:
                raise ValueError("buckets must be a non-empty, strictly increasing list")
        return self
