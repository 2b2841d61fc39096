"""The Grafana dashboards of deploy/grafana/dashboards/, written from one table of panels.

Run `python deploy/grafana/dashboards.py` after changing a panel to rewrite the JSON files;
`--check` exits 1 when a file differs from what this module writes (a test runs it). Each
dashboard has a `datasource` variable (any Prometheus data source) and, where its metrics have
one, a label variable to filter by. Queries use Grafana's `$__rate_interval`, so they stay right at
any scrape interval.

The seed's five dashboards (System Overview, Agent Performance, ML Models, Business Metrics,
Network Intelligence) read the application's metrics as this monitor exposes them on /metrics;
"Monitor" reads the monitor's own (checks, alerts, deliveries, actors). A panel whose query needs
more than a minute of data, or an event that a first run may not see, says so in `needs`; the
test that runs every query through a real Prometheus reads that field.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARDS", "Dashboard", "Panel", "main", "render"]

HERE = Path(__file__).resolve().parent / "dashboards"
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_RI = "$__rate_interval"


@dataclass(frozen=True)
class Panel:
    """One panel: a title, its queries (PromQL, `legend` per query) and how to draw it.

    `kind` is a Grafana panel type (timeseries, stat, gauge, table); `unit` a Grafana unit id;
    `needs` says why the panel may be empty on a young installation ("" = it never is once the
    application reports).
    """

    title: str
    queries: tuple[tuple[str, str], ...]
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    needs: str = ""
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: its file name (uid), title, tags, label variable and panels."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variable: tuple[str, str] | None = None
    """(name, `label_values(...)` query) of a multi-select filter, used as `=~"$name"`."""
    tags: tuple[str, ...] = field(default=("blipee",))


def _q(expr: str, legend: str = "") -> tuple[str, str]:
    return (expr, legend)


DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        "blipee-system-overview",
        "System Overview",
        "Health status, uptime and request rate of the application (seed dashboard 1).",
        (
            Panel(
                "Health checks passing",
                (_q("sum(health_check_up) / count(health_check_up)", "passing"),),
                kind="stat",
                unit="percentunit",
                width=6,
            ),
            Panel(
                "Monitor uptime",
                (_q('time() - process_start_time_seconds{job=~"$job"}', "{{instance}}"),),
                kind="stat",
                unit="s",
                width=6,
            ),
            Panel(
                "Alerts firing",
                (_q("sum(alerts_firing) or vector(0)", "firing"),),
                kind="stat",
                width=6,
            ),
            Panel(
                "Request rate",
                (_q(f"sum(rate(api_requests_total[{_RI}]))", "requests/s"),),
                kind="stat",
                unit="reqps",
                width=6,
            ),
            Panel(
                "Requests by status",
                (_q(f"sum by (status) (rate(api_requests_total[{_RI}]))", "{{status}}"),),
                unit="reqps",
            ),
            Panel(
                "Error rate (SLI: < 1 %)",
                (
                    _q(
                        f'sum(rate(api_requests_total{{status=~"5.."}}[{_RI}]))'
                        f" / sum(rate(api_requests_total[{_RI}]))",
                        "5xx ratio",
                    ),
                ),
                unit="percentunit",
                needs="a 5xx answer in the window (no error: no value, as it should be)",
            ),
            Panel(
                "API latency p95 (SLI: < 500 ms)",
                (
                    _q(
                        "histogram_quantile(0.95, sum by (le) "
                        f"(rate(api_request_duration_seconds_bucket[{_RI}])))",
                        "p95",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Check status",
                (_q("health_check_up", "{{check}}"),),
                kind="table",
            ),
        ),
        variable=("job", "label_values(process_start_time_seconds, job)"),
    ),
    Dashboard(
        "blipee-agent-performance",
        "Agent Performance",
        "Executions, errors and duration of the AI agents (seed dashboard 2).",
        (
            Panel(
                "Executions by agent and status",
                (
                    _q(
                        "sum by (agent, status) "
                        f'(rate(agent_executions_total{{agent=~"$agent"}}[{_RI}]))',
                        "{{agent}} {{status}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Success rate (SLI: > 99 %)",
                (
                    _q(
                        "sum by (agent) "
                        f'(rate(agent_executions_total{{agent=~"$agent",status="success"}}[{_RI}]))'
                        " / sum by (agent) "
                        f'(rate(agent_executions_total{{agent=~"$agent"}}[{_RI}]))',
                        "{{agent}}",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "Errors",
                (
                    _q(
                        f'sum by (agent) (increase(agent_errors_total{{agent=~"$agent"}}[{_RI}]))',
                        "{{agent}}",
                    ),
                ),
            ),
            Panel(
                "Execution duration p95",
                (
                    _q(
                        "histogram_quantile(0.95, sum by (agent, le) "
                        f'(rate(agent_execution_duration_seconds_bucket{{agent=~"$agent"}}[{_RI}])))',
                        "{{agent}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Executions in the last hour",
                (
                    _q(
                        'sum by (agent) (increase(agent_executions_total{agent=~"$agent"}[1h]))',
                        "{{agent}}",
                    ),
                ),
                kind="table",
            ),
        ),
        variable=("agent", "label_values(agent_executions_total, agent)"),
    ),
    Dashboard(
        "blipee-ml-models",
        "ML Models",
        "Predictions, accuracy and latency of the ML models (seed dashboard 3).",
        (
            Panel(
                "Predictions",
                (
                    _q(
                        f'sum by (model) (rate(ml_predictions_total{{model=~"$model"}}[{_RI}]))',
                        "{{model}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Accuracy",
                (_q('ml_model_accuracy{model=~"$model"}', "{{model}}"),),
                kind="gauge",
                unit="percentunit",
            ),
            Panel(
                "Prediction latency p95 (SLI: < 200 ms)",
                (
                    _q(
                        "histogram_quantile(0.95, sum by (model, le) "
                        f'(rate(ml_prediction_latency_seconds_bucket{{model=~"$model"}}[{_RI}])))',
                        "{{model}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Predictions within 200 ms",
                (
                    _q(
                        "sum by (model) "
                        f'(rate(ml_prediction_latency_seconds_bucket{{model=~"$model",le="0.2"}}[{_RI}]))'
                        " / sum by (model) "
                        f'(rate(ml_prediction_latency_seconds_count{{model=~"$model"}}[{_RI}]))',
                        "{{model}}",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "Confidence p50",
                (
                    _q(
                        "histogram_quantile(0.5, sum by (model, le) "
                        f'(rate(ml_prediction_confidence_bucket{{model=~"$model"}}[{_RI}])))',
                        "{{model}}",
                    ),
                ),
                unit="percentunit",
            ),
        ),
        variable=("model", "label_values(ml_predictions_total, model)"),
    ),
    Dashboard(
        "blipee-business-metrics",
        "Business Metrics",
        "User messages, tracked emissions and active organizations (seed dashboard 4).",
        (
            Panel(
                "Active organizations",
                (_q("organizations_active", "organizations"),),
                kind="stat",
                width=6,
            ),
            Panel(
                "Messages by intent",
                (
                    _q(
                        "sum by (intent) "
                        f'(rate(user_messages_total{{organization=~"$organization"}}[{_RI}]))',
                        "{{intent}}",
                    ),
                ),
                unit="ops",
                width=18,
            ),
            Panel(
                "Emissions tracked (kg CO2e per hour)",
                (
                    _q(
                        "sum by (scope) (increase(emissions_tracked_kg_total"
                        '{organization=~"$organization"}[1h]))',
                        "{{scope}}",
                    ),
                ),
                unit="masskg",
            ),
            Panel(
                "Emissions by organization (24 h)",
                (
                    _q(
                        "sum by (organization) (increase(emissions_tracked_kg_total"
                        '{organization=~"$organization"}[24h]))',
                        "{{organization}}",
                    ),
                ),
                kind="table",
                unit="masskg",
            ),
        ),
        variable=("organization", "label_values(user_messages_total, organization)"),
    ),
    Dashboard(
        "blipee-network-intelligence",
        "Network Intelligence",
        "Peer network connections and benchmarks (seed dashboard 5). Insights are not a metric of "
        "the seed; record them with a custom [[metrics]] entry to chart them.",
        (
            Panel(
                "Active connections",
                (_q('sum(network_connections_active{organization=~"$organization"})', "total"),),
                kind="stat",
                width=6,
            ),
            Panel(
                "Connections by organization",
                (
                    _q(
                        'network_connections_active{organization=~"$organization"}',
                        "{{organization}}",
                    ),
                ),
                width=18,
            ),
            Panel(
                "Benchmarks performed",
                (
                    _q(
                        "sum by (organization) (rate(benchmarks_performed_total"
                        f'{{organization=~"$organization"}}[{_RI}]))',
                        "{{organization}}",
                    ),
                ),
                unit="ops",
                width=24,
            ),
        ),
        variable=("organization", "label_values(network_connections_active, organization)"),
    ),
    Dashboard(
        "blipee-monitor",
        "Monitor",
        "The monitor itself: checks, alerts, notification deliveries, the supervision tree and "
        "SLOs.",
        (
            Panel("Checks up", (_q('health_check_up{check=~"$check"}', "{{check}}"),)),
            Panel(
                "Check duration p95",
                (
                    _q(
                        "histogram_quantile(0.95, sum by (check, le) "
                        f'(rate(health_check_duration_seconds_bucket{{check=~"$check"}}[{_RI}])))',
                        "{{check}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Check runs by result",
                (
                    _q(
                        "sum by (result) "
                        f'(rate(health_check_runs_total{{check=~"$check"}}[{_RI}]))',
                        "{{result}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Alerts firing",
                (_q("sum by (rule, severity) (alerts_firing)", "{{rule}} ({{severity}})"),),
                needs="an alert rule to have been evaluated",
            ),
            Panel(
                "Notifications by channel and result",
                (
                    _q(
                        f"sum by (channel, result) (increase(notifications_total[{_RI}]))",
                        "{{channel}} {{result}}",
                    ),
                ),
                needs="a notification to have been sent",
            ),
            Panel(
                "Delivery latency p95",
                (
                    _q(
                        "histogram_quantile(0.95, sum by (channel, le) "
                        f"(rate(notification_delivery_seconds_bucket[{_RI}])))",
                        "{{channel}}",
                    ),
                ),
                unit="s",
                needs="a notification to have been sent",
            ),
            Panel(
                "Outbox pending",
                (_q("sum by (channel) (outbox_pending)", "{{channel}}"),),
                needs="a channel to be configured",
            ),
            Panel(
                "Actor restarts",
                (_q(f"sum by (actor) (increase(actor_restarts_total[{_RI}]))", "{{actor}}"),),
                needs="an actor to have restarted",
            ),
            Panel(
                "Mailbox drops",
                (
                    _q(
                        f"sum by (mailbox) (increase(mailbox_dropped_total[{_RI}]))",
                        "{{mailbox}}",
                    ),
                ),
                needs="a mailbox to exist",
            ),
            Panel(
                "SLO: indicator against objective",
                (
                    _q("slo_sli", "{{slo}} SLI"),
                    _q("slo_objective", "{{slo}} objective"),
                ),
                unit="percentunit",
                needs="an SLO to be configured ([[slos]]: the packaged default has five)",
            ),
            Panel(
                "SLO: error budget remaining",
                (_q("slo_error_budget_remaining", "{{slo}}"),),
                kind="stat",
                unit="percentunit",
                needs="an SLO to be configured",
            ),
            Panel(
                "SLO: burn rate by window",
                (_q("slo_burn_rate", "{{slo}} {{window}}"),),
                needs="an SLO to be configured",
            ),
            Panel(
                "Resident memory",
                (_q("process_resident_memory_bytes", "{{instance}}"),),
                unit="bytes",
            ),
            Panel(
                "CPU",
                (_q(f"rate(process_cpu_seconds_total[{_RI}])", "{{instance}}"),),
                unit="percentunit",
            ),
        ),
        variable=("check", "label_values(health_check_up, check)"),
    ),
)
"""Every dashboard, in the order of deploy/grafana/dashboards/."""


def _variables(dashboard: Dashboard) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }
    ]
    if dashboard.variable is not None:
        name, query = dashboard.variable
        variables.append(
            {
                "name": name,
                "label": name,
                "type": "query",
                "datasource": _DATASOURCE,
                "query": {"query": query, "refId": "var"},
                "definition": query,
                "refresh": 2,
                "multi": True,
                "includeAll": True,
                "allValue": ".*",
                "current": {"text": "All", "value": "$__all"},
                "hide": 0,
            }
        )
    return variables


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description or panel.needs,
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": _DATASOURCE,
                "expr": expr,
                "legendFormat": legend or "__auto",
                "format": "table" if panel.kind == "table" else "time_series",
                "instant": panel.kind == "table",
            }
            for index, (expr, legend) in enumerate(panel.queries)
        ],
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard JSON model (schemaVersion 39) of `dashboard`; panels laid out in
    rows of 24 columns, left to right."""
    panels = []
    x = y = 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        panels.append(_panel(panel, panel_id, x, y))
        x += panel.width
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": _variables(dashboard)},
        "annotations": {"list": []},
        "panels": panels,
    }


def _text(dashboard: Dashboard) -> str:
    return json.dumps(render(dashboard), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write every dashboard's file; with `--check`, only compare and exit 1 on a difference."""
    check = "--check" in argv
    stale = []
    HERE.mkdir(exist_ok=True)
    for dashboard in DASHBOARDS:
        path = HERE / f"{dashboard.uid}.json"
        text = _text(dashboard)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date (run python {Path(__file__).name}): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
