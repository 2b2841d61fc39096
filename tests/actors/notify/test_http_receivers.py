"""Slack and PagerDuty channels against local HTTP servers that answer as the services document."""

from __future__ import annotations

import json
import logging

import trio

from actors.clock import SystemClock
from actors.models import AlertStatus
from actors.notify.channels import ChannelContext, PagerDutyChannel, SlackChannel, WebhookChannel
from actors.notify.channels.pagerduty import PagerDutyChannelConfig
from actors.notify.channels.slack import SlackChannelConfig
from actors.notify.channels.webhook import WebhookChannelConfig
from actors.notify.outcome import Delivered, Permanent, Retry
from tests.actors.notify.factories import (
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)
from tests.actors.notify.servers import Answer, ScriptedReceiver, serve_receiver

LOG = logging.getLogger("test.notify.http")


def _context() -> ChannelContext:
    return channel_context(clock=SystemClock(), logger=LOG)


async def test_slack_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(
        script=[
            Answer(429, b"rate_limited", (("Retry-After", "2"),)),
            Answer(500, b"internal_error"),
            Answer(404, b"no_service"),
            Answer(200, b"ok"),
        ]
    )
    base = await serve_receiver(nursery, app)
    url = f"{base}/services/T1/B1/XYZSECRET"
    config = channel_config(SlackChannelConfig, webhook_url=url, timeout="5s")
    channel = SlackChannel("slack", config, _context())
    outcomes = [await channel.send(make_notification(f"k{i}")) for i in range(4)]
    assert outcomes[0] == Retry("HTTP 429: rate_limited", 2.0)
    assert outcomes[1] == Retry("HTTP 500: internal_error")
    assert outcomes[2] == Permanent("HTTP 404: no_service")
    assert isinstance(outcomes[3], Delivered)
    request = app.received[-1]
    assert request.path == "/services/T1/B1/XYZSECRET"
    assert request.headers["content-type"] == "application/json"
    payload = json.loads(request.body)
    assert payload["text"].startswith("[FIRING:1]")
    assert payload["blocks"][0]["type"] == "header"
    await channel.aclose()


async def test_pagerduty_over_a_real_socket(nursery: trio.Nursery) -> None:
    accepted = Answer(202, b'{"status":"success","message":"Event processed","dedup_key":"x"}')
    app = ScriptedReceiver(
        script=[
            Answer(
                400,
                b'{"status":"invalid event","message":"Event object is invalid",'
                b'"errors":["Length of \'routing_key\' is incorrect"]}',
            ),
            Answer(429, b"", (("Retry-After", "1"),)),
            Answer(502, b"bad gateway"),
            accepted,
            accepted,
        ]
    )
    base = await serve_receiver(nursery, app)
    config = channel_config(PagerDutyChannelConfig, routing_key="K" * 32, url=base, timeout="5s")
    channel = PagerDutyChannel("pd", config, _context())
    firing = make_notification("t", alerts=[make_alert(severity="critical")])
    first = await channel.send(firing)
    assert isinstance(first, Permanent)
    assert "Event object is invalid" in first.reason
    assert await channel.send(firing) == Retry("HTTP 429", 1.0)
    assert isinstance(await channel.send(firing), Retry)
    assert isinstance(await channel.send(firing), Delivered)
    resolved = make_notification(
        "r", alerts=[make_alert(severity="critical", status=AlertStatus.RESOLVED)]
    )
    assert isinstance(await channel.send(resolved), Delivered)
    trigger, resolve = (json.loads(r.body) for r in app.received[-2:])
    assert all(r.path == "/v2/enqueue" for r in app.received)
    assert trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "critical"
    assert resolve["event_action"] == "resolve"
    assert resolve["dedup_key"] == trigger["dedup_key"]
    await channel.aclose()


async def test_webhook_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=Answer(200, b""))
    base = await serve_receiver(nursery, app)
    config = channel_config(WebhookChannelConfig, url=f"{base}/alerts", secret="k")
    channel = WebhookChannel("hooks", config, _context())
    assert isinstance(await channel.send(make_notification("idem-1")), Delivered)
    [request] = app.received
    assert request.headers["idempotency-key"] == "idem-1"
    assert request.headers["x-signature"].startswith("t=")
    assert request.headers["x-signature-legacy"].startswith("sha256=")
    await channel.aclose()


async def test_connection_refused_is_retried() -> None:
    from tests.actors.notify.servers import free_port

    config = channel_config(WebhookChannelConfig, url=f"http://127.0.0.1:{free_port()}/")
    channel = WebhookChannel("hooks", config, _context())
    outcome = await channel.send(make_notification())
    assert isinstance(outcome, Retry)
    assert "ConnectError" in outcome.reason
    await channel.aclose()
