"""GET /api/v1/alerts and /api/v1/silences through Quart's test client (under trio)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import trio
from pydantic import SecretStr
from quart_trio import QuartTrio
from trio.testing import MockClock

from actors.clock import VirtualClock
from actors.models import AlertEvent
from actors.routing.actor import RoutingActor
from actors.routing.api import create_blueprint
from actors.routing.config import RoutingConfig
from actors.routing.persist import MemoryRoutingStore
from actors.routing.silencing import Silences
from actors.rules.actor import RulesActor
from actors.rules.config import RuleConfig
from actors.telemetry.store import MetricStore
from tests.actors.web.guarded import guarded_app

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
START = 1_790_000_000.0


class Outbox:
    async def enqueue(self, notification: Any) -> bool:
        return True


def _setup() -> tuple[QuartTrio, RulesActor, RoutingActor, Silences, MetricStore]:
    clock = VirtualClock(START)
    store = MetricStore(clock=clock)
    store.declare("health_check_up", "gauge", "Up.", ("check",))
    send, receive = trio.open_memory_channel[AlertEvent](100)
    rules = RulesActor(
        rules=[
            RuleConfig.model_validate(
                {
                    "id": "down",
                    "name": "Down",
                    "severity": "critical",
                    "summary": "{{ labels.check }} down",
                    "condition": {"metric": "health_check_up", "operator": "<", "threshold": 1},
                }
            ),
            RuleConfig.model_validate(
                {
                    "id": "slow",
                    "name": "Slow",
                    "condition": {
                        "metric": "health_check_up",
                        "operator": "<",
                        "threshold": 1,
                        "duration": "1h",
                    },
                }
            ),
        ],
        store=store,
        sink=send,
        clock=clock,
    )
    silences = Silences(store=MemoryRoutingStore(), clock=clock)
    routing = RoutingActor(
        config=RoutingConfig(), events=receive, outbox=Outbox(), clock=clock, silences=silences
    )
    app = guarded_app(
        create_blueprint(rules=rules, routing=routing, silences=silences, clock=clock),
        api_token=SecretStr(TOKEN),
    )
    return app, rules, routing, silences, store


async def test_alerts_and_silences(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    app, rules, routing, _, store = _setup()
    await nursery.start(rules.run)
    await nursery.start(routing.run)
    store.record("health_check_up", 0, {"check": "db"})
    await trio.sleep(0.01)
    client = app.test_client()

    resp = await client.get("/api/v1/alerts")
    assert resp.status_code == 200
    alerts = (await resp.get_json())["alerts"]
    assert [(a["rule"], a["state"]) for a in alerts] == [("down", "firing"), ("slow", "pending")]
    first = alerts[0]
    assert first["labels"]["check"] == "db"
    assert first["annotations"] == {"summary": "db down"}
    assert first["activeSince"].endswith("Z")
    assert first["value"] == 0
    assert first["silencedBy"] == []

    resp = await client.get("/api/v1/alerts?state=pending&filter=rule=slow")
    assert [a["rule"] for a in (await resp.get_json())["alerts"]] == ["slow"]
    resp = await client.get("/api/v1/alerts?filter=bad")
    assert resp.status_code == 400

    body = {"matchers": ["alertname=Down"], "duration": "2h", "createdBy": "ops", "comment": "m"}
    resp = await client.post("/api/v1/silences", json=body)
    assert resp.status_code == 401
    resp = await client.post("/api/v1/silences", json=body, headers=AUTH)
    assert resp.status_code == 201
    created = await resp.get_json()
    assert created["status"] == {"state": "active"}
    assert created["createdBy"] == "ops"
    sid = created["silenceID"]

    resp = await client.get("/api/v1/alerts?state=firing")
    assert (await resp.get_json())["alerts"][0]["silencedBy"] == [sid]

    resp = await client.get("/api/v1/silences")
    assert [s["id"] for s in (await resp.get_json())["silences"]] == [sid]
    resp = await client.get(f"/api/v1/silences/{sid}")
    assert (await resp.get_json())["comment"] == "m"

    resp = await client.delete(f"/api/v1/silences/{sid}", headers=AUTH)
    assert resp.status_code == 200
    assert (await resp.get_json())["status"] == {"state": "expired"}
    resp = await client.delete("/api/v1/silences/nope", headers=AUTH)
    assert resp.status_code == 404
    assert "error" in await resp.get_json()
    resp = await client.get("/api/v1/silences/nope")
    assert resp.status_code == 404


async def test_bad_silence_bodies(autojump_clock: MockClock) -> None:
    app, *_ = _setup()
    client = app.test_client()
    cases: list[tuple[Any, str]] = [
        ({"matchers": [], "duration": "1h"}, "matchers"),
        ({"matchers": ["a=~.*"], "duration": "1h"}, "empty string"),
        ({"matchers": ["a b"], "duration": "1h"}, "matcher"),
        ({"matchers": ["a=b"]}, "endsAt or duration"),
        ({"matchers": ["a=b"], "duration": "soon"}, "duration"),
        ({"matchers": ["a=b"], "endsAt": "2020-01-01T00:00:00Z"}, "ends"),
        ({"matchers": ["a=b"], "duration": "1h", "extra": 1}, "extra"),
        (
            {"matchers": [{"name": "a", "value": "b", "isRegex": False}], "endsAt": "yesterday"},
            "endsAt",
        ),
    ]
    for body, fragment in cases:
        resp = await client.post("/api/v1/silences", json=body, headers=AUTH)
        assert resp.status_code == 400, body
        assert fragment in (await resp.get_json())["error"], body
    resp = await client.post(
        "/api/v1/silences", data=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status_code == 400


async def test_matcher_objects_alertmanager_style(autojump_clock: MockClock) -> None:
    app, _, _, silences, _ = _setup()
    client = app.test_client()
    body = {
        "matchers": [{"name": "check", "value": "db.*", "isRegex": True, "isEqual": True}],
        "startsAt": "2030-01-01T00:00:00Z",
        "endsAt": "2030-01-02T00:00:00Z",
    }
    resp = await client.post("/api/v1/silences", json=body, headers=AUTH)
    assert resp.status_code == 201
    data = await resp.get_json()
    assert data["matchers"] == ['check=~"db.*"']
    assert data["status"] == {"state": "pending"}
    assert len(silences.all()) == 1


async def test_allow_list_and_open_writes_without_a_token(autojump_clock: MockClock) -> None:
    _, rules, routing, silences, _ = _setup()
    clock = VirtualClock(START)
    closed = guarded_app(
        create_blueprint(rules=rules, routing=routing, silences=silences, clock=clock),
        allow_from=("10.0.0.0/8",),
    )
    resp = await closed.test_client().get("/api/v1/alerts")
    assert resp.status_code == 403
    assert (await resp.get_json()) == {"error": "client address not allowed"}
    open_app = guarded_app(
        create_blueprint(rules=rules, routing=routing, silences=silences, clock=clock)
    )
    resp = await open_app.test_client().post(
        "/api/v1/silences", json={"matchers": ["a=b"], "duration": "1h"}
    )
    assert resp.status_code == 201  # no token configured: writes are open, as for events


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).isoformat().replace("+00:00", "Z")


class TickingClock:
    """Wall time that moves on every read, as real time does between two `now()` calls."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        self._now += 0.001
        return self._now

    def monotonic(self) -> float:
        return self._now - START


