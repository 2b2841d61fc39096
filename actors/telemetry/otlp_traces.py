"""OTLP spans into RED metrics (rate, errors, duration) per service and span name.

`TracesIngest.ingest(request)` counts every span of a decoded `ExportTraceServiceRequest`:

| metric | kind | labels |
|---|---|---|
| traces_spans_total | counter | service, span, status (`ok`, `error`, `unset`) |
| traces_span_duration_seconds | histogram | service, span |

`service` is the resource's `service.name`, `span` the span's name, `status` its status code;
the duration is `end - start`. Spans themselves are not kept: rules, SLOs and `/metrics` see
these two metrics. When `forward` is given, each request (protobuf) is handed to it, so the
monitor can sit in front of a collector (`otlp_forward.SpanForwarder`).

Both metrics are the monitor's own (an OTLP metrics client cannot write them); spans of one
request are counted per series first, so a batch of a thousand spans of one operation costs two
store records. Pure apart from recording into the store: no I/O, no event loop.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING

from actors.telemetry.exceptions import TelemetryError
from actors.telemetry.otlp_ingest import IngestResult

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from actors.telemetry.store import MetricStore

__all__ = ["DURATION_BUCKETS", "SPANS_DURATION", "SPANS_TOTAL", "TracesIngest"]

SPANS_TOTAL = "traces_spans_total"
SPANS_DURATION = "traces_span_duration_seconds"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Status.StatusCode of trace.proto, written out (see otlp_ingest: no protobuf at import).
_STATUS = {
    1: "ok",  # STATUS_CODE_OK
    2: "error",  # STATUS_CODE_ERROR
}


class TracesIngest:
    """Derives RED metrics from spans into `store` (declares both metrics; see the module
    docstring); `forward(request)` (optional) receives every request after it is counted.

    Raises:
        MetricDeclarationError: the store already has one of the names declared otherwise.
    """

    def __init__(
        self,
        store: MetricStore,
        *,
        forward: Callable[[ExportTraceServiceRequest], None] | None = None,
    ) -> None:
        self.store = store
        self.forward = forward
        store.declare(
            SPANS_TOTAL,
            "counter",
            "Spans received over OTLP, by service, span name and status.",
            ("service", "span", "status"),
        )
        store.declare(
            SPANS_DURATION,
            "histogram",
            "Duration of the spans received over OTLP, in seconds.",
            ("service", "span"),
            DURATION_BUCKETS,
        )
        self._total = store.handle(SPANS_TOTAL)
        self._duration = store.handle(SPANS_DURATION)

    def ingest(self, request: ExportTraceServiceRequest) -> IngestResult:
        """Count every span of `request`, then forward it; never raises for what a client
        sends (a span ending before it starts is rejected)."""
        counts: dict[tuple[str, str, str], int] = {}
        durations: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        bounds = DURATION_BUCKETS
        rejected = 0
        for resource_spans in request.resource_spans:
            service = ""
            for kv in resource_spans.resource.attributes:
                if kv.key == "service.name":
                    service = kv.value.string_value
                    break
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    seconds = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
                    if seconds < 0:
                        rejected += 1
                        continue
                    status = _STATUS.get(span.status.code, "unset")
                    key = (service, span.name, status)
                    counts[key] = counts.get(key, 0) + 1
                    found = durations.get(key[:2])
                    if found is None:
                        found = durations[key[:2]] = ([0] * (len(bounds) + 1), [0.0])
                    found[0][bisect.bisect_left(bounds, seconds)] += 1
                    found[1][0] += seconds
        now = self.store.now()
        reasons: list[str] = []
        if rejected:
            reasons.append("a span ends before it starts")
        accepted = 0
        for key, n in counts.items():
            try:
                self._total.record(key, float(n), now)
            except TelemetryError as exc:  # pragma: no cover - label values are strings
                rejected += n
                reasons.append(str(exc))
            else:
                accepted += n
        for pair, (buckets, total) in durations.items():
            self._duration.record_histogram_counts(pair, buckets, total[0], now)
        if self.forward is not None:
            self.forward(request)
        return IngestResult(accepted, rejected, tuple(reasons[:5]), what="span")
