"""The API app: health documents, probes, checks, actors, status page, allow-list, tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from quart import Blueprint, jsonify

from actors.clock import FixedClock
from actors.models import CheckStatus
from actors.state import HealthState
from actors.telemetry.store import MetricStore
from actors.web.access import AccessGuard, AllowList, Scope, requires
from actors.web.app import create_app, read_figures
from actors.web.config import SecurityConfig

from .conftest import result

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL


def _state(clock: FixedClock) -> HealthState:
    state = HealthState(checks={"database": True, "agents": False, "mlModels": False}, clock=clock)
    state.publish(result("database", critical=True, message="Database healthy"))
    state.publish(
        result(
            "agents",
            message="All 4 agents healthy",
            details={"activeAgents": 4, "totalAgents": 4},
        )
    )
    state.publish(
        result(
            "mlModels",
            message="All 4 ML models healthy",
            details={"deployedModels": 4, "avgLatency": 125},
        )
    )
    return state


async def test_health_document_is_the_seeds() -> None:
    clock = FixedClock(1_752_580_800.0)
    state = _state(clock)
    clock.advance(86400)
    store = MetricStore(clock=clock)
    store.declare("api_requests_total", "counter", "r", ("endpoint", "method", "status"))
    store.declare("api_request_duration_seconds", "histogram", "d", ("endpoint", "method"))
    store.declare("active_users", "gauge", "u", ())
    for i in range(150):
        store.record("api_requests_total", 1, {"endpoint": "/x", "method": "GET", "status": "200"})
        store.record(
            "api_request_duration_seconds",
            0.2 if i % 2 else 0.3,
            {"endpoint": "/x", "method": "GET"},
        )
    store.record("active_users", 42)
    app = create_app(health=state, store=store, clock=clock, version="1.0.0")
    response = await app.test_client().get("/api/health")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = await response.get_json()
    assert body == {
        "status": "healthy",
        "timestamp": "2025-07-16T12:00:00Z",
        "version": "1.0.0",
        "checks": {
            "database": {
                "status": "pass",
                "message": "Database healthy",
                "latency": 45,
                "details": {},
            },
            "agents": {
                "status": "pass",
                "message": "All 4 agents healthy",
                "latency": 45,
                "details": {"activeAgents": 4, "totalAgents": 4},
            },
            "mlModels": {
                "status": "pass",
                "message": "All 4 ML models healthy",
                "latency": 45,
                "details": {"deployedModels": 4, "avgLatency": 125},
            },
        },
        "metrics": {
            "uptime": 86400,
            "requestsPerMinute": 150,
            "averageResponseTime": 250,
            "activeUsers": 42,
        },
    }


async def test_status_codes_and_ietf_format() -> None:
    clock = FixedClock()
    state = _state(clock)
    app = create_app(health=state, clock=clock, version="1.2.3", render_interval=0)
    client = app.test_client()
    state.publish(result("agents", W))
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "degraded"
    state.publish(result("database", F, critical=True, message="connection refused"))
    clock.advance(2)
    response = await client.get("/api/health")
    assert response.status_code == 503
    assert (await response.get_json())["status"] == "unhealthy"
    response = await client.get("/api/health", headers={"Accept": "application/health+json"})
    assert response.status_code == 503
    assert response.content_type == "application/health+json"
    body = await response.get_json()
    assert body["status"] == "fail"
    assert body["releaseId"] == "1.2.3"
    entry = body["checks"]["database:responseTime"][0]
    assert entry["status"] == "fail"
    assert entry["output"] == "connection refused"
    assert entry["observedUnit"] == "ms"


async def test_live_and_ready() -> None:
    clock = FixedClock()
    state = HealthState(checks={"database": True}, clock=clock)
    client = create_app(health=state, clock=clock).test_client()
    assert (await client.get("/api/health/live")).status_code == 200
    response = await client.get("/api/health/ready")
    assert response.status_code == 503
    assert "database" in (await response.get_json())["reasons"][0]
    state.publish(result("database", critical=True))
    assert (await client.get("/api/health/ready")).status_code == 200
    state.publish(result("database", F, critical=True, message="down"))
    response = await client.get("/api/health/ready")
    assert response.status_code == 503
    assert (await response.get_json())["reasons"] == ["critical check database fails: down"]
    assert (await client.get("/api/health/live")).status_code == 200  # never tied to checks
    state.publish(result("database", critical=True))
    state.begin_draining()
    response = await client.get("/api/health/ready")
    assert response.status_code == 503
    assert (await response.get_json())["reasons"] == ["shutting down"]


async def test_checks_routes() -> None:
    clock = FixedClock()
    state = HealthState(checks={"database": True, "api": False}, clock=clock, history_size=2)
    for status in (P, F, P):
        state.publish(result("database", status, critical=True))
    client = create_app(health=state, clock=clock).test_client()
    body = await (await client.get("/api/v1/checks")).get_json()
    assert [c["name"] for c in body["checks"]] == ["database", "api"]
    assert body["checks"][1]["status"] == "pending"
    body = await (await client.get("/api/v1/checks/database")).get_json()
    assert body["status"] == "pass"
    assert body["critical"] is True
    assert [h["status"] for h in body["history"]] == ["fail", "pass"]
    response = await client.get("/api/v1/checks/nope")
    assert response.status_code == 404
    assert (await response.get_json()) == {"error": "no check named 'nope'"}
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert "error" in (await response.get_json())


PENDING_ENTRY = {"status": "pending", "message": "not run yet", "details": {}}


async def test_checks_not_run_yet_are_listed_as_pending_from_the_start() -> None:
    clock = FixedClock(1_752_580_800.0)
    state = HealthState(checks={"database": True, "api": False, "mlModels": False}, clock=clock)
    client = create_app(health=state, clock=clock, version="1.0.0", render_interval=0).test_client()

    # Nothing has run: every check is listed, the overall status is not degraded by them.
    response = await client.get("/api/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "healthy"
    assert body["checks"] == dict.fromkeys(("database", "api", "mlModels"), PENDING_ENTRY)
    response = await client.get("/api/health/ready")
    assert response.status_code == 503
    assert (await response.get_json())["reasons"] == [
        "starting: waiting for the first run of database"
    ]

    state.publish(result("database", critical=True, message="Database healthy"))
    body = await (await client.get("/api/health")).get_json()
    assert body["status"] == "healthy"
    assert list(body["checks"]) == ["database", "api", "mlModels"]
    assert body["checks"]["database"]["status"] == "pass"
    assert body["checks"]["api"] == PENDING_ENTRY
    assert (await client.get("/api/health/ready")).status_code == 200

    response = await client.get("/api/health", headers={"Accept": "application/health+json"})
    assert response.status_code == 200
    ietf = await response.get_json()
    assert ietf["status"] == "pass"
    assert "output" not in ietf
    assert ietf["checks"]["api:responseTime"] == [
        {
            "componentId": "api",
            "componentType": "component",
            "status": "warn",
            "output": "not run yet",
        }
    ]
    assert ietf["checks"]["database:responseTime"][0]["status"] == "pass"
    assert list(ietf["checks"]) == [
        "database:responseTime",
        "api:responseTime",
        "mlModels:responseTime",
        "uptime",
    ]

    listing = await (await client.get("/api/v1/checks")).get_json()
    assert [(c["name"], c["status"]) for c in listing["checks"]] == [
        ("database", "pass"),
        ("api", "pending"),
        ("mlModels", "pending"),
    ]
    assert listing["checks"][1]["message"] == "not run yet"

    page = await (await client.get("/")).get_data(as_text=True)
    assert '<tr class="check pending" data-check="api">' in page
    assert "not run yet" in page


async def test_reload_lists_a_new_check_as_pending_and_drops_a_removed_one() -> None:
    clock = FixedClock()
    state = HealthState(checks={"database": True, "api": False}, clock=clock)
    state.publish(result("database", critical=True))
    state.publish(result("api", F))
    client = create_app(health=state, clock=clock, render_interval=0).test_client()
    body = await (await client.get("/api/health")).get_json()
    assert body["status"] == "degraded"

    state.configure({"database": True, "payments": False})
    state.publish(result("api", F))  # the removed check's actor, still stopping
    body = await (await client.get("/api/health")).get_json()
    assert body["checks"] == {
        "database": body["checks"]["database"],
        "payments": PENDING_ENTRY,
    }
    assert body["status"] == "healthy"
    ietf = await (
        await client.get("/api/health", headers={"Accept": "application/health+json"})
    ).get_json()
    assert "api:responseTime" not in ietf["checks"]
    assert ietf["checks"]["payments:responseTime"][0]["output"] == "not run yet"
    assert (await client.get("/api/v1/checks/api")).status_code == 404
    page = await (await client.get("/")).get_data(as_text=True)
    assert ">api<" not in page
    assert ">payments<" in page


@dataclass(frozen=True)
class _Info:
    id: str
    restarts: int
    children: tuple[Any, ...] = ()
    since: float | None = None


async def test_actors_route() -> None:
    clock = FixedClock(1_752_580_800.0)
    clock.advance(100)  # loop time 100 s, wall 2025-07-15T12:01:40Z
    state = HealthState(clock=clock)
    tree = _Info("root", 0, (_Info("web", 2, since=40.0),))
    client = create_app(health=state, tree=lambda: tree, clock=clock).test_client()
    body = await (await client.get("/api/v1/actors")).get_json()
    assert body == {
        "id": "root",
        "restarts": 0,
        "since": None,
        "children": [{"id": "web", "restarts": 2, "children": [], "since": "2025-07-15T12:00:40Z"}],
    }
    client = create_app(health=state).test_client()
    assert (await client.get("/api/v1/actors")).status_code == 503


async def test_status_page_escapes() -> None:
    clock = FixedClock()
    state = HealthState(checks={"api": False}, clock=clock)
    state.publish(result("api", F, message="<script>alert(1)</script>"))
    response = await create_app(health=state, clock=clock).test_client().get("/")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page
    assert "https://" not in page


async def test_a_blueprint_route_is_guarded_by_the_scope_it_declares() -> None:
    state = HealthState(clock=FixedClock())
    blueprint = Blueprint("extra", __name__)

    @blueprint.post("/api/v1/things")
    @requires(Scope.EVENTS_WRITE)
    async def things() -> Any:
        return jsonify({"ok": True})

    @blueprint.get("/api/v1/undeclared")
    async def undeclared() -> Any:
        return jsonify({"ok": True})

    security = SecurityConfig(api_token=SecretStr("s3cret"), allow_from=("10.0.0.0/8",))
    access = AccessGuard(security, listen="0.0.0.0:3000")
    app = create_app(health=state, blueprints=[blueprint], access=access)
    client = app.test_client()
    inside = {"client": ("10.1.2.3", 5000)}
    outside = {"client": ("192.168.1.1", 5000)}
    response = await client.get("/api/v1/checks", scope_base=outside)
    assert response.status_code == 403
    assert (await client.get("/api/v1/checks", scope_base=inside)).status_code == 200
    assert (await client.get("/api/health/live", scope_base=outside)).status_code == 200
    response = await client.post("/api/v1/things", scope_base=inside)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.post(
        "/api/v1/things", scope_base=inside, headers={"Authorization": "Bearer s3cret"}
    )
    assert response.status_code == 200
    # A route that declares no scope is refused, whoever asks.
    response = await client.get(
        "/api/v1/undeclared", scope_base=inside, headers={"Authorization": "Bearer s3cret"}
    )
    assert response.status_code == 500
    assert (await response.get_json()) == {"error": "this route declares no access scope"}
    allow = AllowList(["127.0.0.1/32", "::1"])
    assert allow.allows("127.0.0.1")
    assert allow.allows("::ffff:127.0.0.1")
    assert not allow.allows("garbage")


def test_read_figures_without_metrics() -> None:
    figures = read_figures(MetricStore(clock=FixedClock()), now=1.0, uptime=5.0)
    assert (figures.requests_per_minute, figures.average_response_time) == (0.0, 0.0)
    assert json.dumps(figures.uptime) == "5.0"
