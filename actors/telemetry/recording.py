"""The recording API: what the application (embedded, or through `POST /api/v1/events`) calls.

`Telemetry` turns domain events into samples of the catalogue (`catalog`) in the one metric store,
feeds the agent registry, and makes spans. Label values of `security.anonymize_labels` are hashed
(`anonymize`) before anything is kept, logged or put on a span: the metric store hashes every
sample's labels itself (its `anonymizer`, the one point where samples enter), and `Telemetry`
uses the same anonymiser for what does not go through the store (span attributes, the agent
registry's names).

Event -> metrics:
- `record_agent_execution(agent, duration_seconds, success)`: agent_executions_total{agent,
  status="success"|"error"} +1, agent_execution_duration_seconds{agent} observes the duration,
  agent_errors_total{agent} +1 when it failed; the agent registry records the execution.
- `record_heartbeat(agent)`: the agent registry only (no metric).
- `record_ml_prediction(model, latency_seconds, confidence=None)`: ml_predictions_total +1,
  ml_prediction_latency_seconds observes; ml_prediction_confidence observes when given (0..1).
- `record_ml_accuracy(model, accuracy)`: ml_model_accuracy set (0..1).
- `record_api_request(endpoint, method, status, duration_seconds)`: api_requests_total
  {endpoint, method (upper case), status} +1, api_request_duration_seconds observes, and
  api_errors_total +1 for server errors (status >= 500): a 4xx is the client's error and an
  "error rate" alert on it would page for someone else's bug; 4xx stay visible by status.
- `record_user_message(intent, organization)`: user_messages_total +1.
- `record_business_metric(name, value, labels)`: the seed's names map as follows (value is an
  amount to add for counters, the new value for gauges):

  | name (aliases)                          | metric (value)                    | labels       |
  |-----------------------------------------|-----------------------------------|--------------|
  | emissions, emissions_tracked_kg(_total) | emissions_tracked_kg_total (+kg)  | organization,|
  |                                         |                                   | scope        |
  | network_connections(_active)            | network_connections_active (set)  | organization |
  | benchmarks, benchmarks_performed(_total)| benchmarks_performed_total (+n)   | organization |
  | organizations, organizations_active     | organizations_active (set)        | (none)       |
  | user_messages(_total)                   | user_messages_total (+n)          | intent,      |
  |                                         |                                   | organization |

  Any other name must be an application metric (the seed catalogue, `[[metrics]]`, or one made
  with `counter`/`gauge`/`histogram` below) and is recorded as its kind; the monitor's own
  metrics (health_check_up, alerts_firing, outbox_pending...) are refused.

Custom metrics: `counter(name, help, labelnames)`, `gauge(...)`, `histogram(..., buckets)` declare
and return a small handle with `add` / `set` / `observe`.

Tracing: `trace_async(name, fn, attributes)` awaits `fn()` inside a span; `span(name, attributes)`
is the context-manager form and `traced(name)` the decorator (sync or async functions).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast

from opentelemetry.trace import NoOpTracer, Span, Tracer

from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.exceptions import ProtectedMetricError, SampleError, UnknownMetricError

if TYPE_CHECKING:
    from actors.telemetry.agents import AgentRegistry
    from actors.telemetry.store import MetricHandle, MetricStore

__all__ = ["BUSINESS_METRICS", "CustomMetric", "Recorder", "Telemetry"]

P = ParamSpec("P")
R = TypeVar("R")

BUSINESS_METRICS: dict[str, str] = {
    "emissions": "emissions_tracked_kg_total",
    "emissions_tracked_kg": "emissions_tracked_kg_total",
    "emissions_tracked_kg_total": "emissions_tracked_kg_total",
    "network_connections": "network_connections_active",
    "network_connections_active": "network_connections_active",
    "benchmarks": "benchmarks_performed_total",
    "benchmarks_performed": "benchmarks_performed_total",
    "benchmarks_performed_total": "benchmarks_performed_total",
    "organizations": "organizations_active",
    "organizations_active": "organizations_active",
    "user_messages": "user_messages_total",
    "user_messages_total": "user_messages_total",
}
"""Seed business-metric names (and aliases) -> catalogue metric."""


class Recorder(Protocol):
    """What records a sample by metric name: `Telemetry`, or a thread-safe queue in front of it."""

    def record(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one sample of the metric `name`."""
        ...


