"""GET /api/v1/agents/status lists expected agents that never reported as `missing`."""

from __future__ import annotations

from actors.telemetry.agents import AgentRegistry
from actors.telemetry.api import create_blueprint
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from tests.actors.web.guarded import guarded_app


async def test_expected_agents_never_reported_are_missing(store: MetricStore) -> None:
    agents = AgentRegistry(expected=["esg-chief-of-staff", "carbon-hunter"])
    telemetry = Telemetry(store=store, agents=agents)
    client = guarded_app(create_blueprint(telemetry=telemetry)).test_client()

    body = await (await client.get("/api/v1/agents/status")).get_json()
    assert {a["agent"]: (a["status"], a["lastSeen"]) for a in body["agents"]} == {
        "carbon-hunter": ("missing", None),
        "esg-chief-of-staff": ("missing", None),
    }

    agents.heartbeat("carbon-hunter", store.now())
    body = await (await client.get("/api/v1/agents/status")).get_json()
    statuses = {a["agent"]: a["status"] for a in body["agents"]}
    assert statuses == {"carbon-hunter": "healthy", "esg-chief-of-staff": "missing"}
