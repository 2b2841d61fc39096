"""teams channel: the Adaptive Card (pure), and a local server answering as Teams webhooks do."""

from __future__ import annotations

import json
import logging

import pytest
import trio

from actors.clock import SystemClock
from actors.models import AlertStatus
from actors.notify.channels.teams import TeamsChannel, TeamsChannelConfig, build_teams_card
from actors.notify.outcome import Delivered, Permanent, Retry
from supervisor.config import ConfigError, parse_config
from tests.actors.notify.delivering import deliver_firing_then_resolved
from tests.actors.notify.factories import (
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)
from tests.actors.notify.servers import Answer, ScriptedReceiver, serve_receiver

PATH = "/webhookb2/0a1b@tenant/IncomingWebhook/SECRETPART/owner"


def _channel(base: str, **keys: object) -> TeamsChannel:
    config = channel_config(TeamsChannelConfig, webhook_url=f"{base}{PATH}", timeout="5s", **keys)
    context = channel_context(
        clock=SystemClock(),
        logger=logging.getLogger("test.teams"),
        external_url="https://monitor.example",
    )
    return TeamsChannel("teams", config, context)


def test_the_card_holds_the_title_each_alert_and_the_group_labels() -> None:
    alerts = [make_alert(fingerprint=f"fp{i}", extra={"n": str(i)}) for i in range(25)]
    message = build_teams_card(make_notification(alerts=alerts), external_url="https://m.example")
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    texts = [block["text"] for block in card["body"] if block["type"] == "TextBlock"]
    assert texts[0] == "[FIRING:25] High API Latency"
    assert texts[1] == "**FIRING** (warning) High API Latency: 2.5 s average"
    assert texts[-1] == "… and 5 more"
    assert len(texts) == 1 + 20 + 1
    assert card["body"][-1] == {
        "type": "FactSet",
        "facts": [{"title": "alertname", "value": "High API Latency"}],
    }
    assert card["actions"][0]["url"] == "https://m.example"
    resolved = build_teams_card(make_notification(alerts=[make_alert(status=AlertStatus.RESOLVED)]))
    head = resolved["attachments"][0]["content"]["body"][0]
    assert head["color"] == "Good"
    assert "actions" not in resolved["attachments"][0]["content"]


async def test_teams_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(
        script=[
            Answer(429, b"", (("Retry-After", "4"),)),
            Answer(502, b"Bad Gateway"),
            # an incoming webhook reports throttling in the body of a 200
            Answer(
                200,
                b"Webhook message delivery failed with error: Microsoft Teams endpoint "
                b"returned HTTP error 429 with ContextId tcid=0",
            ),
            Answer(400, b"Bad payload received by generic incoming webhook."),
            Answer(200, b"1"),
            Answer(202, b""),
        ]
    )
    base = await serve_receiver(nursery, app)
    channel = _channel(base)
    firing = make_notification("f")
    outcomes = [await channel.send(firing) for _ in range(5)]
    assert outcomes[0] == Retry("HTTP 429", 4.0)
    assert outcomes[1] == Retry("HTTP 502: Bad Gateway")
    assert isinstance(outcomes[2], Retry)
    assert "HTTP error 429" in outcomes[2].reason
    assert outcomes[3] == Permanent("HTTP 400: Bad payload received by generic incoming webhook.")
    assert outcomes[4] == Delivered("HTTP 200")
    resolved = make_notification("r", alerts=[make_alert(status=AlertStatus.RESOLVED)])
    assert await channel.send(resolved) == Delivered("HTTP 202")  # Workflows
    assert all(request.path == PATH for request in app.received)
    assert all(request.headers["content-type"] == "application/json" for request in app.received)
    first, last = (json.loads(request.body) for request in (app.received[0], app.received[-1]))
    assert first["attachments"][0]["content"]["body"][0]["text"] == "[FIRING:1] High API Latency"
    assert last["attachments"][0]["content"]["body"][0]["text"] == "[RESOLVED:1] High API Latency"
    assert first["attachments"][0]["content"]["actions"][0]["url"] == "https://monitor.example"
    assert all("SECRETPART" not in repr(outcome) for outcome in outcomes)
    await channel.aclose()


async def test_a_resolution_is_not_sent_when_send_resolved_is_false(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=Answer(200, b"1"))
    base = await serve_receiver(nursery, app)
    channel = _channel(base, send_resolved=False)
    states = await deliver_firing_then_resolved(channel)
    assert states == {
        "f": "delivered: HTTP 200",
        "r": "delivered: skipped: send_resolved is false",
    }
    assert len(app.received) == 1


async def test_a_refused_connection_does_not_show_the_url() -> None:
    from tests.actors.notify.servers import free_port

    channel = _channel(f"http://127.0.0.1:{free_port()}")
    outcome = await channel.send(make_notification())
    assert isinstance(outcome, Retry)
    assert "SECRETPART" not in outcome.reason
    await channel.aclose()


def test_an_empty_webhook_url_disables_the_channel() -> None:
    config = channel_config(TeamsChannelConfig)
    assert config.disabled_reason() == "webhook_url is empty"


def test_a_webhook_url_that_is_not_http_is_refused_without_echoing_it() -> None:
    source = '[channels.teams]\nkind = "teams"\nwebhook_url = "ftp://SECRETPART"\n'
    expected = r"c\.toml:3:1: channels\.teams\.webhook_url: expected an http"
    with pytest.raises(ConfigError, match=expected) as caught:
        parse_config(source, file="c.toml", env={})
    assert "SECRETPART" not in str(caught.value)