async def test_a_silence_starting_now_or_before_is_active_at_once() -> None:
    clock = TickingClock(START)
    send, receive = trio.open_memory_channel[AlertEvent](1)
    silences = Silences(store=MemoryRoutingStore(), clock=clock)
    routing = RoutingActor(
        config=RoutingConfig(), events=receive, outbox=Outbox(), clock=clock, silences=silences
    )
    rules = RulesActor(rules=[], store=MetricStore(clock=clock), sink=send, clock=clock)
    app = guarded_app(
        create_blueprint(rules=rules, routing=routing, silences=silences, clock=clock)
    )
    client = app.test_client()
    ago = _rfc3339(START - 600)
    bodies: list[dict[str, Any]] = [
        {"matchers": ["alertname=Down"], "duration": "1h"},
        {"matchers": ["alertname=Down"], "startsAt": ago, "duration": "1h"},
        {"matchers": ["check=db"], "startsAt": ago, "endsAt": "2030-01-02T00:00:00Z"},
    ]
    for body in bodies:
        resp = await client.post("/api/v1/silences", json=body)
        assert resp.status_code == 201, body
        created = await resp.get_json()
        assert created["status"] == {"state": "active"}, body
        resp = await client.get(f"/api/v1/silences/{created['silenceID']}")
        assert (await resp.get_json())["status"] == {"state": "active"}, body
        resp = await client.delete(f"/api/v1/silences/{created['silenceID']}")
        assert (await resp.get_json())["status"] == {"state": "expired"}, body
    future = {"matchers": ["check=db"], "startsAt": "2030-01-01T00:00:00Z", "duration": "1h"}
    resp = await client.post("/api/v1/silences", json=future)
    assert (await resp.get_json())["status"] == {"state": "pending"}


