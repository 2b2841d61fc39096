"""Errors raised by the telemetry package.

Exception tree::

    TelemetryError
    ├── UnknownMetricError        record/aggregate on a name that was never declared
    ├── ProtectedMetricError      an application writing one of the monitor's own metrics
    ├── MetricDeclarationError    a declaration that is invalid or conflicts with an earlier one
    ├── LabelError                labels that do not match the metric's label names
    ├── SampleError               a value the metric cannot take (negative counter step, NaN)
    ├── AggregateError            an unknown aggregate name or a negative window
    ├── DataPointError            an OTLP data point that does not hold together
    └── OtelEnvError              an OTEL_* environment variable with a value that cannot be used

Every error builds its own message from the context it carries.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AggregateError",
    "DataPointError",
    "LabelError",
    "MetricDeclarationError",
    "OtelEnvError",
    "ProtectedMetricError",
    "SampleError",
    "TelemetryError",
    "UnknownMetricError",
]


class TelemetryError(Exception):
    """Base of every telemetry error."""


class UnknownMetricError(TelemetryError):
    """`name` was never declared in the metric store."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown metric {name!r}; declare it first")


class ProtectedMetricError(TelemetryError):
    """`name` is one of the monitor's own metrics (health, alerting, notify...), which
    applications cannot write: forging `health_check_up` could hide an outage."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"metric {name!r} belongs to the monitor and cannot be recorded as a business metric"
        )


class MetricDeclarationError(TelemetryError):
    """A declaration is invalid (bad name, kind, buckets) or conflicts with an earlier one."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"metric {name!r}: {reason}")


class LabelError(TelemetryError):
    """The labels given do not match the label names the metric was declared with."""

    def __init__(self, name: str, expected: Iterable[str], got: Iterable[str]) -> None:
        self.name = name
        self.expected = tuple(expected)
        self.got = tuple(got)
        super().__init__(
            f"metric {name!r} takes labels {sorted(self.expected)}, got {sorted(self.got)}"
        )


class AggregateError(TelemetryError):
    """An aggregate name that is not supported, or an invalid window."""

    def __init__(self, aggregate: str, reason: str) -> None:
        self.aggregate = aggregate
        self.reason = reason
        super().__init__(f"aggregate {aggregate!r}: {reason}")


class DataPointError(TelemetryError):
    """An OTLP data point that does not hold together (bucket counts that do not match its
    bounds or its count), for metric `name`."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class SampleError(TelemetryError):
    """A value the metric cannot take: NaN or infinite, or a negative counter increment."""

    def __init__(self, name: str, value: float, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"metric {name!r}: value {value!r} rejected: {reason}")


class OtelEnvError(TelemetryError):
    """An OpenTelemetry environment variable in use has a value that cannot be used.

    `value` is None when it must not be shown (OTEL_EXPORTER_OTLP_HEADERS carries credentials).
    """

    def __init__(self, variable: str, value: str | None, reason: str) -> None:
        self.variable = variable
        self.value = value
        self.reason = reason
        shown = f"={value!r}" if value is not None else ""
        super().__init__(f"environment variable {variable}{shown}: {reason}")
