"""Every route of the contract, against one running monitor shared by the module.

The process runs a critical `self` check, a non-critical tcp check on a closed port (so the
overall status is `degraded`: still 200), an `agents` check (expecting an agent that never
reports), a rule on `ml_model_accuracy` that the posted events make fire, and a console channel.
Writes need the API token; /metrics needs the metrics token. A second, short-lived monitor shows
checks that have not run yet listed as pending from the start.
"""

from __future__ import annotations

import gzip
import re
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.harness import HttpPeer, Monitor, require_binary, wait_until

API_TOKEN = "e2e-api-token-0123456789"
METRICS_TOKEN = "e2e-metrics-token-9876543210"
MAX_BODY = 2048

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[security]
api_token = "${{E2E_API_TOKEN}}"
metrics_token = "${{E2E_METRICS_TOKEN}}"
max_body_bytes = {max_body}
auth_failures = 0  # the refusals these tests ask for all come from 127.0.0.1

[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "5s"

[log]
format = "json"
level = "info"

[[checks]]
name = "self"
kind = "self"
interval = "200ms"
timeout = "200ms"
critical = true

[[checks]]
name = "closed-port"
kind = "tcp"
host = "127.0.0.1"
port = {closed}
interval = "200ms"
timeout = "200ms"
critical = false

[[checks]]
name = "agents"
kind = "agents"
expected = ["compliance-guardian"]
interval = "200ms"
timeout = "200ms"

[[rules]]
id = "low-model-accuracy"
name = "Low Model Accuracy"
severity = "warning"
channels = ["console"]
summary = "accuracy {{{{ value }}}}"
[rules.condition]
metric = "ml_model_accuracy"
aggregate = "last"
window = "1m"
operator = "<"
threshold = 0.5

[routing]
group_wait = "0s"
group_interval = "200ms"

[channels.console]
kind = "console"
"""

SEED_METRICS = {
    "agent_executions_total": "counter",
    "agent_errors_total": "counter",
    "agent_execution_duration_seconds": "histogram",
    "ml_predictions_total": "counter",
    "ml_prediction_latency_seconds": "histogram",
    "ml_model_accuracy": "gauge",
    "api_requests_total": "counter",
    "api_errors_total": "counter",
    "api_request_duration_seconds": "histogram",
    "network_connections_active": "gauge",
    "benchmarks_performed_total": "counter",
    "user_messages_total": "counter",
    "emissions_tracked_kg_total": "counter",
    "organizations_active": "gauge",
}
OWN_METRICS = {
    "health_check_up": "gauge",
    "health_check_duration_seconds": "histogram",
    "health_check_runs_total": "counter",
    "alerts_firing": "gauge",
    "notifications_total": "counter",
    "notification_delivery_seconds": "histogram",
    "outbox_pending": "gauge",
    "actor_restarts_total": "counter",
    "mailbox_dropped_total": "counter",
    "process_cpu_seconds_total": "counter",
}

EVENTS: list[dict[str, Any]] = [
    {"type": "agent_execution", "agent": "carbon-hunter", "duration_seconds": 1.5, "success": True},
    {
        "type": "agent_execution",
        "agent": "carbon-hunter",
        "duration_seconds": 0.5,
        "success": False,
    },
    {"type": "heartbeat", "agent": "esg-chief-of-staff"},
    {"type": "ml_prediction", "model": "forecast", "latency_seconds": 0.05, "confidence": 0.9},
    {"type": "ml_accuracy", "model": "forecast", "accuracy": 0.3},
    {"type": "bogus_event", "x": 1},  # index 5: rejected
    {
        "type": "api_request",
        "endpoint": "/api/v1/orchestrator",
        "method": "POST",
        "status": 200,
        "duration_seconds": 0.1,
    },
    {
        "type": "api_request",
        "endpoint": "/api/v1/orchestrator",
        "method": "POST",
        "status": 200,
        "duration_seconds": 0.2,
    },
    {
        "type": "api_request",
        "endpoint": "/api/v1/orchestrator",
        "method": "POST",
        "status": 500,
        "duration_seconds": 0.3,
    },
    {"type": "agent_execution", "agent": "x", "duration_seconds": -1, "success": True},  # 9: bad
    {"type": "user_message", "intent": "report", "organization": "acme"},
    {
        "type": "business_metric",
        "name": "network_connections_active",
        "value": 3,
        "labels": {"organization": "acme"},
    },
    {
        "type": "business_metric",
        "name": "benchmarks_performed_total",
        "value": 1,
        "labels": {"organization": "acme"},
    },
    {
        "type": "business_metric",
        "name": "emissions_tracked_kg_total",
        "value": 12.5,
        "labels": {"organization": "acme", "scope": "1"},
    },
    {"type": "business_metric", "name": "organizations_active", "value": 4, "labels": {}},
]
REJECTED_INDEXES = {5, 9}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    tmp = tmp_path_factory.mktemp("api")
    config = tmp / "api.toml"
    config.write_text(
        CONFIG.format(db=tmp / "monitor.db", closed=_closed_port(), max_body=MAX_BODY)
    )
    proc = Monitor(config, env={"E2E_API_TOKEN": API_TOKEN, "E2E_METRICS_TOKEN": METRICS_TOKEN})
    try:
        proc.start()
        yield proc
    finally:
        status = proc.stop()
    assert status == 0, proc.log()[-4000:]
    assert API_TOKEN not in proc.log()
    assert METRICS_TOKEN not in proc.log()


@pytest.fixture(scope="module")
def api(monitor: Monitor) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as client:
        # Wait for the first round: ready, and every check has reported (none pending).
        wait_until(
            lambda: (
                client.get("/api/health/ready").status_code == 200
                and all(
                    check["status"] != "pending"
                    for check in client.get("/api/health").json()["checks"].values()
                )
            ),
            "the first round of checks",
        )
        yield client


@pytest.fixture(scope="module")
def scraper(monitor: Monitor) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=monitor.metrics,
        timeout=5.0,
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
    ) as client:
        yield client


AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def _fresh(monitor: Monitor, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on its own connection (answers that skip the body stay off the shared one)."""
    return httpx.request(method, f"{monitor.api}{path}", timeout=5.0, **kwargs)


@pytest.fixture(scope="module")
def ingested(api: httpx.Client) -> httpx.Response:
    """The events batch, posted once for the module."""
    return api.post("/api/v1/events", json={"events": EVENTS}, headers=AUTH)


# -- /api/health ---------------------------------------------------------------------------------
def test_health_document_has_the_seed_shape(api: httpx.Client) -> None:
    response = api.get("/api/health")
    assert response.status_code == 200  # degraded is still 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert set(doc) >= {"status", "timestamp", "version", "checks", "metrics"}
    assert doc["status"] == "degraded"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", doc["timestamp"])
    assert isinstance(doc["version"], str)
    assert doc["version"]
    assert list(doc["checks"]) == ["self", "closed-port", "agents"]
    for check in doc["checks"].values():
        assert set(check) >= {"status", "message", "latency", "details"}
        assert check["status"] in ("pass", "warn", "fail")
        assert isinstance(check["latency"], int | float)
        assert isinstance(check["details"], dict)
    assert doc["checks"]["self"]["status"] == "pass"
    assert doc["checks"]["closed-port"]["status"] == "fail"
    assert set(doc["metrics"]) >= {
        "uptime",
        "requestsPerMinute",
        "averageResponseTime",
        "activeUsers",
    }
    for value in doc["metrics"].values():
        assert isinstance(value, int | float)


def test_health_in_the_ietf_draft_format(api: httpx.Client) -> None:
    response = api.get("/api/health", headers={"Accept": "application/health+json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/health+json")
    doc = response.json()
    assert doc["status"] == "warn"  # degraded
    assert isinstance(doc["checks"], dict)
    for key, entries in doc["checks"].items():
        assert isinstance(key, str)
        assert isinstance(entries, list)
        for entry in entries:
            assert entry["status"] in ("pass", "warn", "fail")
    components = {e.get("componentId") for entries in doc["checks"].values() for e in entries}
    assert {"self", "closed-port"} <= components


def test_liveness(api: httpx.Client) -> None:
    response = api.get("/api/health/live")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


def test_readiness_ignores_non_critical_failures(api: httpx.Client) -> None:
    response = api.get("/api/health/ready")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


# -- /api/v1/checks, agents, actors ----------------------------------------------------------------
def test_checks_list_and_one_check_with_history(api: httpx.Client) -> None:
    listing = api.get("/api/v1/checks")
    assert listing.status_code == 200
    names = [c["name"] for c in listing.json()["checks"]]
    assert names[:3] == ["self", "closed-port", "agents"]
    one = api.get("/api/v1/checks/closed-port")
    assert one.status_code == 200
    doc = one.json()
    assert doc["name"] == "closed-port"
    assert doc["status"] == "fail"
    assert doc["critical"] is False
    assert isinstance(doc["history"], list)
    assert doc["history"]


def test_unknown_check_is_a_json_404(api: httpx.Client) -> None:
    response = api.get("/api/v1/checks/no-such-check")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert "error" in response.json()


def test_unknown_route_is_a_json_404(api: httpx.Client) -> None:
    response = api.get("/api/v1/no-such-route")
    assert response.status_code == 404
    assert "error" in response.json()


def test_agents_status_lists_reporting_agents(api: httpx.Client, ingested: httpx.Response) -> None:
    assert ingested.status_code == 202
    response = api.get("/api/v1/agents/status")
    assert response.status_code == 200
    agents = {a["agent"] if "agent" in a else a["name"]: a for a in response.json()["agents"]}
    assert {"carbon-hunter", "esg-chief-of-staff"} <= set(agents)
    # Expected by the agents check, never reported.
    assert agents["compliance-guardian"]["status"] == "missing"
    assert agents["compliance-guardian"]["lastSeen"] is None
    hunter = agents["carbon-hunter"]
    text = str(hunter)
    for word in ("executions", "errors", "status"):
        assert word in text, hunter
    assert any(k in text for k in ("last_seen", "lastSeen")), hunter


def test_actors_is_the_supervision_tree(api: httpx.Client) -> None:
    response = api.get("/api/v1/actors")
    assert response.status_code == 200
    text = response.text
    for actor in ("checks", "rules", "routing", "web", "check:self"):
        assert actor in text
    for field in ("state", "restarts", "last_error"):
        assert field in text


# -- POST /api/v1/events -------------------------------------------------------------------------
def test_events_need_the_token(monitor: Monitor) -> None:
    response = _fresh(monitor, "POST", "/api/v1/events", json={"events": []})
    assert response.status_code == 401
    assert "error" in response.json()
    wrong = _fresh(
        monitor,
        "POST",
        "/api/v1/events",
        json={"events": []},
        headers={"Authorization": "Bearer nope"},
    )
    assert wrong.status_code == 401


def test_events_partial_success_reports_each_bad_item(ingested: httpx.Response) -> None:
    assert ingested.status_code == 202
    body = ingested.json()
    assert body["accepted"] == len(EVENTS) - len(REJECTED_INDEXES)
    assert {r["index"] for r in body["rejected"]} == REJECTED_INDEXES
    for item in body["rejected"]:
        assert isinstance(item["error"], str)
        assert item["error"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"events": 3}', b'{"nope": []}'],
    ids=["not-json", "a-list", "events-not-a-list", "no-events"],
)
def test_events_not_a_batch_is_400(api: httpx.Client, body: bytes) -> None:
    response = api.post(
        "/api/v1/events",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "error" in response.json()


def test_events_body_too_large_is_413(monitor: Monitor) -> None:
    event = {"type": "heartbeat", "agent": "a" * 100}
    body = {"events": [event] * (MAX_BODY // 50)}
    response = _fresh(monitor, "POST", "/api/v1/events", json=body, headers=AUTH)
    assert response.status_code == 413
    assert "error" in response.json()


def test_events_show_in_the_health_figures(api: httpx.Client, ingested: httpx.Response) -> None:
    assert ingested.status_code == 202

    def figures() -> dict[str, Any] | None:
        metrics: dict[str, Any] = api.get("/api/health").json()["metrics"]
        return metrics if metrics["requestsPerMinute"] > 0 else None

    metrics = wait_until(figures, "requestsPerMinute > 0", timeout=5)
    assert metrics["requestsPerMinute"] == pytest.approx(3, abs=0.5)
    # (0.1 + 0.2 + 0.3) / 3 seconds, in milliseconds.
    assert metrics["averageResponseTime"] == pytest.approx(200, abs=1)


# -- /api/v1/alerts, silences, notifications, test-alert, reload -----------------------------------
def test_alerts_lists_the_firing_rule(api: httpx.Client, ingested: httpx.Response) -> None:
    assert ingested.status_code == 202

    def firing() -> list[dict[str, Any]] | None:
        response = api.get("/api/v1/alerts")
        assert response.status_code == 200
        alerts: list[dict[str, Any]] = response.json()["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") == "Low Model Accuracy"]

    alerts = wait_until(firing, "the Low Model Accuracy alert", timeout=5)
    labels = alerts[0]["labels"]
    assert labels["rule"] == "low-model-accuracy"
    assert labels["severity"] == "warning"
    assert labels["model"] == "forecast"
    assert alerts[0]["state"] in ("pending", "firing")


def test_silences_lifecycle(monitor: Monitor, api: httpx.Client) -> None:
    body = {"matchers": ["alertname=Low Model Accuracy"], "duration": "1h", "comment": "e2e"}
    assert _fresh(monitor, "POST", "/api/v1/silences", json=body).status_code == 401
    created = api.post("/api/v1/silences", json=body, headers=AUTH)
    assert created.status_code in (200, 201), created.text
    silence = created.json()
    silence_id = silence.get("silenceID") or silence["id"]
    listing = api.get("/api/v1/silences")
    assert listing.status_code == 200
    assert silence_id in {s["id"] for s in listing.json()["silences"]}
    assert _fresh(monitor, "DELETE", f"/api/v1/silences/{silence_id}").status_code == 401
    deleted = api.delete(f"/api/v1/silences/{silence_id}", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json()["status"]["state"] == "expired"
    assert api.delete("/api/v1/silences/no-such-id", headers=AUTH).status_code == 404
    bad = api.post("/api/v1/silences", json={"matchers": []}, headers=AUTH)
    assert bad.status_code == 400
    assert "error" in bad.json()


def test_test_alert_needs_the_token_and_reports_each_channel(
    monitor: Monitor, api: httpx.Client
) -> None:
    assert _fresh(monitor, "POST", "/api/test-alert").status_code == 401
    response = api.post("/api/test-alert", json={"channel": "console"}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    assert [r["channel"] for r in body["results"]] == ["console"]
    unknown = api.post("/api/test-alert", json={"channel": "nope"}, headers=AUTH)
    assert unknown.status_code == 404


def test_notifications_lists_recent_deliveries(api: httpx.Client) -> None:
    response = api.get("/api/v1/notifications")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["deliveries"], list)
    assert isinstance(body["dead_letters"], list)


def test_reload_needs_the_token(monitor: Monitor, api: httpx.Client) -> None:
    assert _fresh(monitor, "POST", "/api/v1/reload").status_code == 401
    response = api.post("/api/v1/reload", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "applied"
    # Nothing changed: nothing restarted.
    assert response.json()["restarted"] == []


def test_status_page_is_html(api: httpx.Client) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "closed-port" in response.text


# -- /metrics ------------------------------------------------------------------------------------
def test_metrics_need_the_metrics_token(monitor: Monitor) -> None:
    assert httpx.get(f"{monitor.metrics}/metrics", timeout=5).status_code == 401
    wrong = httpx.get(
        f"{monitor.metrics}/metrics", timeout=5, headers={"Authorization": "Bearer x"}
    )
    assert wrong.status_code == 401
    # The API token is not the metrics token.
    api_token = httpx.get(f"{monitor.metrics}/metrics", timeout=5, headers=AUTH)
    assert api_token.status_code == 401


def _families(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def _has_sample(text: str, name: str, kind: str) -> bool:
    sample = f"{name}_bucket" if kind == "histogram" else name
    return re.search(rf"^{re.escape(sample)}[{{ ]", text, flags=re.MULTILINE) is not None


def test_metrics_text_has_every_contract_name(
    scraper: httpx.Client, ingested: httpx.Response
) -> None:
    assert ingested.status_code == 202
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = _families(response.text)
    for name, kind in {**SEED_METRICS, **OWN_METRICS}.items():
        assert families.get(name) == kind, f"{name}: {families.get(name)}"
    for name, kind in SEED_METRICS.items():
        assert _has_sample(response.text, name, kind), f"no sample of {name}"
    assert 'health_check_up{check="self"} 1.0' in response.text
    assert 'health_check_up{check="closed-port"} 0.0' in response.text


def test_metrics_openmetrics_by_accept(scraper: httpx.Client) -> None:
    response = scraper.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_metrics_gzip_by_accept_encoding(scraper: httpx.Client) -> None:
    with scraper.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == "gzip"
        raw = response.read()
    # httpx decoded it; the header said gzip. Check the bytes are what a scraper gets.
    text = raw.decode() if not raw.startswith(b"\x1f\x8b") else gzip.decompress(raw).decode()
    assert "health_check_up" in text


def test_metrics_pass_promtool(scraper: httpx.Client, ingested: httpx.Response) -> None:
    promtool = require_binary("promtool")
    assert ingested.status_code == 202
    text = scraper.get("/metrics").text
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_no_secret_is_served(api: httpx.Client, scraper: httpx.Client) -> None:
    pages = [
        api.get(path).text
        for path in ("/api/health", "/api/v1/checks", "/api/v1/actors", "/", "/api/v1/alerts")
    ]
    pages.append(scraper.get("/metrics").text)
    for page in pages:
        assert API_TOKEN not in page
        assert METRICS_TOKEN not in page


def test_keep_alive_connection_survives_a_401(monitor: Monitor) -> None:
    # An operator's client (httpx, like most) keeps the connection and reuses it.
    for path in ("/api/v1/events", "/api/v1/silences", "/api/v1/reload") * 4:
        with httpx.Client(base_url=monitor.api, timeout=1.0) as client:
            assert client.post(path, json={"events": []}).status_code == 401
            # the probe fast path and a framework route, both on the same connection
            for follow_up in ("/api/health/live", "/api/v1/checks"):
                try:
                    after = client.get(follow_up).status_code
                except httpx.ReadTimeout:
                    pytest.fail(f"the connection stalled after a 401 on {path}")
                assert after == 200


# -- checks that have not run yet ------------------------------------------------------------------
PENDING_CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "5s"

[log]
format = "json"

[[checks]]
name = "self"
kind = "self"
interval = "200ms"
timeout = "200ms"
critical = true

[[checks]]
name = "slow-api"
kind = "http"
url = "{url}/health"
interval = "1h"
timeout = "20s"
critical = false
"""


def test_a_check_not_run_yet_is_listed_as_pending_from_the_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`slow-api` (interval 1h) answers only when the test lets it: until then it is pending in
    every document, and neither degrades the overall status nor holds readiness."""
    tmp = tmp_path_factory.mktemp("pending")
    config = tmp / "pending.toml"
    with HttpPeer() as peer:
        peer.hold()
        config.write_text(PENDING_CONFIG.format(db=tmp / "monitor.db", url=peer.url))
        proc = Monitor(config)
        try:
            proc.start()
            with httpx.Client(base_url=proc.api, timeout=5.0) as client:
                # Listed at once, before any run (the first request of the process).
                first = client.get("/api/health").json()
                assert "slow-api" in first["checks"]
                wait_until(lambda: client.get("/api/health/ready").status_code == 200, "readiness")
                wait_until(lambda: peer.received("/health"), "the first run of slow-api to start")

                def settled() -> dict[str, Any] | None:
                    doc: dict[str, Any] = client.get("/api/health").json()
                    return doc if doc["checks"]["self"]["status"] == "pass" else None

                doc = wait_until(settled, "the self check's first result")
                assert doc["status"] == "healthy"
                assert list(doc["checks"]) == ["self", "slow-api"]
                assert doc["checks"]["slow-api"] == {
                    "status": "pending",
                    "message": "not run yet",
                    "details": {},
                }
                ietf = client.get("/api/health", headers={"Accept": "application/health+json"})
                assert ietf.status_code == 200
                assert ietf.json()["status"] == "pass"
                entry = ietf.json()["checks"]["slow-api:responseTime"][0]
                assert (entry["status"], entry["output"]) == ("warn", "not run yet")
                one = client.get("/api/v1/checks/slow-api").json()
                assert (one["status"], one["message"]) == ("pending", "not run yet")
                page = client.get("/").text
                assert '<tr class="check pending" data-check="slow-api">' in page

                # Its first result replaces the pending entry.
                peer.release()

                def ran() -> dict[str, Any] | None:
                    check: dict[str, Any] = client.get("/api/health").json()["checks"]["slow-api"]
                    return check if check["status"] != "pending" else None

                assert wait_until(ran, "slow-api's first result")["status"] == "pass"
        finally:
            status = proc.stop()
        assert status == 0, proc.log()[-4000:]