# -- Alertmanager API v2 (what amtool speaks) ---------------------------------------------------
def _matcher(name: str, value: str, *, regex: bool = False, equal: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": regex, "isEqual": equal}


async def test_v2_status_has_what_amtool_reads(autojump_clock: MockClock) -> None:
    app, *_ = _setup()
    resp = await app.test_client().get("/api/v2/status")
    assert resp.status_code == 200
    body = await resp.get_json()
    assert body["cluster"]["status"] in ("ready", "settling", "disabled")
    assert body["versionInfo"]["version"]
    assert set(body["versionInfo"]) == {
        "version",
        "revision",
        "branch",
        "buildUser",
        "buildDate",
        "goVersion",
    }
    assert body["uptime"].endswith("Z")


async def test_v2_silence_lifecycle(autojump_clock: MockClock) -> None:
    app, _, _, silences, _ = _setup()
    client = app.test_client()
    body = {
        "matchers": [_matcher("alertname", "Down"), _matcher("level", "(?i)crit.*", regex=True)],
        "startsAt": "2026-09-21T00:00:00Z",
        "endsAt": "2030-01-01T00:00:00Z",
        "createdBy": "ops",
        "comment": "deploy",
    }
    resp = await client.post("/api/v2/silences", json=body)
    assert resp.status_code == 401
    resp = await client.post("/api/v2/silences", json=body, headers=AUTH)
    assert resp.status_code == 200
    created = await resp.get_json()
    assert set(created) == {"silenceID"}
    sid = created["silenceID"]
    assert silences.get(sid).matchers == ('alertname="Down"', 'level=~"(?i)crit.*"')

    resp = await client.get("/api/v2/silences")
    [listed] = await resp.get_json()
    assert listed["id"] == sid
    assert listed["matchers"] == body["matchers"]
    assert listed["createdBy"] == "ops"
    assert listed["status"] == {"state": "active"}
    resp = await client.get(f"/api/v2/silence/{sid}")
    assert (await resp.get_json())["comment"] == "deploy"

    # Alertmanager's filter: matchers over the silence's own matchers as labels.
    for query, found in [
        ("filter=alertname=Down", True),
        ("filter=alertname=Up", False),
        ("filter=alertname=~Do.*", True),
        ("filter=other=", True),  # an empty value asks that the name is absent
        ("filter=alertname!=", True),  # ... or present
        ("filter=alertname=", False),
    ]:
        resp = await client.get(f"/api/v2/silences?{query}")
        assert [s["id"] for s in await resp.get_json()] == ([sid] if found else []), query
    resp = await client.get("/api/v2/silences?filter=bad")
    assert resp.status_code == 400
    assert "error" in await resp.get_json()

    # Posting with the id replaces it: a new silence, the old one expired.
    resp = await client.post(
        "/api/v2/silences", json={**body, "id": sid, "comment": "longer"}, headers=AUTH
    )
    assert resp.status_code == 200
    new_id = (await resp.get_json())["silenceID"]
    assert new_id != sid
    states = {s.id: s.state(START) for s in silences.all()}
    assert states[sid] == "expired"
    assert states[new_id] == "active"
    resp = await client.post("/api/v2/silences", json={**body, "id": "nope"}, headers=AUTH)
    assert resp.status_code == 404
    assert "error" in await resp.get_json()

    resp = await client.delete(f"/api/v2/silence/{new_id}")
    assert resp.status_code == 401
    resp = await client.delete(f"/api/v2/silence/{new_id}", headers=AUTH)
    assert resp.status_code == 200
    assert silences.get(new_id).state(START) == "expired"
    resp = await client.delete("/api/v2/silence/nope", headers=AUTH)
    assert resp.status_code == 404
    resp = await client.get("/api/v2/silence/nope")
    assert resp.status_code == 404


BAD_BODIES: list[tuple[Any, str]] = [
    ([], "body"),
    ("text", "body"),
    (3, "body"),
    ({"matchers": "alertname=X", "endsAt": "2030-01-01T00:00:00Z"}, "matchers"),
    ({"matchers": [{"name": "a"}], "endsAt": "2030-01-01T00:00:00Z"}, "value"),
    ({"matchers": [_matcher("a", "b")], "endsAt": "2030-01-01T00:00:00"}, "endsAt"),
    ({"matchers": [_matcher("a", "b")], "endsAt": 5}, "ends"),  # a Unix time, in 1970
    ({"matchers": [_matcher("a", "b")]}, "endsAt or duration"),
    ({"matchers": [_matcher("1a", "b")], "endsAt": "2030-01-01T00:00:00Z"}, "matcher"),
    ({"matchers": [_matcher("a", "(", regex=True)], "endsAt": "2030-01-01T00:00:00Z"}, "regular"),
    ({"matchers": [_matcher("a", ".*", regex=True)], "endsAt": "2030-01-01T00:00:00Z"}, "empty"),
    ({"matchers": [_matcher("a", "b")], "endsAt": "2020-01-01T00:00:00Z"}, "ends"),
    ({"matchers": [_matcher("a", "b")], "endsAt": "9999-12-31T23:59:59-01:00"}, "9999"),
    (
        {
            "matchers": [_matcher("a", "b")],
            "startsAt": "0001-01-01T00:00:00+01:00",
            "endsAt": "2030-01-01T00:00:00Z",
        },
        "9999",
    ),
    ({"matchers": [_matcher("a", "b")], "duration": "99999999999999999999h"}, "9999"),
    ({"matchers": [_matcher("a", "b")], "endsAt": "2030-01-01T00:00:00Z", "id": 5}, "id"),
    ({"matchers": [_matcher("a", "b")], "endsAt": "2030-01-01T00:00:00Z", "x": 1}, "x"),
]


async def test_bad_bodies_are_400_with_a_json_error_on_both_versions(
    autojump_clock: MockClock,
) -> None:
    app, _, _, silences, _ = _setup()
    client = app.test_client()
    for path in ("/api/v1/silences", "/api/v2/silences"):
        for body, fragment in BAD_BODIES:
            if path.startswith("/api/v1") and isinstance(body, dict) and "id" in body:
                fragment = "id"  # v1 has no id: an extra field
            resp = await client.post(path, json=body, headers=AUTH)
            assert resp.status_code == 400, (path, body, resp.status_code)
            error = (await resp.get_json())["error"]
            assert fragment in error, (path, body, error)
        for raw, fragment in [(b"\xff{", "JSON"), (b"", "JSON"), (b"null", "body")]:
            resp = await client.post(
                path, data=raw, headers={**AUTH, "Content-Type": "application/json"}
            )
            assert resp.status_code == 400, (path, raw)
            assert fragment in (await resp.get_json())["error"], (path, raw)
    assert silences.all() == []
