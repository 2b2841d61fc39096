"""POST /api/v1/events and GET /api/v1/agents/status through Quart's test client (under trio)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr
from quart_trio import QuartTrio

from actors.telemetry.api import create_blueprint, ingest
from actors.telemetry.recording import Telemetry
from tests.actors.web.guarded import guarded_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _app(telemetry: Telemetry, **security: Any) -> QuartTrio:
    security.setdefault("api_token", SecretStr(TOKEN))
    return guarded_app(create_blueprint(telemetry=telemetry), **security)


GOOD = [
    {
        "type": "agent_execution",
        "agent": "carbon-hunter",
        "duration_seconds": 0.5,
        "success": False,
    },
    {"type": "heartbeat", "agent": "esg-chief-of-staff"},
    {
        "type": "ml_prediction",
        "model": "emissions-predictor",
        "latency_seconds": 0.1,
        "confidence": 0.9,
    },
    {"type": "ml_accuracy", "model": "compliance-risk", "accuracy": 0.85},
    {
        "type": "api_request",
        "endpoint": "/api/ml/predict",
        "method": "POST",
        "status": 500,
        "duration_seconds": 2.5,
    },
    {
        "type": "business_metric",
        "name": "emissions",
        "value": 10.5,
        "labels": {"organization": "org-1", "scope": "scope1"},
    },
    {"type": "user_message", "intent": "esg_analysis", "organization": "org-1"},
]


async def test_all_good_batch_is_accepted(telemetry: Telemetry) -> None:
    client = _app(telemetry).test_client()
    response = await client.post("/api/v1/events", json={"events": GOOD}, headers=AUTH)
    assert response.status_code == 202
    assert await response.get_json() == {"accepted": len(GOOD), "rejected": []}
    store = telemetry.store
    assert store.aggregate("agent_errors_total", {}, "increase", 60) == {
        (("agent", "carbon-hunter"),): 1.0
    }
    assert store.aggregate("api_errors_total", {}, "increase", 60) == {
        (("endpoint", "/api/ml/predict"), ("method", "POST")): 1.0
    }
    status = await (await client.get("/api/v1/agents/status")).get_json()
    assert [a["agent"] for a in status["agents"]] == ["carbon-hunter", "esg-chief-of-staff"]
    assert status["agents"][0]["errors"] == 1


async def test_mixed_batch_keeps_good_items_and_reports_bad_by_index(telemetry: Telemetry) -> None:
    client = _app(telemetry).test_client()
    events = [
        GOOD[0],
        {"type": "agent_execution", "agent": "a", "duration_seconds": -1, "success": True},
        {"type": "nope"},
        "not an object",
        {"type": "heartbeat", "agent": "x", "extra": 1},
        {"type": "business_metric", "name": "unknown_kpi", "value": 1},
        {
            "type": "business_metric",
            "name": "emissions",
            "value": 1,
            "labels": {"organization": "o"},
        },
        GOOD[6],
    ]
    response = await client.post("/api/v1/events", json={"events": events}, headers=AUTH)
    assert response.status_code == 202
    body = await response.get_json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5, 6]
    errors = {r["index"]: r["error"] for r in body["rejected"]}
    assert "duration_seconds" in errors[1]
    assert "extra" in errors[4]
    assert "unknown_kpi" in errors[5]
    assert "scope" in errors[6]
    assert telemetry.store.aggregate("user_messages_total", {}, "increase", 60) != {}


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"events": {}}', b'{"items": []}', b'{"events": [], "x": 1}'],
)
async def test_not_a_batch_is_400(telemetry: Telemetry, body: bytes) -> None:
    client = _app(telemetry).test_client()
    response = await client.post("/api/v1/events", data=body, headers=AUTH)
    assert response.status_code == 400
    assert "error" in await response.get_json()


async def test_auth_and_cidr(telemetry: Telemetry) -> None:
    client = _app(telemetry).test_client()
    payload = {"events": GOOD[:1]}
    assert (await client.post("/api/v1/events", json=payload)).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    response = await client.post("/api/v1/events", json=payload, headers=bad)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    basic = {"Authorization": f"Basic {TOKEN}"}
    assert (await client.post("/api/v1/events", json=payload, headers=basic)).status_code == 401
    local = {"client": ("127.0.0.1", 40000)}
    denied = _app(telemetry, allow_from=("10.0.0.0/8",)).test_client()
    response = await denied.post("/api/v1/events", json=payload, headers=AUTH, scope_base=local)
    assert response.status_code == 403
    assert (await denied.get("/api/v1/agents/status", scope_base=local)).status_code == 403
    allowed = _app(telemetry, allow_from=("127.0.0.0/8",)).test_client()
    response = await allowed.post("/api/v1/events", json=payload, headers=AUTH, scope_base=local)
    assert response.status_code == 202
    open_app = _app(telemetry, api_token=SecretStr("")).test_client()
    assert (await open_app.post("/api/v1/events", json=payload)).status_code == 202


async def test_body_size_limit(telemetry: Telemetry) -> None:
    client = _app(telemetry, max_body_bytes=2048).test_client()
    big = json.dumps({"events": [GOOD[1]] * 100}).encode()
    assert len(big) > 2048
    response = await client.post("/api/v1/events", data=big, headers=AUTH)
    assert response.status_code == 413
    assert "error" in await response.get_json()
    small = json.dumps({"events": [GOOD[1]] * 5}).encode()
    assert (await client.post("/api/v1/events", data=small, headers=AUTH)).status_code == 202


def test_ingest_is_usable_without_http(telemetry: Telemetry) -> None:
    status, payload = ingest(telemetry, json.dumps({"events": GOOD * 3}).encode())
    assert status == 202
    assert payload == {"accepted": 21, "rejected": []}
