"""The Grafana dashboards: in sync with their generator, and every panel's query answered by a real
Prometheus scraping a real monitor that the seed's events were posted to.

The monitor runs a `self` check, an http check, an `agents` check and a rule that fires on a low
model accuracy, so the monitor's own series exist too. Prometheus scrapes it every second; events
go in over a few seconds so every counter has several samples. Each query is sent to
Prometheus' /api/v1/query with Grafana's variables replaced (`$__rate_interval` by 1m, a label
variable by `.*`): it must parse, and it must return a sample unless its panel says in `needs`
why a young installation may have none.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import ROOT, Monitor, require_binary, wait_until

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location(
    "blipee_dashboards", ROOT / "deploy" / "grafana" / "dashboards.py"
)
assert _spec is not None
assert _spec.loader is not None
dashboards: Any = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = dashboards  # dataclasses look their module up while it is built
_spec.loader.exec_module(dashboards)

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[log]
format = "json"

[[checks]]
name = "self"
kind = "self"
interval = "500ms"
critical = true

[[checks]]
name = "agents"
kind = "agents"
expected = ["carbon-hunter"]
interval = "500ms"

[[rules]]
id = "low-model-accuracy"
name = "Low Model Accuracy"
severity = "warning"
channels = ["console"]
[rules.condition]
metric = "ml_model_accuracy"
aggregate = "last"
window = "1m"
operator = "<"
threshold = 0.9

[channels.console]
kind = "console"
"""

# The seed's event types, once each per round (business metrics by the seed's names).
EVENTS: list[dict[str, Any]] = [
    {"type": "agent_execution", "agent": "carbon-hunter", "duration_seconds": 1.2,
     "success": True},
    {"type": "agent_execution", "agent": "carbon-hunter", "duration_seconds": 3.0,
     "success": False},
    {"type": "heartbeat", "agent": "carbon-hunter"},
    {"type": "ml_prediction", "model": "energy-optimizer", "latency_seconds": 0.08,
     "confidence": 0.93},
    {"type": "ml_accuracy", "model": "compliance-risk", "accuracy": 0.85},
    {"type": "api_request", "endpoint": "/api/ml/predict", "method": "POST", "status": 200,
     "duration_seconds": 0.12},
    {"type": "api_request", "endpoint": "/api/agents/status", "method": "GET", "status": 503,
     "duration_seconds": 0.9},
    {"type": "user_message", "intent": "esg_analysis", "organization": "org-789"},
    {"type": "business_metric", "name": "emissions_tracked_kg", "value": 12.5,
     "labels": {"organization": "org-123", "scope": "scope1"}},
    {"type": "business_metric", "name": "network_connections_active", "value": 4,
     "labels": {"organization": "org-123"}},
    {"type": "business_metric", "name": "benchmarks_performed", "value": 1,
     "labels": {"organization": "org-456"}},
    {"type": "business_metric", "name": "organizations_active", "value": 3},
]  # fmt: skip


def test_dashboard_files_match_their_generator() -> None:
    assert dashboards.main(["--check"]) == 0, "run python deploy/grafana/dashboards.py"


def test_every_dashboard_has_a_datasource_variable_and_unique_panel_ids() -> None:
    titles = {d.title for d in dashboards.DASHBOARDS}
    assert {
        "System Overview",
        "Agent Performance",
        "ML Models",
        "Business Metrics",
        "Network Intelligence",
        "Monitor",
    } <= titles
    for dashboard in dashboards.DASHBOARDS:
        model = dashboards.render(dashboard)
        names = [v["name"] for v in model["templating"]["list"]]
        assert names[0] == "datasource"
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids))
        for panel in model["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[str]:
    """A monitor fed the seed's events and a Prometheus scraping it; yields Prometheus' URL."""
    prometheus = require_binary("/usr/bin/prometheus")
    config = tmp_path / "monitor.toml"
    config.write_text(CONFIG.format(db=tmp_path / "monitor.db"))
    monitor = Monitor(config).start()
    process: subprocess.Popen[bytes] | None = None
    try:
        target = monitor.metrics.removeprefix("http://").rstrip("/")
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: blipee-monitor\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        with (tmp_path / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    "--web.listen-address=127.0.0.1:0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = wait_until(lambda: _prometheus_url(tmp_path / "prometheus.log"), "prometheus", 30)
        with (
            httpx.Client(base_url=monitor.api, timeout=5) as api,
            httpx.Client(base_url=url, timeout=5) as prom,
        ):

            def last_scrape() -> float | None:
                result = prom.get("/api/v1/query", params={"query": "timestamp(up)"}).json()
                samples = result["data"]["result"]
                return float(samples[0]["value"][1]) if samples else None

            # One round of events per scrape, so every counter has several samples that differ.
            for _ in range(5):
                answer = api.post("/api/v1/events", json={"events": EVENTS})
                assert answer.status_code in (200, 202), answer.text
                wait_until(_newer_than(last_scrape, last_scrape()), "the next scrape", 30)
        yield url
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        monitor.stop()


def _newer_than(read: Callable[[], float | None], before: float | None) -> Callable[[], bool]:
    """A probe that is true once `read()` answers something later than `before`."""
    return lambda: (read() or 0.0) > (before or 0.0)


def _prometheus_url(log: Path) -> str | None:
    # Prometheus logs the address it bound: 'msg="Listening on" address=127.0.0.1:NNNN'
    for line in log.read_text(errors="replace").splitlines():
        if "Listening on" in line and "address=" in line:
            address = line.split("address=", 1)[1].split()[0].strip('"')
            return f"http://{address}"
    return None


def _concrete(expr: str) -> str:
    """The query as Grafana would send it with every variable at its default (All)."""
    text = expr.replace("$__rate_interval", "1m")
    for dashboard in dashboards.DASHBOARDS:
        if dashboard.variable is not None:
            text = text.replace(f"${dashboard.variable[0]}", ".*")
    return text


def test_every_panel_query_runs_in_prometheus(scraped: str) -> None:
    empty: list[str] = []
    with httpx.Client(base_url=scraped, timeout=10) as client:
        for dashboard in dashboards.DASHBOARDS:
            for panel in dashboard.panels:
                for expr, _legend in panel.queries:
                    query = _concrete(expr)
                    answer = client.get("/api/v1/query", params={"query": query})
                    body = answer.json()
                    assert body["status"] == "success", (dashboard.title, panel.title, body)
                    if not body["data"]["result"] and not panel.needs:
                        empty.append(f"{dashboard.title} / {panel.title}: {query}")
    assert not empty, "panels with no data:\n" + "\n".join(empty)
