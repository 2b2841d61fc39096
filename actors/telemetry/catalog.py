"""The seed application's metric catalogue, with Prometheus names (base units, `_total` counters).

| name | kind | labels |
|---|---|---|
| agent_executions_total | counter | agent, status (success / error) |
| agent_errors_total | counter | agent |
| agent_execution_duration_seconds | histogram | agent |
| ml_predictions_total | counter | model |
| ml_prediction_latency_seconds | histogram | model |
| ml_prediction_confidence | histogram (0..1) | model |
| ml_model_accuracy | gauge (0..1) | model |
| api_requests_total | counter | endpoint, method, status |
| api_errors_total | counter | endpoint, method |
| api_request_duration_seconds | histogram | endpoint, method |
| network_connections_active | gauge | organization |
| benchmarks_performed_total | counter | organization |
| user_messages_total | counter | intent, organization |
| emissions_tracked_kg_total | counter | organization, scope |
| organizations_active | gauge | (none) |

User-declared `[[metrics]]` are declared after these (a user metric may not reuse a seed name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.telemetry.config import MetricDecl
    from actors.telemetry.store import MetricStore

__all__ = ["SEED_METRICS", "MetricSpec", "declare_catalog"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of the catalogue."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


_AGENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_RATIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)

SEED_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "agent_executions_total",
        "counter",
        "Agent executions by outcome.",
        ("agent", "status"),
    ),
    MetricSpec("agent_errors_total", "counter", "Agent executions that failed.", ("agent",)),
    MetricSpec(
        "agent_execution_duration_seconds",
        "histogram",
        "Duration of agent executions in seconds.",
        ("agent",),
        _AGENT_BUCKETS,
    ),
    MetricSpec("ml_predictions_total", "counter", "ML model predictions served.", ("model",)),
    MetricSpec(
        "ml_prediction_latency_seconds",
        "histogram",
        "Latency of ML model predictions in seconds.",
        ("model",),
        _LATENCY_BUCKETS,
    ),
    MetricSpec(
        "ml_prediction_confidence",
        "histogram",
        "Confidence of ML model predictions (0..1).",
        ("model",),
        _RATIO_BUCKETS,
    ),
    MetricSpec("ml_model_accuracy", "gauge", "Latest measured model accuracy (0..1).", ("model",)),
    MetricSpec(
        "api_requests_total",
        "counter",
        "API requests served by the application.",
        ("endpoint", "method", "status"),
    ),
    MetricSpec(
        "api_errors_total",
        "counter",
        "API requests that failed with a server error (status >= 500).",
        ("endpoint", "method"),
    ),
    MetricSpec(
        "api_request_duration_seconds",
        "histogram",
        "Duration of API requests in seconds.",
        ("endpoint", "method"),
        _LATENCY_BUCKETS,
    ),
    MetricSpec(
        "network_connections_active",
        "gauge",
        "Active peer network connections.",
        ("organization",),
    ),
    MetricSpec(
        "benchmarks_performed_total",
        "counter",
        "Peer benchmarks performed.",
        ("organization",),
    ),
    MetricSpec(
        "user_messages_total",
        "counter",
        "User messages processed, by intent.",
        ("intent", "organization"),
    ),
    MetricSpec(
        "emissions_tracked_kg_total",
        "counter",
        "Emissions tracked, in kilograms of CO2 equivalent.",
        ("organization", "scope"),
    ),
    MetricSpec("organizations_active", "gauge", "Organizations currently active."),
)


def declare_catalog(store: MetricStore, user_metrics: Sequence[MetricDecl] = ()) -> None:
    """Declare the seed catalogue, then each user-declared metric, in `store`.

    All of them are application metrics (`external`): `business_metric` events may write them.

    Raises:
        MetricDeclarationError: a user metric conflicts with a seed metric or is invalid.
    """
    for spec in SEED_METRICS:
        store.declare(spec.name, spec.kind, spec.help, spec.labels, spec.buckets, external=True)
    for decl in user_metrics:
        store.declare(
            decl.name,
            decl.type,
            decl.help or f"{decl.name} (declared in [[metrics]]).",
            decl.labels,
            decl.buckets,
            external=True,
        )
