"""HTTP API of telemetry: `POST /api/v1/events` and `GET /api/v1/agents/status` (a Quart blueprint).

`POST /api/v1/events` (scope `events:write`), body `{"events": [...]}` (event types: `events`):
- 413 more than `max_events` events (default `MAX_EVENTS`) in the batch;
- 400 the body is not JSON (including nesting too deep to parse), or not an object whose `events`
  is a list;
- 202 `{"accepted": n, "rejected": [{"index": i, "error": "..."}]}` otherwise: each item is
  validated and recorded on its own, so a bad item never costs the good ones.

`GET /api/v1/agents/status` (scope `read`): `{"agents": [...], "timestamp": ...}`; expected agents
that never reported are listed with status `missing`.

The access guard of the app (`actors.web.access`) enforces each route's scope, `allow_from` and
the body limit (401, 403, 413 for a body over `security.max_body_bytes`, 415) before the view runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pydantic
from quart import Blueprint, jsonify, request

from actors.telemetry.events import (
    BATCH_ADAPTER,
    EVENT_ADAPTER,
    Event,
    apply_event,
    describe_error,
)
from actors.telemetry.exceptions import TelemetryError
from actors.web.access import Scope, requires

if TYPE_CHECKING:
    from actors.clock import Clock
    from actors.telemetry.agents import AgentRegistry
    from actors.telemetry.recording import Telemetry

__all__ = ["MAX_EVENTS", "create_blueprint", "ingest"]

MAX_EVENTS = 10_000
"""Events per request at most: bounds the time one request holds the event loop."""
_INT_DIGITS = 20  # longer integer literals are parsed as floats (see `_parse_int`)


def create_blueprint(
    *,
    telemetry: Telemetry,
    agents: AgentRegistry | None = None,
    clock: Clock | None = None,
    max_events: int = MAX_EVENTS,
) -> Blueprint:
    """The telemetry blueprint (routes above); register it on the web app, whose access guard
    enforces the scope each route declares.

    `agents` defaults to `telemetry.agents`; `clock` (for the status page's "now") defaults to
    the store's clock.
    """
    registry = agents if agents is not None else telemetry.agents
    now = clock.now if clock is not None else telemetry.store.now
    bp = Blueprint("telemetry", __name__)

    @bp.post("/api/v1/events")
    @requires(Scope.EVENTS_WRITE)
    async def post_events() -> Any:
        # Bounded by the guard's limit while it is read (413 above it).
        body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        status, payload = ingest(telemetry, body, max_events=max_events)
        response = jsonify(payload)
        response.status_code = status
        return response

    @bp.get("/api/v1/agents/status")
    @requires(Scope.READ)
    async def agents_status() -> Any:
        t = now()
        statuses = registry.snapshot(t, include_missing=True) if registry is not None else {}
        return jsonify(
            {"timestamp": t, "agents": [status.to_json() for status in statuses.values()]}
        )

    return bp


def ingest(
    telemetry: Telemetry, body: bytes, *, max_events: int = MAX_EVENTS
) -> tuple[int, dict[str, Any]]:
    """Validate and record a raw events batch; returns (HTTP status, JSON payload).

    Fast path: the whole batch validates at once. Otherwise each item is validated on its own and
    reported by index. Recording errors (unknown business metric, labels that do not fit) reject
    the item too. Never raises for any `body`: 400 for what is not a batch, 413 for a batch of
    more than `max_events`. Pure apart from recording: no I/O.
    """
    try:
        batch = BATCH_ADAPTER.validate_json(body)
    except pydantic.ValidationError:
        return _ingest_slow(telemetry, body, max_events)
    if len(batch.events) > max_events:
        return _too_many(len(batch.events), max_events)
    return _apply_all(telemetry, enumerate(batch.events), [])


def _parse_int(text: str) -> int | float:
    # Python refuses integer literals over 4300 digits (ValueError for the whole document):
    # parse long ones as floats so only the item holding one is rejected (as out of range).
    return int(text) if len(text) <= _INT_DIGITS else float(text)


def _ingest_slow(telemetry: Telemetry, body: bytes, max_events: int) -> tuple[int, dict[str, Any]]:
    try:
        document = json.loads(body, parse_int=_parse_int)
    except (ValueError, UnicodeDecodeError) as exc:
        return 400, {"error": f"body is not valid JSON: {exc}"}
    except RecursionError:
        return 400, {"error": "body is not valid JSON: nested too deeply"}
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        return 400, {"error": 'body must be a JSON object {"events": [...]}'}
    extra = sorted(set(document) - {"events"})
    if extra:
        return 400, {"error": f"unknown top-level keys: {', '.join(extra)}"}
    items: list[Any] = document["events"]
    if len(items) > max_events:
        return _too_many(len(items), max_events)
    events: list[tuple[int, Event]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            events.append((index, EVENT_ADAPTER.validate_python(item)))
        except pydantic.ValidationError as exc:
            rejected.append({"index": index, "error": describe_error(exc)})
    return _apply_all(telemetry, events, rejected)


def _apply_all(
    telemetry: Telemetry, events: Iterable[tuple[int, Event]], rejected: list[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    """Record each validated event; 202 with the count and every rejected index, in order."""
    accepted = 0
    for index, event in events:
        try:
            apply_event(telemetry, event)
        except TelemetryError as exc:
            rejected.append({"index": index, "error": str(exc)})
        else:
            accepted += 1
    rejected.sort(key=lambda item: int(item["index"]))
    return 202, {"accepted": accepted, "rejected": rejected}


def _too_many(count: int, max_events: int) -> tuple[int, dict[str, Any]]:
    return 413, {"error": f"batch of {count} events; at most {max_events} per request"}
