"""webhook `template`: a Jinja body for any receiver, checked at check-config, failing a
notification (never the process) when it cannot be rendered; against a local server."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from pathlib import Path

import pytest
import trio

from actors.clock import SystemClock
from actors.models import AlertStatus
from actors.notify.channels.kinds import ChannelConfig
from actors.notify.channels.webhook import WebhookChannel, WebhookChannelConfig
from actors.notify.outcome import Delivered, Permanent, Retry
from supervisor.config import ConfigError, parse_config
from tests.actors.notify.delivering import deliver_firing_then_resolved
from tests.actors.notify.factories import (
    V4_KEYS,
    channel_config,
    channel_context,
    make_alert,
    make_notification,
)
from tests.actors.notify.servers import Answer, ScriptedReceiver, serve_receiver

ROOT = Path(__file__).resolve().parents[3]
CHAT = '{"text": {{ title | tojson }}, "severity": {{ commonLabels.severity | tojson }}}'


def _channel(url: str, **keys: object) -> WebhookChannel:
    config = channel_config(WebhookChannelConfig, url=url, timeout="5s", **keys)
    context = channel_context(clock=SystemClock(), logger=logging.getLogger("test.template"))
    return WebhookChannel("hooks", config, context)


def _documented_example() -> str:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    # the channels section only, up to the next one
    section = text.split("## `[channels.NAME]`", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)
    return str(example)


async def test_the_documented_example_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=Answer(200, b""))
    base = await serve_receiver(nursery, app)
    config = parse_config(_documented_example(), env={"CHAT_WEBHOOK_URL": f"{base}/hook"})
    table = config.channels["chat"]
    assert isinstance(table, WebhookChannelConfig)
    channel = WebhookChannel("chat", table, channel_context())
    quoted = make_alert('Say "hi" </script> & \\o/')
    assert isinstance(await channel.send(make_notification(alerts=[quoted])), Delivered)
    [request] = app.received
    assert request.path == "/hook"
    assert json.loads(request.body) == {
        "text": '[FIRING:1] Say "hi" </script> & \\o/',
        "lines": ['Say "hi" </script> & \\o/: 2.5 s average'],
    }
    await channel.aclose()


async def test_a_templated_body_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(
        script=[
            Answer(429, b"slow down", (("Retry-After", "2"),)),
            Answer(503, b"unavailable"),
            Answer(400, b'{"error":"bad text"}'),
        ],
        default=Answer(200, b"ok"),
    )
    base = await serve_receiver(nursery, app)
    text = "{{ status | upper }} {{ alerts | length }}: {{ title }}"
    channel = _channel(f"{base}/notify", template=text, content_type="text/plain", secret="k")
    firing = make_notification("f", alerts=[make_alert(severity="critical")])
    outcomes = [await channel.send(firing) for _ in range(4)]
    assert outcomes[0] == Retry("HTTP 429: slow down", 2.0)
    assert outcomes[1] == Retry("HTTP 503: unavailable")
    assert outcomes[2] == Permanent("HTTP 400: bad text")
    assert outcomes[3] == Delivered("HTTP 200")
    resolved = make_notification("r", alerts=[make_alert(status=AlertStatus.RESOLVED)])
    assert await channel.send(resolved) == Delivered("HTTP 200")
    first, last = app.received[0], app.received[-1]
    assert first.body == b"FIRING 1: [FIRING:1] High API Latency"
    assert last.body == b"RESOLVED 1: [RESOLVED:1] High API Latency"
    assert first.headers["content-type"] == "text/plain"
    assert first.headers["idempotency-key"] == "f"
    digest = hmac.new(b"k", first.body, hashlib.sha256).hexdigest()
    assert first.headers["x-signature-legacy"] == f"sha256={digest}"
    await channel.aclose()


async def test_without_a_template_the_body_stays_alertmanagers(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=Answer(200, b""))
    base = await serve_receiver(nursery, app)
    channel = _channel(f"{base}/am", content_type="text/plain")
    assert isinstance(await channel.send(make_notification()), Delivered)
    [request] = app.received
    assert set(json.loads(request.body)) == V4_KEYS
    assert request.headers["content-type"] == "application/json"
    await channel.aclose()


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ nope }}", "template failed: UndefinedError: 'nope' is undefined"),
        (
            "{{ commonLabels.team }}",
            "template failed: UndefinedError: 'dict object' has no attribute 'team'",
        ),
        (
            "{{ alerts.__class__.__mro__ }}",
            "template failed: SecurityError: access to attribute '__class__' of 'list' object "
            + "is unsafe.",
        ),
        ("{{ 1 // 0 }}", "template failed: ZeroDivisionError: integer division or modulo by zero"),
    ],
)
async def test_a_template_that_fails_to_render_is_a_permanent_failure(
    nursery: trio.Nursery, template: str, reason: str
) -> None:
    app = ScriptedReceiver()
    base = await serve_receiver(nursery, app)
    channel = _channel(f"{base}/SECRETHOOK", template=template)
    outcome = await channel.send(make_notification())
    assert outcome == Permanent(reason)
    assert app.received == []
    await channel.aclose()


async def test_a_resolution_is_not_sent_when_send_resolved_is_false(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=Answer(200, b""))
    base = await serve_receiver(nursery, app)
    channel = _channel(f"{base}/chat", template=CHAT, send_resolved=False)
    states = await deliver_firing_then_resolved(channel)
    assert states == {
        "f": "delivered: HTTP 200",
        "r": "delivered: skipped: send_resolved is false",
    }
    [request] = app.received
    assert json.loads(request.body) == {
        "text": "[FIRING:1] High API Latency",
        "severity": "warning",
    }


PREFIX = "c.toml:4:1: channels.chat.template: does not compile: "


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"{{ title "', "template line 1: unexpected end of template"),
        ('"""\n{% for a in alerts %}\n{{ a }}\n"""', "template line 2: Unexpected end of template"),
        ('"{{ title | nosuchfilter }}"', "template line 1: No filter named 'nosuchfilter'."),
    ],
)
def test_a_template_that_does_not_compile_is_a_config_error(value: str, message: str) -> None:
    source = '[channels.chat]\nkind = "webhook"\nurl = "https://chat.test/SECRETHOOK"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(f"{source}template = {value}\n", file="c.toml", env={})
    assert str(caught.value).startswith(PREFIX + message)
    assert "Traceback" not in str(caught.value)
    assert "SECRETHOOK" not in str(caught.value)


def test_a_content_type_must_be_one_printable_line() -> None:
    source = '[channels.chat]\nkind = "webhook"\ncontent_type = "text/plain\\nX-Evil: 1"\n'
    with pytest.raises(ConfigError, match=r"c\.toml:3:1: channels\.chat\.content_type: invalid"):
        parse_config(source, file="c.toml", env={})


def test_the_union_accepts_a_templated_webhook() -> None:
    import pydantic

    table = pydantic.TypeAdapter(ChannelConfig).validate_python(
        {"kind": "webhook", "url": "http://127.0.0.1:9/", "template": CHAT}
    )
    assert isinstance(table, WebhookChannelConfig)
    assert table.template == CHAT
