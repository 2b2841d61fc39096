"""POST /api/v1/events against hostile bodies: nesting, huge numbers, batch size."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from actors.telemetry.api import create_blueprint, ingest
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from tests.actors.web.guarded import guarded_app

HEARTBEAT = {"type": "heartbeat", "agent": "carbon-hunter"}
ORGS = {"type": "business_metric", "name": "organizations_active", "value": 3}


def _body(*events: Any) -> bytes:
    return json.dumps({"events": list(events)}).encode()


@pytest.mark.parametrize("depth", [5_000, 300_000])
def test_deeply_nested_json_is_a_400_not_a_crash(telemetry: Telemetry, depth: int) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"events":' + b"[" * depth + b"]" * depth + b"}"):
        status, payload = ingest(telemetry, body)
        assert status == 400
        assert "not valid JSON" in payload["error"] or "events" in payload["error"]


def test_an_enormous_integer_costs_only_its_own_item(
    telemetry: Telemetry, store: MetricStore
) -> None:
    huge = '{"type":"business_metric","name":"organizations_active","value":' + "9" * 5000 + "}"
    big_status = '{"type":"api_request","endpoint":"/x","method":"GET","status":' + "5" * 30
    body = (
        '{"events":['
        + json.dumps(HEARTBEAT)
        + ","
        + huge
        + ","
        + big_status
        + ',"duration_seconds":0.1},'
        + json.dumps(ORGS)
        + "]}"
    ).encode()
    status, payload = ingest(telemetry, body)
    assert status == 202
    assert payload["accepted"] == 2
    assert [r["index"] for r in payload["rejected"]] == [1, 2]
    assert store.aggregate("organizations_active", {}, "last", 60) == {(): 3.0}


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00garbage", b"", b"null", b"[]", b'{"events": {}}', b'{"events": "x"}'],
)
def test_bodies_that_are_not_a_batch_are_400(telemetry: Telemetry, body: bytes) -> None:
    status, payload = ingest(telemetry, body)
    assert status == 400
    assert payload["error"]


def test_an_empty_batch_is_accepted(telemetry: Telemetry) -> None:
    assert ingest(telemetry, b'{"events": []}') == (202, {"accepted": 0, "rejected": []})


def test_a_batch_over_the_count_limit_is_413_and_records_nothing(
    telemetry: Telemetry, store: MetricStore
) -> None:
    status, payload = ingest(telemetry, _body(*[ORGS] * 11), max_events=10)
    assert status == 413
    assert "at most 10" in payload["error"]
    bad_one = {**ORGS, "extra": 1}
    assert ingest(telemetry, _body(*[ORGS] * 10, bad_one), max_events=10)[0] == 413
    assert store.aggregate("organizations_active", {}, "last", 60) == {}
    assert ingest(telemetry, _body(*[ORGS] * 10), max_events=10)[1]["accepted"] == 10


async def test_the_count_limit_through_http(telemetry: Telemetry) -> None:
    app = guarded_app(create_blueprint(telemetry=telemetry, max_events=3), api_token=SecretStr("t"))
    client = app.test_client()
    response = await client.post(
        "/api/v1/events", data=_body(*[HEARTBEAT] * 4), headers={"Authorization": "Bearer t"}
    )
    assert response.status_code == 413
