"""ntfy channel: the message (pure), a local server answering as ntfy does, and the extension
guide, whose walk-through is this kind and must agree with it."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path

import pytest
import trio

from actors.clock import SystemClock
from actors.models import AlertStatus
from actors.notify.channels.ntfy import (
    MESSAGE_MAX,
    NtfyChannel,
    NtfyChannelConfig,
    build_ntfy_message,
)
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
from tests.kinds_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2"
PUBLISHED = Answer(200, b'{"id":"sPs71M8A2T","time":1700000001,"event":"message","topic":"ops"}')


def _channel(base: str, **keys: object) -> NtfyChannel:
    config = channel_config(NtfyChannelConfig, url=base, topic="ops", timeout="5s", **keys)
    context = channel_context(
        clock=SystemClock(),
        logger=logging.getLogger("test.ntfy"),
        external_url="https://monitor.example",
    )
    return NtfyChannel("ntfy", config, context)


def test_the_headers_follow_the_severity_and_the_body_lists_the_alerts() -> None:
    notification = make_notification(alerts=[make_alert(severity="critical")])
    headers, body = build_ntfy_message(notification, external_url="https://m.example")
    assert headers == {
        "Content-Type": "text/plain; charset=utf-8",
        "Title": "[FIRING:1] High API Latency",
        "Priority": "5",
        "Tags": "rotating_light,critical",
        "Click": "https://m.example",
    }
    assert body == b"High API Latency: 2.5 s average"
    resolved = make_notification(alerts=[make_alert(status=AlertStatus.RESOLVED)])
    headers, _ = build_ntfy_message(resolved)
    assert (headers["Priority"], headers["Tags"]) == ("2", "white_check_mark,warning")
    assert "Click" not in headers


def test_a_title_that_is_not_ascii_is_encoded_and_the_body_is_cut_to_4096_bytes() -> None:
    alerts = [make_alert("Dïsk\nfull " + "é" * 300, fingerprint=f"fp{i}") for i in range(30)]
    headers, body = build_ntfy_message(make_notification(alerts=alerts))
    encoded = re.fullmatch(r"=\?utf-8\?b\?([A-Za-z0-9+/=]+)\?=", headers["Title"])
    assert encoded is not None
    assert base64.b64decode(encoded.group(1)).decode().startswith("[FIRING:30] Dïsk full éé")
    assert len(body) <= MESSAGE_MAX
    assert body.endswith(b"...")
    body.decode("utf-8")  # never cut inside a character


async def test_ntfy_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(
        script=[
            Answer(
                429,
                b'{"code":42901,"http":429,"error":"limit reached: too many requests"}',
                (("Retry-After", "5"),),
            ),
            Answer(502, b"Bad Gateway"),
            Answer(
                403,
                b'{"code":40301,"http":403,"error":"forbidden","link":"https://ntfy.sh/docs/publish/"}',
            ),
            PUBLISHED,
            PUBLISHED,
        ]
    )
    base = await serve_receiver(nursery, app)
    channel = _channel(base, token=TOKEN)
    firing = make_notification("f")
    outcomes = [await channel.send(firing) for _ in range(4)]
    assert outcomes[0] == Retry("HTTP 429: limit reached: too many requests", 5.0)
    assert outcomes[1] == Retry("HTTP 502: Bad Gateway")
    assert outcomes[2] == Permanent("HTTP 403: forbidden")
    assert outcomes[3] == Delivered("HTTP 200")
    resolved = make_notification("r", alerts=[make_alert(status=AlertStatus.RESOLVED)])
    assert await channel.send(resolved) == Delivered("HTTP 200")
    first, last = app.received[0], app.received[-1]
    assert all(request.path == "/ops" for request in app.received)
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["content-type"] == "text/plain; charset=utf-8"
    assert first.headers["title"] == "[FIRING:1] High API Latency"
    assert first.headers["priority"] == "4"
    assert first.headers["tags"] == "rotating_light,warning"
    assert first.headers["click"] == "https://monitor.example"
    assert first.body == b"High API Latency: 2.5 s average"
    assert last.headers["title"] == "[RESOLVED:1] High API Latency"
    assert all(TOKEN not in repr(outcome) for outcome in outcomes)
    await channel.aclose()


async def test_a_public_topic_is_posted_without_a_token(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=PUBLISHED)
    base = await serve_receiver(nursery, app)
    channel = _channel(f"{base}/", send_resolved=False)
    states = await deliver_firing_then_resolved(channel)
    assert states == {
        "f": "delivered: HTTP 200",
        "r": "delivered: skipped: send_resolved is false",
    }
    [request] = app.received
    assert request.path == "/ops"
    assert "authorization" not in request.headers


def test_an_empty_topic_disables_and_a_bad_one_is_a_config_error() -> None:
    assert channel_config(NtfyChannelConfig).disabled_reason() == "topic is empty"
    assert channel_config(NtfyChannelConfig, topic="ops_1-a").disabled_reason() is None
    source = '[channels.push]\nkind = "ntfy"\ntopic = "ops/alerts"\n'
    expected = r"c\.toml:3:1: channels\.push\.topic: invalid topic 'ops/alerts'"
    with pytest.raises(ConfigError, match=expected):
        parse_config(source, file="c.toml", env={})


def test_the_extension_guide_walks_the_real_ntfy_files() -> None:
    guide = (ROOT / "docs" / "extending-channels.md").read_text(encoding="utf-8")
    module, registry, test = fenced_blocks(guide, "python")
    assert module == (ROOT / "actors/notify/channels/ntfy.py").read_text(encoding="utf-8")
    kinds = (ROOT / "actors/notify/channels/kinds.py").read_text(encoding="utf-8")
    for line in registry.splitlines():
        if line.strip() not in ("...", "", ")") and not line.startswith("KINDS"):
            assert line in kinds
    [rows] = fenced_blocks(guide, "")
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert rows in configuration
    tests = Path(__file__).read_text(encoding="utf-8")
    assert test.split("\n\n\n", 1)[1] in tests  # the walk-through's test is one of these