class CustomMetric:
    """A declared metric, recorded through `recorder` (labels anonymised like every other).

    Errors are the recorder's: through `Telemetry` a bad value raises `SampleError` or
    `LabelError` at once; through the embedding API's thread-safe recorder the call is queued
    and a bad value is logged and counted instead.
    """

    __slots__ = ("_recorder", "name")

    def __init__(self, recorder: Recorder, name: str) -> None:
        self._recorder = recorder
        self.name = name

    def add(self, value: float = 1.0, labels: Mapping[str, str] | None = None) -> None:
        """Counter: add `value` (>= 0)."""
        self._recorder.record(self.name, value, labels)

    def set(self, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Gauge: set `value`."""
        self._recorder.record(self.name, value, labels)

    def observe(self, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Histogram: observe `value`."""
        self._recorder.record(self.name, value, labels)


class Telemetry:
    """The recording API over one `MetricStore` (which must hold the seed catalogue).

    `agents` (optional) is fed by agent executions and heartbeats; `tracer` makes spans (default:
    a no-op tracer, no cost). Label values are anonymised by the store (`MetricStore(anonymizer=
    ...)`); `Telemetry` applies the store's anonymiser to span attributes and agent names.

    Every `record_*` raises `SampleError` for values the metric cannot take (negative durations,
    NaN, confidence or accuracy outside 0..1) before recording anything.
    """

    def __init__(
        self,
        *,
        store: MetricStore,
        agents: AgentRegistry | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        """Raises: UnknownMetricError: the store lacks the seed catalogue (`declare_catalog`)."""
        self.store = store
        self.agents = agents
        self.anonymizer: Anonymizer = store.anonymizer or Anonymizer()
        self.tracer: Tracer = tracer or NoOpTracer()
        self._now = store.now
        h = store.handle
        self._agent_exec = h("agent_executions_total")
        self._agent_err = h("agent_errors_total")
        self._agent_dur = h("agent_execution_duration_seconds")
        self._ml_pred = h("ml_predictions_total")
        self._ml_lat = h("ml_prediction_latency_seconds")
        self._ml_conf = h("ml_prediction_confidence")
        self._ml_acc = h("ml_model_accuracy")
        self._api_req = h("api_requests_total")
        self._api_err = h("api_errors_total")
        self._api_dur = h("api_request_duration_seconds")
        self._user_msg = h("user_messages_total")
        # The registry is not the store: it gets the agent's token from here.
        self._anon_agent = "agent" in self.anonymizer.labels

    # -- generic -----------------------------------------------------------------------------

    def _values(self, handle: MetricHandle, labels: Mapping[str, str] | None) -> tuple[str, ...]:
        names = handle.labelnames
        if not names and not labels:
            return ()
        return self.store.label_values(handle, labels)

    def record(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record into any declared metric (counter: add, gauge: set, histogram: observe).

        Raises:
            UnknownMetricError, LabelError, SampleError (see `MetricStore.record`).
        """
        handle = self.store.handle(name)
        handle.record(
            self._values(handle, labels), value, self._now() if timestamp is None else timestamp
        )

    # -- the seed's events -------------------------------------------------------------------

    def record_agent_execution(self, agent: str, duration_seconds: float, success: bool) -> None:
        """One finished agent execution. Raises: SampleError: negative or non-finite duration."""
        if not 0.0 <= duration_seconds < float("inf"):
            raise SampleError(
                "agent_execution_duration_seconds", duration_seconds, "must be finite and >= 0"
            )
        t = self._now()
        key = (agent,)
        self._agent_exec.record((agent, "success" if success else "error"), 1.0, t)
        self._agent_dur.record(key, duration_seconds, t)
        if not success:
            self._agent_err.record(key, 1.0, t)
        if self.agents is not None:
            if self._anon_agent:
                agent = self.anonymizer.hash(agent)
            self.agents.execution(agent, success, t)

    def record_heartbeat(self, agent: str) -> None:
        """`agent` is alive (agent registry only)."""
        if self.agents is not None:
            if self._anon_agent:
                agent = self.anonymizer.hash(agent)
            self.agents.heartbeat(agent, self._now())

    def record_ml_prediction(
        self, model: str, latency_seconds: float, confidence: float | None = None
    ) -> None:
        """One prediction. Raises: SampleError: negative latency, confidence outside 0..1."""
        if not 0.0 <= latency_seconds < float("inf"):
            raise SampleError(
                "ml_prediction_latency_seconds", latency_seconds, "must be finite and >= 0"
            )
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise SampleError("ml_prediction_confidence", confidence, "must be within 0..1")
        t = self._now()
        key = (model,)
        self._ml_pred.record(key, 1.0, t)
        self._ml_lat.record(key, latency_seconds, t)
        if confidence is not None:
            self._ml_conf.record(key, confidence, t)

    def record_ml_accuracy(self, model: str, accuracy: float) -> None:
        """Latest accuracy of `model`. Raises: SampleError: outside 0..1."""
        if not 0.0 <= accuracy <= 1.0:
            raise SampleError("ml_model_accuracy", accuracy, "must be within 0..1")
        self._ml_acc.record((model,), accuracy, self._now())

    def record_api_request(
        self, endpoint: str, method: str, status: int, duration_seconds: float
    ) -> None:
        """One API request served by the app; status >= 500 also counts as an API error.

        Raises:
            SampleError: negative or non-finite duration, status outside 100..599.
        """
        if not 0.0 <= duration_seconds < float("inf"):
            raise SampleError(
                "api_request_duration_seconds", duration_seconds, "must be finite and >= 0"
            )
        if not 100 <= status <= 599:
            raise SampleError("api_requests_total", status, "status must be within 100..599")
        t = self._now()
        method = method.upper()
        status_text = str(status)
        key = (endpoint, method)
        self._api_req.record((endpoint, method, status_text), 1.0, t)
        self._api_dur.record(key, duration_seconds, t)
        if status >= 500:
            self._api_err.record(key, 1.0, t)

    def record_user_message(self, intent: str, organization: str) -> None:
        """One user message processed."""
        self._user_msg.record((intent, organization), 1.0, self._now())

    def record_business_metric(
        self, name: str, value: float, labels: Mapping[str, str] | None = None
    ) -> None:
        """A business KPI by seed name (see the module docstring's table) or declared name.

        Raises:
            UnknownMetricError: neither a seed business name nor a declared metric.
            ProtectedMetricError: one of the monitor's own metrics.
            LabelError: the labels do not fit the metric.
            SampleError: a value the metric cannot take.
        """
        metric = BUSINESS_METRICS.get(name, name)
        if metric not in self.store:
            raise UnknownMetricError(name)
        if not self.store.handle(metric).external:
            raise ProtectedMetricError(metric)
        self.record(metric, value, labels)

    # -- custom metrics ----------------------------------------------------------------------

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> CustomMetric:
        """Declare (or get, if identical) a counter. Raises: MetricDeclarationError."""
        self.store.declare(name, "counter", help, labelnames, external=True)
        return CustomMetric(self, name)

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> CustomMetric:
        """Declare (or get, if identical) a gauge. Raises: MetricDeclarationError."""
        self.store.declare(name, "gauge", help, labelnames, external=True)
        return CustomMetric(self, name)

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> CustomMetric:
        """Declare (or get, if identical) a histogram. Raises: MetricDeclarationError."""
        self.store.declare(name, "histogram", help, labelnames, buckets, external=True)
        return CustomMetric(self, name)

    # -- tracing -----------------------------------------------------------------------------

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
        """A span around the block (current span inside it); exceptions are recorded, re-raised."""
        attrs = self.anonymizer.attributes(attributes) if attributes else None
        with self.tracer.start_as_current_span(name, attributes=attrs) as span:  # type: ignore[arg-type]
            yield span

    async def trace_async(
        self,
        name: str,
        fn: Callable[[], Awaitable[R]],
        attributes: Mapping[str, Any] | None = None,
    ) -> R:
        """Await `fn()` inside a span named `name`; returns its result, re-raises its error."""
        with self.span(name, attributes):
            return await fn()

    def traced(
        self, name: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: run the function (sync or async) inside a span (default name: qualname)."""

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            span_name = name or fn.__qualname__
            if inspect.iscoroutinefunction(fn):
                afn = cast("Callable[P, Awaitable[Any]]", fn)

                @functools.wraps(fn)
                async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                    with self.span(span_name, attributes):
                        return await afn(*args, **kwargs)

                return cast("Callable[P, R]", async_wrapper)

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                with self.span(span_name, attributes):
                    return fn(*args, **kwargs)

            return wrapper

        return decorate
