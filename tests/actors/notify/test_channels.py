"""Payload building (pure) and each HTTP channel's answer handling over httpx.MockTransport."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable

import httpx
import pytest
import trio
import trio.testing

from actors.clock import FixedClock
from actors.models import AlertStatus
from actors.notify.channels import (
    ConsoleChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
    build_channel,
    build_channels,
)
from actors.notify.channels.alertmanager import build_alertmanager_alerts
from actors.notify.channels.console import ConsoleChannelConfig, console_line
from actors.notify.channels.email import EmailChannelConfig, build_email
from actors.notify.channels.kinds import ChannelConfig
from actors.notify.channels.pagerduty import (
    PagerDutyChannelConfig,
    build_pagerduty_event,
    dedup_key,
    enqueue_url,
    severity,
)
from actors.notify.channels.render import common_labels, title, truncate
from actors.notify.channels.slack import SlackChannelConfig, build_slack_payload
from actors.notify.channels.webhook import (
    WebhookChannelConfig,
    build_webhook_payload,
    sign,
    sign_legacy,
)
from actors.notify.errors import ChannelSetupError
from actors.notify.outcome import Delivered, Permanent, Retry
from tests.actors.notify.factories import (
    T0,
    V4_KEYS,
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)

LOG = logging.getLogger("test.notify")
SECRET_URL = "https://hooks.slack.test/services/T000/B000/SECRETTOKEN"


def _transport(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers=headers)

    return httpx.MockTransport(handler), seen


def _raising(exc: Callable[[httpx.Request], Exception]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(request)

    return httpx.MockTransport(handler)


# -- rendering -------------------------------------------------------------------------------


def test_title_and_common_labels() -> None:
    a = make_alert(fingerprint="a", extra={"check": "api"})
    b = make_alert(fingerprint="b", extra={"check": "db"})
    n = make_notification(alerts=[a, b])
    assert title(n) == "[FIRING:2] High API Latency"
    assert dict(common_labels([a, b])) == {
        "alertname": "High API Latency",
        "rule": "high-api-latency",
        "severity": "warning",
    }
    resolved = make_notification(alerts=[make_alert(status=AlertStatus.RESOLVED)])
    assert title(resolved) == "[RESOLVED:1] High API Latency"
    assert truncate("abcdef", 4) == "abc…"
    assert "key=k1" in console_line(n)


# -- webhook ---------------------------------------------------------------------------------


def test_webhook_payload_is_alertmanager_v4() -> None:
    resolved = make_alert(fingerprint="fp2", status=AlertStatus.RESOLVED, ends_at=T0 + 60)
    n = make_notification(alerts=[make_alert(), resolved])
    payload = build_webhook_payload(n, receiver="hooks", external_url="http://mon:3000")
    assert set(payload) == V4_KEYS
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["externalURL"] == "http://mon:3000"
    first, second = payload["alerts"]
    assert set(first) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["startsAt"] == "2023-11-14T22:13:20.000Z"
    assert second["status"] == "resolved"
    assert second["endsAt"] == "2023-11-14T22:14:20.000Z"


async def test_webhook_signs_and_sends_idempotency_key() -> None:
    transport, seen = _transport(200)
    config = channel_config(
        WebhookChannelConfig,
        url="http://receiver.test/alerts",
        secret="s3cret",
        headers={"X-Team": "ops"},
    )
    channel = WebhookChannel("hooks", config, channel_context(transport=transport))
    outcome = await channel.send(make_notification("key-123"))
    assert isinstance(outcome, Delivered)
    [request] = seen
    assert request.headers["Idempotency-Key"] == "key-123"
    assert request.headers["X-Team"] == "ops"
    legacy = hmac.new(b"s3cret", request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Signature-Legacy"] == f"sha256={legacy}"
    assert sign_legacy(request.content, "s3cret") == f"sha256={legacy}"
    t = int(FixedClock().now())
    signed = hmac.new(b"s3cret", f"{t}.".encode() + request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Signature"] == f"t={t},sha256={signed}"
    assert sign(request.content, "s3cret", t) == f"t={t},sha256={signed}"
    assert json.loads(request.content)["groupKey"] == make_notification().group_key
    await channel.aclose()


async def test_the_timeout_bounds_the_exchange_not_the_building_of_the_client(
    mock_clock: trio.testing.MockClock,
) -> None:
    # The first send builds the client (its TLS context: half a second on a loaded machine).
    # That time is not the receiver's: it never makes an attempt time out.
    seen: list[httpx.Request] = []

    async def receive(request: httpx.Request) -> httpx.Response:
        await trio.lowlevel.checkpoint()  # a network exchange yields: a passed deadline fires
        seen.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(receive)
    config = channel_config(WebhookChannelConfig, url="http://r.test/", timeout="1s")
    channel = WebhookChannel("hooks", config, channel_context(transport=transport))
    build = channel._http

    def slow_build() -> httpx.AsyncClient:
        mock_clock.jump(5.0)
        return build()

    channel._http = slow_build  # type: ignore[method-assign]
    outcome = await channel.send(make_notification())
    assert isinstance(outcome, Delivered), outcome
    assert len(seen) == 1
    await channel.aclose()


async def test_webhook_without_secret_has_no_signature() -> None:
    transport, seen = _transport(204)
    config = channel_config(WebhookChannelConfig, url="http://r.test/")
    channel = WebhookChannel("hooks", config, channel_context(transport=transport))
    assert isinstance(await channel.send(make_notification()), Delivered)
    assert "X-Signature" not in seen[0].headers
    assert "X-Signature-Legacy" not in seen[0].headers
    await channel.aclose()


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (500, {}, Retry, None),
        (503, {"Retry-After": "12"}, Retry, 12.0),
        (429, {"Retry-After": "3"}, Retry, 3.0),
        (400, {}, Permanent, None),
        (404, {}, Permanent, None),
    ],
)
async def test_webhook_error_answers(
    status: int, headers: dict[str, str], kind: type, retry_after: float | None
) -> None:
    transport, _ = _transport(status, b"nope", headers)
    config = channel_config(WebhookChannelConfig, url="http://r.test/x")
    channel = WebhookChannel("hooks", config, channel_context(transport=transport))
    outcome = await channel.send(make_notification())
    assert isinstance(outcome, kind)
    if isinstance(outcome, Retry):
        assert outcome.retry_after == retry_after
    await channel.aclose()


async def test_transport_errors_are_retried_and_secrets_redacted() -> None:
    url = "http://r.test/token/SECRET"
    for exc in (
        lambda r: httpx.ConnectError(f"cannot reach {url}", request=r),
        lambda r: httpx.ReadTimeout("slow", request=r),
    ):
        channel = WebhookChannel(
            "hooks",
            channel_config(WebhookChannelConfig, url=url),
            channel_context(transport=_raising(exc)),
        )
        outcome = await channel.send(make_notification())
        assert isinstance(outcome, Retry)
        assert "SECRET" not in outcome.reason
        await channel.aclose()


# -- slack -----------------------------------------------------------------------------------


def test_slack_payload_has_blocks_and_fallback() -> None:
    n = make_notification(alerts=[make_alert(fingerprint=str(i)) for i in range(12)])
    payload = build_slack_payload(n, external_url="http://mon")
    assert payload["text"].startswith("[FIRING:12] High API Latency: ")
    header, section, context = payload["blocks"]
    assert header["type"] == "header"
    assert header["text"]["text"] == "[FIRING:12] High API Latency"
    assert "… and 2 more" in section["text"]["text"]
    assert "<http://mon|blipee-monitor>" in context["elements"][0]["text"]


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, b"ok", Delivered),
        (200, b"something else", Retry),
        (400, b"invalid_payload", Permanent),
        (403, b"action_prohibited", Permanent),
        (404, b"no_service", Permanent),
        (410, b"channel_is_archived", Permanent),
        (429, b"rate_limited", Retry),
        (500, b"", Retry),
    ],
)
async def test_slack_answers(status: int, body: bytes, kind: type) -> None:
    transport, seen = _transport(status, body)
    config = channel_config(SlackChannelConfig, webhook_url=SECRET_URL)
    channel = SlackChannel("slack", config, channel_context(transport=transport))
    outcome = await channel.send(make_notification())
    assert isinstance(outcome, kind)
    assert "SECRETTOKEN" not in repr(outcome)
    assert str(seen[0].url) == SECRET_URL
    await channel.aclose()


# -- pagerduty -------------------------------------------------------------------------------


def test_pagerduty_trigger_and_resolve_share_dedup_key() -> None:
    firing = make_notification(alerts=[make_alert(severity="critical", extra={"check": "db"})])
    event = build_pagerduty_event(firing, routing_key="R" * 32, source="mon")
    assert event["event_action"] == "trigger"
    assert event["routing_key"] == "R" * 32
    payload = event["payload"]
    assert payload["severity"] == "critical"
    assert payload["component"] == "db"
    assert payload["source"] == "mon"
    assert payload["timestamp"] == "2023-11-14T22:13:20.000Z"
    resolved = make_notification(
        "k2", alerts=[make_alert(severity="critical", status=AlertStatus.RESOLVED)]
    )
    resolve = build_pagerduty_event(resolved, routing_key="R" * 32)
    assert resolve == {
        "routing_key": "R" * 32,
        "event_action": "resolve",
        "dedup_key": event["dedup_key"],
    }


def test_pagerduty_limits_and_severity() -> None:
    long_group = make_notification(group_key="g" * 400)
    assert len(dedup_key(long_group)) <= 255
    assert dedup_key(long_group) == dedup_key(make_notification("other", group_key="g" * 400))
    many = make_notification(alerts=[make_alert(fingerprint=str(i)) for i in range(300)])
    assert len(build_pagerduty_event(many, routing_key="r")["payload"]["summary"]) == 1024
    for label, expected in (("critical", "critical"), ("warning", "warning"), ("info", "info")):
        assert severity(make_notification(alerts=[make_alert(severity=label)])) == expected
    assert severity(make_notification(alerts=[make_alert(severity="weird")])) == "warning"
    assert enqueue_url("https://events.pagerduty.com") == "https://events.pagerduty.com/v2/enqueue"
    assert enqueue_url("http://127.0.0.1:9/v2/enqueue") == "http://127.0.0.1:9/v2/enqueue"


@pytest.mark.parametrize(
    ("status", "kind"), [(202, Delivered), (400, Permanent), (429, Retry), (500, Retry)]
)
async def test_pagerduty_answers(status: int, kind: type) -> None:
    transport, seen = _transport(status, b'{"status":"x","message":"m","errors":["e"]}')
    config = channel_config(PagerDutyChannelConfig, routing_key="ROUTINGKEY", url="http://pd.test")
    channel = PagerDutyChannel("pd", config, channel_context(transport=transport))
    outcome = await channel.send(make_notification())
    assert isinstance(outcome, kind)
    assert seen[0].url.path == "/v2/enqueue"
    assert "ROUTINGKEY" not in repr(outcome)
    await channel.aclose()


# -- alertmanager ----------------------------------------------------------------------------


def test_alertmanager_body() -> None:
    alerts = [
        make_alert(),
        make_alert(fingerprint="fp2", status=AlertStatus.RESOLVED, ends_at=T0 + 30),
    ]
    body = build_alertmanager_alerts(alerts, now=T0 + 60, resend_interval=60)
    assert body[0]["endsAt"] == "2023-11-14T22:18:20.000Z"  # now + 4 x resend
    assert body[1]["endsAt"] == "2023-11-14T22:13:50.000Z"
    assert body[0]["labels"]["alertname"] == "High API Latency"
    assert body[0]["generatorURL"] == "http://monitor.local/rules/x"


# -- email -----------------------------------------------------------------------------------


def test_email_message_is_multipart_with_stable_message_id() -> None:
    n = make_notification(alerts=[make_alert(extra={"check": "<script>"})])
    message = build_email(n, sender="mon@x.test", recipients=["a@x.test", "b@x.test"], now=T0)
    assert message["Subject"] == "[FIRING:1] High API Latency"
    assert message["To"] == "a@x.test, b@x.test"
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert "High API Latency: 2.5 s average" in plain.get_content()
    assert "&lt;script&gt;" in rich.get_content()
    again = build_email(n, sender="mon@x.test", recipients=["a@x.test"], now=T0 + 5)
    assert again["Message-ID"] == message["Message-ID"]


# -- factory ---------------------------------------------------------------------------------


async def test_build_channels_skips_disabled(caplog: pytest.LogCaptureFixture) -> None:
    configs: dict[str, ChannelConfig] = {
        "console": ConsoleChannelConfig(kind="console"),
        "slack": SlackChannelConfig(kind="slack"),
        "email": EmailChannelConfig(kind="email", smtp_host="localhost", to=("a@b.c",)),
        "hooks": WebhookChannelConfig.model_validate(
            {"kind": "webhook", "url": "http://x.test", "secret": "topsecret"}
        ),
    }
    with caplog.at_level(logging.WARNING):
        channels = build_channels(configs, channel_context(logger=LOG))
    assert sorted(channels) == ["console", "email", "hooks"]
    assert isinstance(channels["console"], ConsoleChannel)
    assert "webhook_url is empty" in caplog.text
    assert "topsecret" not in caplog.text
    with pytest.raises(ChannelSetupError, match="disabled"):
        build_channel("slack", SlackChannelConfig(kind="slack"), channel_context())
    for channel in channels.values():
        await channel.aclose()


async def test_console_logs(caplog: pytest.LogCaptureFixture) -> None:
    config = channel_config(ConsoleChannelConfig, timeout="1s")
    channel = ConsoleChannel("console", config, channel_context(logger=LOG))
    with caplog.at_level(logging.INFO):
        assert await channel.send(make_notification()) == Delivered("logged")
    assert "[FIRING:1] High API Latency" in caplog.text
