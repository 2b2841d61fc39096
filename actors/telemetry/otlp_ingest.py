"""OTLP metrics into the metric store: names, units, labels and temporality, as plain functions.

What `POST /v1/metrics` does with a decoded `ExportMetricsServiceRequest` (`MetricsIngest.ingest`)
and the parts it is made of, all without I/O or an event loop:

Names (the OpenTelemetry-to-Prometheus compatibility specification, `metric_name`): characters
outside `[a-zA-Z0-9_:]` become `_` (runs of `_` collapse to one, a leading digit gets `_`), the
unit becomes a suffix unless the name already holds it (`s` -> `_seconds`, `ms` ->
`_milliseconds`, `By` -> `_bytes`, `foo/bar` -> `_foo_per_bar`, `{...}` dropped; `unit_suffix`),
a monotonic sum ends in `_total`, a gauge of unit `1` in `_ratio`. Attribute keys become label
names the same way (`label_name`); two keys that meet in one name have their values joined by
`;` in the order of the keys. Values that are not strings are written as the attribute
specification says (`true`, `42`, `1.5`, JSON for arrays and maps, base64 for bytes).

Resource: `service.name` (with `service.namespace`: `namespace/name`) becomes the `job` label,
`service.instance.id` the `instance` label, and each resource attribute named in
`IngestOptions.resource_attributes` (`[otlp] resource_attributes`) a label of its own; the other
resource attributes and the instrumentation scope are dropped.

Kinds and temporality:
- gauge -> gauge (set);
- sum, monotonic, cumulative -> counter, its running total (`set_total`: the first total of a
  series is its baseline, a lower total a reset);
- sum, monotonic, delta -> counter, the value added (`record`);
- sum, not monotonic, cumulative -> gauge (an up-down counter's value); delta -> rejected;
- histogram (explicit buckets), cumulative or delta -> histogram (`record_histogram_counts`);
  bucket bounds that differ from the metric's are mapped onto its buckets, each OTLP bucket
  into the metric's bucket holding its upper bound (exact when the metric's bounds are among
  the OTLP ones, otherwise an observation may count in a higher bucket, never a lower one);
- exponential histogram, summary -> rejected, with the reason.

A metric already declared (the seed catalogue, `[[metrics]]`, or one an earlier request declared)
keeps its declaration: a data point fills its declared labels (an absent one is the empty value,
which Prometheus reads as absent; `job`, `instance` and the selected resource labels only where
declared), and an attribute it does not declare rejects the point. So `agent.executions` sent as
a monotonic sum reaches `agent_executions_total{agent,status}`, the series the events API feeds.
A new name is declared on first sight (`external`: an application metric) with `job`,
`instance`, the selected resource labels and every attribute key its points carry in that
request, at most `IngestOptions.max_metrics` of them per process. The monitor's own metrics are
refused; a name declared as another kind, the store's series budgets (a new series beyond them is
dropped and counted in `metric_series_dropped_total`) and a value the store refuses reject the
data point, with the reason. The store hashes anonymised labels (`[security] anonymize_labels`)
as for every sample.

Every sample is recorded at the store clock's time of the request (the points' own timestamps are
not used: a client's clock cannot move a series ahead of the monitor's).
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from actors.telemetry.exceptions import DataPointError, TelemetryError

if TYPE_CHECKING:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    from actors.telemetry.store import MetricHandle, MetricStore

__all__ = [
    "DEFAULT_MAX_METRICS",
    "IngestOptions",
    "IngestResult",
    "MetricsIngest",
    "attribute_text",
    "label_name",
    "metric_name",
    "rebucket",
    "resource_labels",
    "unit_suffix",
]

Kind = Literal["counter", "gauge", "histogram"]
DEFAULT_MAX_METRICS = 1000
"""Metrics an OTLP client may declare by sending them (the store bounds series, not metrics)."""
_MAX_REASONS = 5
_NAME_CACHE = 4096

# The protocol's numbers (metrics.proto), written out so that importing this module does not
# load protobuf and the OTLP messages (~2.3 MB): only a request to the receiver does.
_CUMULATIVE = 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
_DELTA = 1  # AGGREGATION_TEMPORALITY_DELTA
_NO_RECORDED_VALUE = 1  # DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]+")
_UNDERSCORES = re.compile(r"__+")
_BRACES = re.compile(r"\{[^}]*\}")

_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
    "1": "",
}
_PER_UNITS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


def _clean(text: str, invalid: re.Pattern[str]) -> str:
    return _UNDERSCORES.sub("_", invalid.sub("_", text))


def unit_suffix(unit: str) -> str:
    """The Prometheus suffix of an OTLP unit (UCUM): `s` -> `seconds`, `By/s` ->
    `bytes_per_second`, `{request}` or `1` -> "" (a count or ratio has no unit suffix; `_ratio`
    is the gauge's, see `metric_name`), an unknown unit as written, cleaned to a name."""
    main, _, per = _BRACES.sub("", unit).strip().partition("/")
    main, per = main.strip(), per.strip()
    words = [_UNITS.get(main, main)] if main else []
    if per:
        words += ["per", _PER_UNITS.get(per, _UNITS.get(per, per))]
    suffix = _clean("_".join(w for w in words if w), _INVALID_LABEL).strip("_")
    return "" if suffix == "per" else suffix


def metric_name(name: str, unit: str, kind: Kind) -> str:
    """The Prometheus name of an OTLP metric `name` of `unit` recorded as `kind` (see the module
    docstring): `http.server.duration`, `s`, histogram -> `http_server_duration_seconds`;
    `agent.executions`, `1`, counter -> `agent_executions_total`."""
    tokens = [t for t in _clean(name, _INVALID_NAME).split("_") if t]
    suffix = unit_suffix(unit)
    if suffix:
        words = suffix.split("_")
        if tokens[-len(words) :] != words and suffix not in tokens:
            tokens += words
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    elif kind == "gauge" and unit.strip() == "1":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    out = "_".join(tokens)
    return f"_{out}" if out[:1].isdigit() else out


def label_name(key: str) -> str:
    """The Prometheus label name of an attribute key: invalid characters -> `_` (runs collapse),
    a leading digit gets `key_`, a leading `__` (reserved) becomes `_`; "" stays "" (invalid)."""
    out = _clean(key, _INVALID_LABEL)
    if out[:1].isdigit():
        return f"key_{out}"
    return out


def _jsonable(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "array_value":
        return [_jsonable(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _jsonable(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which is None:
        return None
    return getattr(value, which)


def attribute_text(value: AnyValue) -> str:
    """An attribute value as a label value (the attribute specification's string forms)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return str(value.int_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "double_value":
        return repr(value.double_value)
    if which is None:
        return ""
    return json.dumps(_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def _labels(attributes: Sequence[KeyValue], names: dict[str, str]) -> dict[str, str]:
    """Attributes as labels; keys that meet in one label name join their values with `;`, in
    the order of the keys. `names` caches `label_name` (filled here, bounded)."""
    out: dict[str, str] = {}
    clash = False
    for kv in attributes:
        key = kv.key
        name = names.get(key)
        if name is None:
            if len(names) >= _NAME_CACHE:
                names.clear()
            name = names[key] = label_name(key)
        clash = clash or name in out
        out[name] = attribute_text(kv.value)
    if clash:
        groups: dict[str, list[tuple[str, str]]] = {}
        for kv in attributes:
            groups.setdefault(label_name(kv.key), []).append((kv.key, attribute_text(kv.value)))
        out = {name: ";".join(text for _, text in sorted(pairs)) for name, pairs in groups.items()}
    return out


def resource_labels(attributes: Iterable[KeyValue], selected: Sequence[str]) -> dict[str, str]:
    """The labels a resource gives each of its points: `job` (`service.namespace/service.name`,
    or `service.name`), `instance` (`service.instance.id`, else ""), and each attribute of
    `selected` that the resource has, under its label name."""
    values = {kv.key: attribute_text(kv.value) for kv in attributes}
    service = values.get("service.name", "")
    namespace = values.get("service.namespace", "")
    out = {name: values[key] for key in selected if key in values for name in (label_name(key),)}
    out["job"] = f"{namespace}/{service}" if namespace else service
    out["instance"] = values.get("service.instance.id", "")
    return out


def rebucket(
    bounds: Sequence[float], counts: Sequence[int], target: Sequence[float]
) -> list[int] | None:
    """OTLP bucket `counts` (upper `bounds`, +Inf last) as counts of the `target` buckets: each
    OTLP bucket goes to the target bucket that holds its upper bound. None when `counts` does
    not have one count per bucket."""
    if len(counts) != len(bounds) + 1:
        return None
    if len(bounds) == len(target) and tuple(bounds) == tuple(target):
        return list(counts)
    out = [0] * (len(target) + 1)
    last = len(counts) - 1
    for i, count in enumerate(counts):
        if count:
            out[len(target) if i == last else bisect.bisect_left(target, bounds[i])] += count
    return out


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """`[otlp]`: resource attributes kept as labels, and the metrics clients may declare."""

    resource_attributes: tuple[str, ...] = ()
    max_metrics: int = DEFAULT_MAX_METRICS


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one request did: data points (or spans: `what`) recorded and rejected, and why (a
    few distinct reasons, the first ones met)."""

    accepted: int
    rejected: int
    reasons: tuple[str, ...] = ()
    what: str = "data point"

    def message(self) -> str:
        """The OTLP `partial_success.error_message` ("" when nothing was rejected)."""
        if not self.rejected:
            return ""
        return f"{self.rejected} {self.what}(s) rejected: " + "; ".join(self.reasons)


class _Tally:
    __slots__ = ("accepted", "reasons", "rejected")

    def __init__(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.reasons: list[str] = []

    def reject(self, count: int, reason: str) -> None:
        self.rejected += count
        if len(self.reasons) < _MAX_REASONS and reason not in self.reasons:
            self.reasons.append(reason)


_UNSUPPORTED = {
    "exponential_histogram": (
        "exponential histograms are not supported: configure the SDK's explicit bucket"
        " histogram aggregation (e.g. OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
        "=explicit_bucket_histogram)"
    ),
    "summary": "summaries are not supported: send histograms",
}


class MetricsIngest:
    """Records decoded OTLP metrics into `store` (see the module docstring). One per process:
    it counts the metrics clients declared against `options.max_metrics`. Same thread as the
    store."""

    def __init__(self, store: MetricStore, options: IngestOptions | None = None) -> None:
        self.store = store
        self.options = options or IngestOptions()
        self.declared = 0
        self._names: dict[str, str] = {}

    def ingest(self, request: ExportMetricsServiceRequest) -> IngestResult:
        """Record every data point of `request`; never raises for what a client sends."""
        tally = _Tally()
        now = self.store.now()
        selected = self.options.resource_attributes
        for resource_metrics in request.resource_metrics:
            resource = resource_labels(resource_metrics.resource.attributes, selected)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self._metric(metric, resource, now, tally)
        return IngestResult(tally.accepted, tally.rejected, tuple(tally.reasons))

    def _metric(
        self, metric: metrics_pb2.Metric, resource: dict[str, str], now: float, tally: _Tally
    ) -> None:
        which = metric.WhichOneof("data")
        if which is None:
            return
        data = getattr(metric, which)
        points = data.data_points
        if not points:
            return
        shown = metric.name[:200]
        if which in _UNSUPPORTED:
            tally.reject(len(points), f"{shown}: {_UNSUPPORTED[which]}")
            return
        kind: Kind
        if which == "gauge":
            kind = "gauge"
        elif which == "histogram":
            kind = "histogram"
        elif data.is_monotonic:
            kind = "counter"
        else:
            kind = "gauge"
            if data.aggregation_temporality != _CUMULATIVE:
                reason = "a non-monotonic sum must be cumulative (delta has no Prometheus meaning)"
                tally.reject(len(points), f"{shown}: {reason}")
                return
        temporality = getattr(data, "aggregation_temporality", _CUMULATIVE)
        if temporality not in (_CUMULATIVE, _DELTA):
            tally.reject(len(points), f"{shown}: aggregation temporality unspecified")
            return
        name = metric_name(metric.name, metric.unit, kind)
        handle = self._handle(name, kind, metric, resource, points, tally)
        if handle is None:
            return
        dropped = handle.dropped
        names = handle.labelnames
        position = {n: i for i, n in enumerate(names)}
        slots: dict[str, int | None] = {}
        # The resource's labels where declared; a point's attributes take precedence.
        base = [resource.get(n, "") for n in names]
        cumulative = temporality == _CUMULATIVE
        for point in points:
            if point.flags & _NO_RECORDED_VALUE:
                tally.accepted += 1
                continue
            values = self._values(point.attributes, position, slots, base)
            if isinstance(values, str):
                tally.reject(1, f"{name}: {values}")
                continue
            try:
                if kind == "histogram":
                    self._histogram(handle, values, point, now, cumulative)
                elif kind == "counter" and cumulative:
                    handle.set_total(values, point.as_double or float(point.as_int), now)
                else:
                    handle.record(values, point.as_double or float(point.as_int), now)
            except TelemetryError as exc:
                tally.reject(1, str(exc))
                continue
            tally.accepted += 1
        if handle.dropped > dropped:
            lost = handle.dropped - dropped
            tally.accepted -= lost
            tally.reject(lost, f"{name}: series limit reached (metric_series_dropped_total)")

    def _values(
        self,
        attributes: Sequence[KeyValue],
        position: dict[str, int],
        slots: dict[str, int | None],
        base: list[str],
    ) -> tuple[str, ...] | str:
        """A point's label values in declared order (`position`: label -> index), or why it
        cannot have them. `slots` maps attribute keys to positions (None: not declared), filled
        here for the metric being read."""
        values = base.copy()
        seen = 0
        for kv in attributes:
            key = kv.key
            try:
                i = slots[key]
            except KeyError:
                i = slots[key] = position.get(label_name(key))
            if i is None:
                labels = _labels(attributes, self._names)
                extra = sorted(k for k in labels if k not in position)
                return f"label(s) {extra} not among {list(position)}"
            bit = 1 << i
            if seen & bit:  # two keys meet in one label: the slow path joins them
                labels = _labels(attributes, self._names)
                return tuple([labels.get(n, base[j]) for n, j in position.items()])
            seen |= bit
            value = kv.value
            text = value.string_value
            if not text and value.WhichOneof("value") != "string_value":
                text = attribute_text(value)
            values[i] = text
        return tuple(values)

    def _histogram(
        self,
        handle: MetricHandle,
        values: tuple[str, ...],
        point: metrics_pb2.HistogramDataPoint,
        now: float,
        cumulative: bool,
    ) -> None:
        counts = rebucket(point.explicit_bounds, point.bucket_counts, handle.buckets)
        if counts is None:
            raise DataPointError(
                handle.name,
                f"{len(point.bucket_counts)} bucket counts for {len(point.explicit_bounds)}"
                " bounds (one more count than bounds expected)",
            )
        if sum(counts) != point.count:
            raise DataPointError(handle.name, "the bucket counts do not add up to the count")
        handle.record_histogram_counts(
            values,
            counts,
            point.sum,
            now,
            cumulative=cumulative,
            low=point.min if point.HasField("min") else None,
            high=point.max if point.HasField("max") else None,
        )

    def _handle(
        self,
        name: str,
        kind: Kind,
        metric: metrics_pb2.Metric,
        resource: dict[str, str],
        points: Sequence[Any],
        tally: _Tally,
    ) -> MetricHandle | None:
        """The metric `name` as declared, or declared now; None (points rejected) if it cannot
        take these points."""
        store = self.store
        if name in store:
            handle = store.handle(name)
            if not handle.external:
                tally.reject(len(points), f"{name}: belongs to the monitor and cannot be written")
                return None
            if handle.kind != kind:
                tally.reject(
                    len(points),
                    f"{name}: declared as a {handle.kind}, sent as {_sent_as(kind)}",
                )
                return None
            return handle
        if self.declared >= self.options.max_metrics:
            tally.reject(
                len(points),
                f"{name}: too many metrics declared over OTLP ({self.options.max_metrics},"
                " [otlp] max_metrics)",
            )
            return None
        keys: dict[str, None] = dict.fromkeys(resource)
        for point in points:
            for kv in point.attributes:
                keys[label_name(kv.key)] = None
        buckets: tuple[float, ...] | None = None
        if kind == "histogram":
            buckets = _first_bounds(points)
            if not buckets:
                tally.reject(len(points), f"{name}: a histogram needs explicit bucket bounds")
                return None
        help_text = metric.description.strip() or f"{metric.name} (sent over OTLP)."
        try:
            store.declare(name, kind, help_text[:1024], list(keys), buckets, external=True)
        except TelemetryError as exc:
            tally.reject(len(points), str(exc))
            return None
        self.declared += 1
        return store.handle(name)


def _first_bounds(points: Sequence[Any]) -> tuple[float, ...]:
    for point in points:
        bounds = tuple(point.explicit_bounds)
        if bounds and all(math.isfinite(b) for b in bounds):
            return bounds
    return ()


def _sent_as(kind: Kind) -> str:
    return {"counter": "a monotonic sum", "gauge": "a gauge", "histogram": "a histogram"}[kind]
