"""What a client sends to the alerting API is bounded: filters, silences' matchers, comments,
durations, times, body depth and the number of live silences, each refused with a 400 that says
which limit, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from quart_trio import QuartTrio
from trio.testing import MockClock

from actors.routing.limits import (
    MAX_FILTER_LENGTH,
    MAX_FILTERS,
    MAX_MATCHERS,
    MAX_SILENCE_DURATION,
)
from actors.routing.matchers import MAX_MATCHER_LENGTH
from actors.routing.silencing import Silences
from tests.actors.routing.test_api import AUTH, _setup

DAY = 86400.0


def _app(max_silences: int | None = None) -> tuple[QuartTrio, Silences]:
    app, _, _, silences, _ = _setup()
    if max_silences is not None:
        silences.max_live = max_silences
    return app, silences


async def _post(app: QuartTrio, body: Any, path: str = "/api/v1/silences") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    client = app.test_client()
    resp = await client.post(path, data=data, headers={**AUTH, "Content-Type": "application/json"})
    return resp.status_code, await resp.get_json()


def _nested(depth: int) -> bytes:
    return b'{"matchers": ' + b"[" * depth + b"]" * depth + b', "duration": "1h"}'


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"matchers": ["a=b"] * (MAX_MATCHERS + 1), "duration": "1h"}, "matchers"),
        ({"matchers": ["a=" + "x" * MAX_MATCHER_LENGTH], "duration": "1h"}, "characters"),
        (
            {
                "matchers": [{"name": "a", "value": "x" * (MAX_MATCHER_LENGTH + 1)}],
                "duration": "1h",
            },
            "characters",
        ),
        ({"matchers": ["a=b"], "duration": "1h", "comment": "c" * 2001}, "comment"),
        ({"matchers": ["a=b"], "duration": "1000000d"}, "longer than"),
        ({"matchers": ["a=b"], "duration": "1e400s"}, "duration"),
        ({"matchers": ["a=b"], "duration": "-1h"}, "duration"),
        ({"matchers": ["a=b"], "endsAt": "9999-12-31T23:59:59Z"}, "longer than"),
        (
            {"matchers": ["a=b"], "startsAt": "0001-01-01T00:00:00Z", "duration": "1h"},
            "startsAt",
        ),
        (
            {
                "matchers": ["a=b"],
                "startsAt": "0001-01-01T00:00:00Z",
                "endsAt": "2030-01-01T00:00:00Z",
            },
            "startsAt",
        ),
        ({"matchers": ["a=b"], "startsAt": "9999-12-31T00:00:00Z", "duration": "1h"}, "startsAt"),
        (_nested(100_000), "nested"),
        (_nested(500), "nested"),
        (
            {"matchers": ["a=b"], "startsAt": "0001-01-01T00:00:00+14:00", "duration": "1h"},
            "starts",
        ),
        (b"[" * 100_000, "nested"),
        ({"matchers": ["a=b"], "duration": "1h", "createdBy": {"x": [[[[]]]]}}, "createdBy"),
    ],
    ids=[
        "too-many-matchers",
        "long-matcher",
        "long-matcher-object",
        "long-comment",
        "absurd-duration",
        "overflowing-duration",
        "negative-duration",
        "ends-year-9999",
        "starts-year-1",
        "starts-year-1-ends-set",
        "starts-far-future",
        "deeply-nested",
        "nested-matchers",
        "starts-before-year-1",
        "nested-array",
        "nested-field",
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/silences", "/api/v2/silences"], ids=["v1", "v2"])
async def test_a_silence_beyond_a_limit_is_a_400(body: Any, says: str, path: str) -> None:
    app, silences = _app()
    status, answer = await _post(app, body, path)
    assert status == 400, answer
    assert says in answer["error"], answer
    assert silences.all() == []


async def test_the_live_silences_are_counted() -> None:
    app, silences = _app(max_silences=3)
    for n in range(3):
        status, _ = await _post(app, {"matchers": [f"a=b{n}"], "duration": "1h"})
        assert status == 201
    status, answer = await _post(app, {"matchers": ["a=c"], "duration": "1h"})
    assert status == 400
    assert "3 silences" in answer["error"]
    client = app.test_client()
    first = silences.all()[0].id
    assert (await client.delete(f"/api/v1/silences/{first}", headers=AUTH)).status_code == 200
    status, _ = await _post(app, {"matchers": ["a=c"], "duration": "1h"})
    assert status == 201  # an expired silence no longer counts


async def test_the_longest_silence_allowed_is_accepted() -> None:
    app, _ = _app()
    days = int(MAX_SILENCE_DURATION // DAY)
    status, answer = await _post(app, {"matchers": ["a=b"], "duration": f"{days}d"})
    assert status == 201, answer


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ([("filter", "a=b")] * (MAX_FILTERS + 1), "filters"),
        ([("filter", "a=" + "x" * MAX_FILTER_LENGTH)], "characters"),
    ],
    ids=["too-many", "too-long"],
)
@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v2/silences"])
async def test_filters_are_bounded(query: list[tuple[str, str]], says: str, path: str) -> None:
    app, _ = _app()
    client = app.test_client()
    resp = await client.get(path, query_string=query)
    assert resp.status_code == 400
    assert says in (await resp.get_json())["error"]
    resp = await client.get(path, query_string=[("filter", "a=b")] * MAX_FILTERS)
    assert resp.status_code == 200


HOSTILE = ".{10}(.|.)*Z"
"""Backtracks exponentially in the label's length in a backtracking engine (12 s with Python's
re on a 40-character value); RE2 runs it in linear time."""


async def test_a_hostile_regex_in_a_filter_or_a_silence_is_answered(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    app, rules, routing, _, store = _setup()
    await nursery.start(rules.run)
    await nursery.start(routing.run)
    store.record("health_check_up", 0, {"check": "a" * 40})
    await trio.sleep(0.01)
    client = app.test_client()
    resp = await client.get("/api/v1/alerts", query_string={"filter": f"check=~{HOSTILE}"})
    assert resp.status_code == 200
    assert (await resp.get_json())["alerts"] == []
    status, answer = await _post(app, {"matchers": [f'check=~"{HOSTILE}"'], "duration": "1h"})
    assert status == 201, answer
    resp = await client.get("/api/v1/alerts")
    assert resp.status_code == 200
    assert [a["silencedBy"] for a in (await resp.get_json())["alerts"]] == [[], []]
