"""opsgenie channel: the Alert API v2 bodies (pure), and a local server answering as Opsgenie."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trio

from actors.clock import SystemClock
from actors.models import AlertStatus
from actors.notify.channels.opsgenie import (
    OpsgenieChannel,
    OpsgenieChannelConfig,
    alias,
    build_opsgenie_create,
    priority,
)
from actors.notify.outcome import Delivered, Permanent, Retry
from tests.actors.notify.delivering import deliver_firing_then_resolved
from tests.actors.notify.factories import (
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)
from tests.actors.notify.servers import Answer, Message, Scope, ScriptedReceiver, serve_receiver

KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
ACCEPTED = Answer(
    202, b'{"result":"Request will be processed","took":0.302,"requestId":"43a29c5c"}'
)


@dataclass
class OpsgenieReceiver(ScriptedReceiver):
    """Also records each request's raw path and query string (the close request's alias)."""

    targets: list[str] = field(default_factory=list)

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http":
            query = scope["query_string"].decode("ascii")
            self.targets.append(scope["raw_path"].decode("ascii") + (f"?{query}" if query else ""))
        await super().__call__(scope, receive, send)


def _channel(base: str, **keys: object) -> OpsgenieChannel:
    config = channel_config(OpsgenieChannelConfig, api_key=KEY, url=base, timeout="5s", **keys)
    context = channel_context(clock=SystemClock(), logger=logging.getLogger("test.opsgenie"))
    return OpsgenieChannel("opsgenie", config, context)


def test_priority_follows_the_highest_firing_severity() -> None:
    def of(*severities: str) -> str:
        alerts = [make_alert(severity=s, fingerprint=f"fp{i}") for i, s in enumerate(severities)]
        return priority(make_notification(alerts=alerts))

    assert of("critical", "info") == "P1"
    assert of("warning") == "P3"
    assert of("info") == "P5"
    assert of("page-me") == "P3"


def test_the_create_body_names_the_group_and_keeps_to_opsgenie_limits() -> None:
    long_name = "x" * 500
    notification = make_notification(alerts=[make_alert(long_name, extra={"check": "api"})])
    body = build_opsgenie_create(notification, source="https://monitor.example")
    assert len(body["message"]) == 130
    assert body["alias"] == alias(notification)
    assert body["alias"].startswith("blipee-monitor-")
    assert len(body["alias"]) <= 512
    assert body["tags"] == ["blipee-monitor", "warning", "check:api"]
    assert body["details"]["group_key"] == notification.group_key
    assert body["details"]["firing"] == "1"
    assert body["source"] == "https://monitor.example"
    assert body["priority"] == "P3"
    other = make_notification(group_key='{}:{alertname="other"}')
    assert alias(other) != alias(notification)


async def test_opsgenie_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = OpsgenieReceiver(
        script=[
            Answer(429, b'{"message":"Rate limit exceeded"}', (("Retry-After", "3"),)),
            Answer(503, b"Service Unavailable"),
            Answer(
                422,
                b'{"message":"Request body is not processable. Please check the errors.",'
                b'"errors":{"message":"Message can not be empty."},"took":0.0}',
            ),
            Answer(401, b'{"message":"Could not authenticate.","took":0.0}'),
            ACCEPTED,
            ACCEPTED,
        ]
    )
    base = await serve_receiver(nursery, app)
    channel = _channel(base)
    firing = make_notification("f", alerts=[make_alert(severity="critical")])
    outcomes = [await channel.send(firing) for _ in range(5)]
    assert outcomes[0] == Retry("HTTP 429: Rate limit exceeded", 3.0)
    assert outcomes[1] == Retry("HTTP 503: Service Unavailable")
    assert isinstance(outcomes[2], Permanent)
    assert "not processable" in outcomes[2].reason
    assert outcomes[3] == Permanent("HTTP 401: Could not authenticate.")
    assert isinstance(outcomes[4], Delivered)
    resolved = make_notification(
        "r", alerts=[make_alert(severity="critical", status=AlertStatus.RESOLVED)]
    )
    assert isinstance(await channel.send(resolved), Delivered)
    create, close = app.received[-2:]
    assert app.targets[-2:] == [
        "/v2/alerts",
        f"/v2/alerts/{alias(firing)}/close?identifierType=alias",
    ]
    assert alias(firing) == alias(resolved)
    for request in (create, close):
        assert request.method == "POST"
        assert request.headers["authorization"] == f"GenieKey {KEY}"
        assert request.headers["content-type"] == "application/json"
    body = json.loads(create.body)
    assert body["message"] == "[FIRING:1] High API Latency"
    assert body["priority"] == "P1"
    assert body["description"] == "High API Latency: 2.5 s average"
    assert json.loads(close.body) == {
        "source": "blipee-monitor",
        "note": "[RESOLVED:1] High API Latency",
    }
    assert all(KEY not in repr(outcome) for outcome in outcomes)
    await channel.aclose()


async def test_a_resolution_is_not_sent_when_send_resolved_is_false(nursery: trio.Nursery) -> None:
    app = OpsgenieReceiver(default=ACCEPTED)
    base = await serve_receiver(nursery, app)
    channel = _channel(base, send_resolved=False)
    states = await deliver_firing_then_resolved(channel)
    assert states == {
        "f": "delivered: HTTP 202",
        "r": "delivered: skipped: send_resolved is false",
    }
    assert app.targets == ["/v2/alerts"]


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_api_key_disables_the_channel(key: str) -> None:
    config = channel_config(OpsgenieChannelConfig, api_key=key)
    assert config.disabled_reason() == "api_key is empty"
    assert channel_config(OpsgenieChannelConfig, api_key=KEY).disabled_reason() is None


def test_the_api_key_is_never_shown() -> None:
    config = channel_config(OpsgenieChannelConfig, api_key=KEY)
    assert KEY not in repr(config)
    assert KEY not in str(config.model_dump())
    channel = OpsgenieChannel("ops", config, channel_context())
    assert channel.secrets() == (KEY,)
    assert KEY not in channel.describe()
