"""HTTP API of telemetry: `POST /api/v1/events` and `GET /api/v1/agents/status` (a Quart blueprint).

`POST /api/v1/events`, body `{"events": [...]}` (event types: `events`):
- 401 no or wrong bearer token (when `security.api_token` is set; empty = no token needed, the same
  rule as `metrics_token`), 403 client address outside `security.allow_from`;
- 413 body larger than `security.max_body_bytes` (checked on Content-Length and while reading),
  or more than `max_events` events (default `MAX_EVENTS`) in the batch;
- 400 the body is not JSON (including nesting too deep to parse), or not an object whose `events`
  is a list;
- 202 `{"accepted": n, "rejected": [{"index": i, "error": "..."}]}` otherwise: each item is
  validated and recorded on its own, so a bad item never costs the good ones.

`GET /api/v1/agents/status`: `{"agents": [...], "timestamp": ...}` (CIDR allow-list only); expected
agents that never reported are listed with status `missing`.

Authorisation is two small injectable functions (`authorize_write`, `authorize_read`) that return
None to let a request through or a response to answer instead; the defaults implement the rules
above from `SecurityConfig` with the shared helpers of `actors.web.auth` (the web app's own
allow-list hook gives the same answer first when the blueprint is mounted there).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import pydantic
from quart import Blueprint, Response, jsonify, request

from actors.telemetry.events import (
    BATCH_ADAPTER,
    EVENT_ADAPTER,
    Event,
    apply_event,
    describe_error,
)
from actors.telemetry.exceptions import TelemetryError
from actors.web.auth import AllowList, json_error, secret_value, token_matches

if TYPE_CHECKING:
    from actors.clock import Clock
    from actors.telemetry.agents import AgentRegistry
    from actors.telemetry.recording import Telemetry
    from actors.web.config import SecurityConfig

__all__ = ["MAX_EVENTS", "Authorize", "create_blueprint", "ingest"]

MAX_EVENTS = 10_000
"""Events per request at most: bounds the time one request holds the event loop."""
_INT_DIGITS = 20  # longer integer literals are parsed as floats (see `_parse_int`)

Authorize = Callable[[], Awaitable[Response | None]]
"""Checks the current request; returns None to proceed or the response to answer with."""


def _default_authorizers(security: SecurityConfig) -> tuple[Authorize, Authorize]:
    allow_list = AllowList(security.allow_from)
    token = secret_value(security.api_token)

    async def read() -> Response | None:
        if not allow_list.allows(request.remote_addr):
            return json_error(403, "client address not allowed")
        return None

    async def write() -> Response | None:
        denied = await read()
        if denied is not None:
            return denied
        if not token_matches(request.headers.get("Authorization"), token):
            response = json_error(401, "missing or invalid bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="blipee-monitor"'
            return response
        return None

    return write, read


def create_blueprint(
    *,
    telemetry: Telemetry,
    security: SecurityConfig,
    agents: AgentRegistry | None = None,
    clock: Clock | None = None,
    authorize_write: Authorize | None = None,
    authorize_read: Authorize | None = None,
    max_events: int = MAX_EVENTS,
) -> Blueprint:
    """The telemetry blueprint (routes above); register it on the web app.

    `agents` defaults to `telemetry.agents`; `clock` (for the status page's "now") defaults to
    the store's clock.
    """
    default_write, default_read = _default_authorizers(security)
    can_write = authorize_write or default_write
    can_read = authorize_read or default_read
    limit = security.max_body_bytes
    registry = agents if agents is not None else telemetry.agents
    now = clock.now if clock is not None else telemetry.store.now
    bp = Blueprint("telemetry", __name__)

    @bp.post("/api/v1/events")
    async def post_events() -> Any:
        denied = await can_write()
        if denied is not None:
            return denied
        length = request.content_length
        if length is not None and length > limit:
            return json_error(413, f"body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.body:
            size += len(chunk)
            if size > limit:
                return json_error(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        status, payload = ingest(telemetry, body, max_events=max_events)
        response = jsonify(payload)
        response.status_code = status
        return response

    @bp.get("/api/v1/agents/status")
    async def agents_status() -> Any:
        denied = await can_read()
        if denied is not None:
            return denied
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
