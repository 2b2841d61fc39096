"""discord channel: the message within Discord's limits (pure), and a local server answering as
Discord's webhook API does."""

from __future__ import annotations

import dataclasses
import json
import logging

import trio

from actors.clock import SystemClock
from actors.models import AlertStatus, Notification
from actors.notify.channels.discord import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    EMBEDS_MAX,
    EMBEDS_TOTAL_MAX,
    DiscordChannel,
    DiscordChannelConfig,
    build_discord_message,
    judge_discord,
)
from actors.notify.outcome import Delivered, Permanent, Retry
from tests.actors.notify.delivering import deliver_firing_then_resolved
from tests.actors.notify.factories import (
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)
from tests.actors.notify.servers import Answer, ScriptedReceiver, serve_receiver

PATH = "/api/webhooks/1234567890/SECRETTOKEN"
RATE_LIMITED = b'{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}'


def _channel(base: str, **keys: object) -> DiscordChannel:
    config = channel_config(DiscordChannelConfig, webhook_url=f"{base}{PATH}", timeout="5s", **keys)
    context = channel_context(clock=SystemClock(), logger=logging.getLogger("test.discord"))
    return DiscordChannel("discord", config, context)


def _huge() -> Notification:
    alerts = [
        make_alert("A" * 3000, fingerprint=f"fp{i}", extra={f"l{i}": "v" * 2000}) for i in range(40)
    ]
    notification = make_notification(alerts=alerts, group_key="g" * 5000)
    held = [
        {"alertname": "x" * 500, "check": "c", "blocked_by": "db", "fingerprint": str(i)}
        for i in range(50)
    ]
    return dataclasses.replace(notification, context={"held": held})


def test_the_message_keeps_to_discords_limits() -> None:
    message = build_discord_message(_huge(), external_url="https://m.example")
    assert len(message["content"]) <= CONTENT_MAX
    assert len(message["embeds"]) <= EMBEDS_MAX
    total = 0
    for embed in message["embeds"]:
        assert len(embed["description"]) <= DESCRIPTION_MAX
        total += len(embed["title"]) + len(embed["description"])
        total += len(embed.get("footer", {}).get("text", ""))
        total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    assert total <= EMBEDS_TOTAL_MAX
    assert message["embeds"][1]["title"] == "Held, blocked by a failing dependency (50)"
    assert message["allowed_mentions"] == {"parse": []}


def test_the_retry_after_of_the_body_wins() -> None:
    header_only = Retry("HTTP 429", 7.0)
    assert judge_discord(429, RATE_LIMITED, header_only) == Retry("HTTP 429", 1.5)
    assert judge_discord(429, b"not json", header_only) == header_only
    assert judge_discord(429, b'{"retry_after": "soon"}', header_only) == header_only
    assert judge_discord(429, b'{"retry_after": true}', header_only) == header_only
    assert judge_discord(500, RATE_LIMITED, Retry("HTTP 500")) == Retry("HTTP 500")


async def test_discord_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(
        script=[
            Answer(429, RATE_LIMITED, (("Retry-After", "2"), ("X-RateLimit-Scope", "user"))),
            Answer(429, b"", (("Retry-After", "3"),)),
            Answer(500, b'{"message": "500: Internal Server Error", "code": 0}'),
            Answer(400, b'{"message": "Cannot send an empty message", "code": 50006}'),
            Answer(404, b'{"message": "Unknown Webhook", "code": 10015}'),
            Answer(204, b""),
            Answer(200, b'{"id": "1", "type": 0}'),
        ]
    )
    base = await serve_receiver(nursery, app)
    channel = _channel(
        base,
    )
    firing = make_notification("f", alerts=[make_alert(severity="critical")])
    outcomes = [await channel.send(firing) for _ in range(6)]
    assert outcomes[0] == Retry("HTTP 429: You are being rate limited.", 1.5)
    assert outcomes[1] == Retry("HTTP 429", 3.0)
    assert outcomes[2] == Retry("HTTP 500: 500: Internal Server Error")
    assert outcomes[3] == Permanent("HTTP 400: Cannot send an empty message")
    assert outcomes[4] == Permanent("HTTP 404: Unknown Webhook")
    assert outcomes[5] == Delivered("HTTP 204")
    resolved = make_notification("r", alerts=[make_alert(status=AlertStatus.RESOLVED)])
    assert await channel.send(resolved) == Delivered("HTTP 200")
    assert all(request.path == PATH for request in app.received)
    assert all(request.headers["content-type"] == "application/json" for request in app.received)
    first, last = (json.loads(request.body) for request in (app.received[0], app.received[-1]))
    assert first["content"] == "[FIRING:1] High API Latency"
    assert first["embeds"][0]["description"] == "🔴 (critical) High API Latency: 2.5 s average"
    assert first["embeds"][0]["fields"] == [
        {"name": "alertname", "value": "High API Latency", "inline": True}
    ]
    assert last["content"] == "[RESOLVED:1] High API Latency"
    assert all("SECRETTOKEN" not in repr(outcome) for outcome in outcomes)
    await channel.aclose()


async def test_a_resolution_is_not_sent_when_send_resolved_is_false(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=Answer(204, b""))
    base = await serve_receiver(nursery, app)
    states = await deliver_firing_then_resolved(_channel(base, send_resolved=False))
    assert states == {
        "f": "delivered: HTTP 204",
        "r": "delivered: skipped: send_resolved is false",
    }
    assert len(app.received) == 1


def test_an_empty_webhook_url_disables_the_channel() -> None:
    assert channel_config(DiscordChannelConfig).disabled_reason() == "webhook_url is empty"
    config = channel_config(DiscordChannelConfig, webhook_url=f"https://discord.test{PATH}")
    assert config.disabled_reason() is None
    assert "SECRETTOKEN" not in repr(config)
