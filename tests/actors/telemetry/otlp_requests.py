"""OTLP request builders for the receiver's tests (protobuf messages, as an SDK sends them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2 as t

__all__ = [
    "CUMULATIVE",
    "DELTA",
    "attrs",
    "gauge",
    "histogram",
    "metrics_request",
    "sum_",
    "traces_request",
]

CUMULATIVE = m.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = m.AGGREGATION_TEMPORALITY_DELTA
Attrs = Mapping[str, str | int | float | bool]


def attrs(values: Attrs) -> list[KeyValue]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=value)
        out.append(KeyValue(key=key, value=any_value))
    return out


def _number(value: float, labels: Attrs) -> m.NumberDataPoint:
    point = m.NumberDataPoint(attributes=attrs(labels), time_unix_nano=1)
    if isinstance(value, int):
        point.as_int = value
    else:
        point.as_double = value
    return point


def gauge(name: str, points: Sequence[tuple[float, Attrs]], unit: str = "") -> m.Metric:
    return m.Metric(
        name=name, unit=unit, gauge=m.Gauge(data_points=[_number(v, a) for v, a in points])
    )


def sum_(
    name: str,
    points: Sequence[tuple[float, Attrs]],
    *,
    monotonic: bool = True,
    temporality: int = CUMULATIVE,
    unit: str = "",
) -> m.Metric:
    return m.Metric(
        name=name,
        unit=unit,
        sum=m.Sum(
            data_points=[_number(v, a) for v, a in points],
            is_monotonic=monotonic,
            aggregation_temporality=temporality,  # type: ignore[arg-type]
        ),
    )


def histogram(
    name: str,
    points: Sequence[tuple[Sequence[int], float, Attrs]],
    bounds: Sequence[float],
    *,
    temporality: int = CUMULATIVE,
    unit: str = "s",
) -> m.Metric:
    return m.Metric(
        name=name,
        unit=unit,
        histogram=m.Histogram(
            data_points=[
                m.HistogramDataPoint(
                    attributes=attrs(a),
                    count=sum(counts),
                    sum=total,
                    bucket_counts=list(counts),
                    explicit_bounds=list(bounds),
                )
                for counts, total, a in points
            ],
            aggregation_temporality=temporality,  # type: ignore[arg-type]
        ),
    )


def metrics_request(
    *metrics: m.Metric, resource: Attrs | None = None
) -> ExportMetricsServiceRequest:
    resource = {"service.name": "blipee-os"} if resource is None else resource
    return ExportMetricsServiceRequest(
        resource_metrics=[
            m.ResourceMetrics(
                resource=Resource(attributes=attrs(resource)),
                scope_metrics=[m.ScopeMetrics(metrics=list(metrics))],
            )
        ]
    )


def traces_request(
    spans: Sequence[tuple[str, float, int]], service: str = "blipee-os"
) -> ExportTraceServiceRequest:
    """Spans as (name, duration seconds, status code)."""
    return ExportTraceServiceRequest(
        resource_spans=[
            t.ResourceSpans(
                resource=Resource(attributes=attrs({"service.name": service})),
                scope_spans=[
                    t.ScopeSpans(
                        spans=[
                            t.Span(
                                trace_id=bytes(16),
                                span_id=bytes(8),
                                name=name,
                                start_time_unix_nano=1_000_000_000,
                                end_time_unix_nano=1_000_000_000 + int(seconds * 1e9),
                                status=t.Status(code=code),  # type: ignore[arg-type]
                            )
                            for name, seconds, code in spans
                        ]
                    )
                ],
            )
        ]
    )
