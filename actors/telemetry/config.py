"""Configuration of OpenTelemetry export ([telemetry]) and user-declared metrics ([[metrics]])."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from actors.configtypes import ConfigModel, Duration, Secret

__all__ = ["MetricDecl", "TelemetryConfig"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class TelemetryConfig(ConfigModel):
    """[telemetry]: OTLP export of traces and metrics; an empty endpoint disables export."""

    service_name: str = "blipee-os"
    environment: str = "production"
    otlp_endpoint: str = ""
    otlp_api_key: Secret = SecretStr("")
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    otlp_api_key_header: str = Field(default="api-key", min_length=1)
    """Header that carries `otlp_api_key` (e.g. "api-key", "x-honeycomb-team")."""
    metrics_export_interval: Duration = 60.0
    """How often the metric store is exported over OTLP."""


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
