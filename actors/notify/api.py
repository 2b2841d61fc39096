"""The notify blueprint: `POST /api/test-alert` and `GET /api/v1/notifications`.

- `POST /api/test-alert` (scope `alerts:test`): sends a test notification on the channel named by
  `?channel=NAME` or a JSON body `{"channel": "NAME"}`, or on every enabled channel when none is
  named. Answers `{"ok": bool, "results": [{channel, result, detail}]}`: 200 when every channel
  delivered, 502 when one did not, 404 for an unknown or disabled channel, 400 for a bad body.
- `GET /api/v1/notifications?limit=N&channel=NAME` (scope `read`): recent deliveries, dead
  letters (with the reason) and pending rows, newest first; `limit` 1..500 (default 50).

The access guard of the app (`actors.web.access`) enforces the scopes, `allow_from` and the body
limit. A request never waits on a delivery actor: test notifications are sent directly, listings are
read from the outbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from quart import Blueprint, Response, jsonify, request

from actors.clock import Clock
from actors.notify.channels import Channel
from actors.notify.errors import UnknownChannelError
from actors.notify.outbox import EntryState, Outbox
from actors.notify.testalert import send_test_alert
from actors.store import StoreError
from actors.web.access import Scope, requires
from actors.web.responses import json_error

__all__ = ["create_blueprint"]


def create_blueprint(
    *,
    channels: Mapping[str, Channel],
    outbox: Outbox,
    clock: Clock,
    logger: logging.Logger | None = None,
) -> Blueprint:
    """The notify blueprint over the enabled `channels` and the shared `outbox`; register it on
    the web app, whose access guard enforces the scope each route declares."""
    bp = Blueprint("notify", __name__)
    log = logger or logging.getLogger("blipee.notify.api")

    @bp.post("/api/test-alert")
    @requires(Scope.ALERTS_TEST)
    async def test_alert() -> Any:
        name = request.args.get("channel") or None
        if name is None:
            raw = await request.get_data(as_text=False)
            if raw.strip():
                try:
                    body = json.loads(raw)
                except (ValueError, RecursionError):  # RecursionError: nested too deeply
                    return json_error(400, "body is not valid JSON")
                if not isinstance(body, dict):
                    return json_error(400, 'body must be a JSON object like {"channel": "slack"}')
                value = body.get("channel")
                if value is not None and not isinstance(value, str):
                    return json_error(400, "'channel' must be a string")
                name = value or None
        if not channels:
            return json_error(409, "no channel is enabled")
        try:
            results = await send_test_alert(
                channels, clock=clock, channel=name, outbox=outbox, logger=log
            )
        except UnknownChannelError as exc:
            return json_error(404, str(exc), channels=sorted(channels))
        ok = all(r.ok for r in results.values())
        response: Response = jsonify({"ok": ok, "results": [r.to_json() for r in results.values()]})
        response.status_code = 200 if ok else 502
        return response

    @bp.get("/api/v1/notifications")
    @requires(Scope.READ)
    async def notifications() -> Any:
        try:
            limit = int(request.args.get("limit", "50"))
        except ValueError:
            return json_error(400, "limit must be an integer")
        if not 1 <= limit <= 500:
            return json_error(400, "limit must be between 1 and 500")
        channel = request.args.get("channel") or None
        try:
            delivered = await outbox.recent(EntryState.DELIVERED, limit=limit, channel=channel)
            dead = await outbox.recent(EntryState.DEAD, limit=limit, channel=channel)
            names = [channel] if channel is not None else sorted(channels)
            pending = []
            for item in names:
                pending.extend(await outbox.pending(item, limit=limit))
            stats = await outbox.statistics()
        except StoreError as exc:
            log.error("notifications listing failed: %s", exc)
            return json_error(503, "the notification store is unavailable")
        return jsonify(
            {
                "deliveries": [e.to_json() for e in delivered],
                "dead_letters": [e.to_json() for e in dead],
                "pending": [e.to_json() for e in pending[:limit]],
                "counts": {
                    "pending": stats.pending,
                    "delivered": stats.delivered,
                    "dead": stats.dead,
                },
            }
        )

    return bp
