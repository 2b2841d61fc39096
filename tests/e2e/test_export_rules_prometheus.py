"""Differential, end to end: our rules against the same rules exported to a real Prometheus.

The monitor runs with three rules (a gauge threshold with a `for`, a counter's increase, a
histogram's p95) and is fed through `POST /api/v1/events`. `blipee-monitor export-rules` writes
the rules file; Prometheus (1 s scrape and evaluation) scrapes the monitor's `/metrics` with it
loaded. The alerts Prometheus fires (`/api/v1/alerts`) must be ours (`/api/v1/alerts`), label
for label, with the documented differences only (docs/configuration.md, "Differences from
Prometheus / Alertmanager"):

- SCRAPE_LABELS: Prometheus adds the scrape's `job` and `instance` to every series, hence to
  its alerts; they are left out of the comparison.
- FIRST_INCREMENT: a counter fed increments counts its first one here; Prometheus sees the
  first scraped total as the baseline. The counter gets a first increment that Prometheus
  scrapes before the ones the rule is about.
- Values differ where the export notes say so (extrapolated `increase`, a p95 interpolated in
  its bucket): the samples are chosen far from the thresholds, and only the gauge's
  summary, whose value is exact, is compared as text.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.actors.notify.servers import free_port
from tests.e2e.harness import Monitor, cli, require_binary, wait_until

pytestmark = pytest.mark.slow

SCRAPE_LABELS = ("job", "instance")

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "5s"

[log]
format = "json"

[[metrics]]
name = "queue_depth"
type = "gauge"
labels = ["queue"]

[[metrics]]
name = "jobs_failed_total"
type = "counter"
labels = ["queue"]

[[rules]]
id = "queue-deep"
name = "Queue Deep"
severity = "critical"
summary = "{{{{ labels.queue }}}} holds {{{{ value }}}} jobs \
({{{{ labels.severity }}}}, over {{{{ threshold }}}})"
labels = {{ team = "ops" }}
[rules.condition]
metric = "queue_depth"
aggregate = "last"
operator = ">"
threshold = 10
duration = "2s"

[[rules]]
id = "jobs-failing"
name = "Jobs Failing"
[rules.condition]
metric = "jobs_failed_total"
aggregate = "increase"
window = "1m"
operator = ">"
threshold = 5

[[rules]]
id = "api-slow"
name = "API Slow"
[rules.condition]
metric = "api_request_duration_seconds"
aggregate = "p95"
window = "1m"
operator = ">"
threshold = 0.5
"""

PROMETHEUS = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: blipee
    static_configs: [{{targets: ["{target}"]}}]
"""


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[Monitor]:
    config = tmp_path / "monitor.toml"
    config.write_text(CONFIG.format(db=tmp_path / "monitor.db"))
    mon = Monitor(config)
    try:
        yield mon.start()
    finally:
        mon.stop()


@pytest.fixture
def prometheus(tmp_path: Path, monitor: Monitor) -> Iterator[str]:
    binary = require_binary("prometheus")
    rules = tmp_path / "rules.yml"
    exported = cli("export-rules", "-c", str(monitor.config), "-o", str(rules), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    config = tmp_path / "prometheus.yml"
    target = monitor.metrics.removeprefix("http://").removeprefix("https://").rstrip("/")
    config.write_text(PROMETHEUS.format(rules=rules, target=target))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, "prometheus to be ready", timeout=30)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _post(monitor: Monitor, events: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{monitor.api}/api/v1/events", json={"events": events}, timeout=5)
    assert response.status_code < 300, response.text


def _scraped(prometheus: str, query: str) -> bool:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5).json()
    return bool(answer["data"]["result"])


Alerts = dict[frozenset[tuple[str, str]], dict[str, str]]


def _ours(monitor: Monitor) -> Alerts:
    body = httpx.get(f"{monitor.api}/api/v1/alerts?state=firing", timeout=5).json()
    return {frozenset(a["labels"].items()): a["annotations"] for a in body["alerts"]}


def _theirs(prometheus: str) -> Alerts:
    body = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()
    return {
        frozenset((k, v) for k, v in a["labels"].items() if k not in SCRAPE_LABELS): a[
            "annotations"
        ]
        for a in body["data"]["alerts"]
        if a["state"] == "firing"
    }


def test_prometheus_fires_the_exported_rules_as_we_do(monitor: Monitor, prometheus: str) -> None:
    requests = [
        {"type": "api_request", "endpoint": endpoint, "method": "GET", "status": 200,
         "duration_seconds": seconds}
        for endpoint, seconds in (("/slow", 3.0), ("/fast", 0.003))
    ]  # fmt: skip
    # FIRST_INCREMENT: a baseline for both queues and both endpoints, scraped before the
    # increments and observations that count.
    _post(
        monitor,
        [
            {"type": "business_metric", "name": "jobs_failed_total", "value": 1,
             "labels": {"queue": q}}
            for q in ("a", "b")
        ] + requests,
    )  # fmt: skip
    wait_until(
        lambda: (
            _scraped(prometheus, 'jobs_failed_total{queue="b"}')
            and _scraped(prometheus, 'api_request_duration_seconds_count{endpoint="/fast"}')
        ),
        "the baselines scraped",
        20,
    )
    events: list[dict[str, Any]] = [
        {"type": "business_metric", "name": "queue_depth", "value": 50, "labels": {"queue": "a"}},
        {"type": "business_metric", "name": "queue_depth", "value": 3, "labels": {"queue": "b"}},
        {"type": "business_metric", "name": "jobs_failed_total", "value": 40,
         "labels": {"queue": "a"}},
    ]  # fmt: skip
    _post(monitor, events + requests * 20)

    expected = {
        frozenset({("alertname", "Queue Deep"), ("queue", "a"), ("rule", "queue-deep"),
                   ("severity", "critical"), ("team", "ops")}),
        frozenset({("alertname", "Jobs Failing"), ("queue", "a"), ("rule", "jobs-failing"),
                   ("severity", "warning")}),
        frozenset({("alertname", "API Slow"), ("endpoint", "/slow"), ("method", "GET"),
                   ("rule", "api-slow"), ("severity", "warning")}),
    }  # fmt: skip

    def ready() -> Alerts | None:
        alerts = _ours(monitor)
        return alerts if set(alerts) == expected else None

    ours = wait_until(ready, "our alerts", 20)
    seen: list[Alerts] = [{}]

    def same() -> Alerts | None:
        seen[0] = _theirs(prometheus)
        return seen[0] if set(seen[0]) == set(ours) else None

    try:
        theirs = wait_until(same, "Prometheus to fire our alerts", 30)
    except pytest.fail.Exception:
        pytest.fail(f"Prometheus fires {sorted(map(sorted, seen[0]))}, we fire {expected}")
    gauge = next(labels for labels in ours if ("alertname", "Queue Deep") in labels)
    assert ours[gauge]["summary"] == "a holds 50 jobs (critical, over 10)"
    assert theirs[gauge]["summary"] == ours[gauge]["summary"]
