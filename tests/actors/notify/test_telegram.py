"""telegram channel: the HTML text (pure), and a local server answering as the Bot API does."""

from __future__ import annotations

import json
import logging

import pytest
import trio

from actors.clock import SystemClock
from actors.models import AlertStatus
from actors.notify.channels.telegram import (
    TEXT_MAX,
    TelegramChannel,
    TelegramChannelConfig,
    build_telegram_text,
    judge_telegram,
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

TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SENT = Answer(200, b'{"ok":true,"result":{"message_id":7,"chat":{"id":-100123},"date":0}}')


def _channel(base: str, **keys: object) -> TelegramChannel:
    config = channel_config(
        TelegramChannelConfig, bot_token=TOKEN, chat_id="-100123", url=base, timeout="5s", **keys
    )
    context = channel_context(clock=SystemClock(), logger=logging.getLogger("test.telegram"))
    return TelegramChannel("telegram", config, context)


def test_the_text_is_escaped_html_within_4096_characters() -> None:
    alert = make_alert("Disk <sda> & <b>more</b>", severity="critical")
    text = build_telegram_text(make_notification(alerts=[alert]))
    assert text.startswith("<b>[FIRING:1] Disk &lt;sda&gt; &amp; &lt;b&gt;more&lt;/b&gt;</b>\n")
    assert "🔴 (critical) Disk &lt;sda&gt; &amp; &lt;b&gt;more&lt;/b&gt;: 2.5 s average" in text
    many = [make_alert("<" * 400, fingerprint=f"fp{i}") for i in range(40)]
    long = build_telegram_text(make_notification(alerts=many))
    assert len(long) <= TEXT_MAX
    assert long.endswith(" more lines")
    assert "&l\n" not in long  # cut between lines, never inside an escape


def test_the_answer_body_decides() -> None:
    ok = Delivered("HTTP 200")
    assert judge_telegram(200, SENT.body, ok) == ok
    assert judge_telegram(200, b'{"ok":false}', ok) == Retry(
        'unexpected answer HTTP 200: {"ok":false}'
    )
    limited = b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5"'
    limited += b',"parameters":{"retry_after":5}}'
    assert judge_telegram(429, limited, Retry("HTTP 429")) == Retry(
        "HTTP 429: Too Many Requests: retry after 5", 5.0
    )
    assert judge_telegram(502, b"<html>Bad Gateway</html>", Retry("HTTP 502: x")) == Retry(
        "HTTP 502: x"
    )


async def test_telegram_over_a_real_socket(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(
        script=[
            Answer(
                429,
                b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3",'
                b'"parameters":{"retry_after":3}}',
            ),
            Answer(502, b"<html><body>502 Bad Gateway</body></html>"),
            Answer(
                400, b'{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}'
            ),
            Answer(
                403,
                b'{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the'
                b' user"}',
            ),
            Answer(401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}'),
            SENT,
            SENT,
        ]
    )
    base = await serve_receiver(nursery, app)
    channel = _channel(base)
    firing = make_notification("f")
    outcomes = [await channel.send(firing) for _ in range(6)]
    assert outcomes[0] == Retry("HTTP 429: Too Many Requests: retry after 3", 3.0)
    assert isinstance(outcomes[1], Retry)
    assert outcomes[2] == Permanent("HTTP 400: Bad Request: chat not found")
    assert outcomes[3] == Permanent("HTTP 403: Forbidden: bot was blocked by the user")
    assert outcomes[4] == Permanent("HTTP 401: Unauthorized")
    assert outcomes[5] == Delivered("HTTP 200")
    resolved = make_notification("r", alerts=[make_alert(status=AlertStatus.RESOLVED)])
    assert await channel.send(resolved) == Delivered("HTTP 200")
    assert all(request.path == f"/bot{TOKEN}/sendMessage" for request in app.received)
    assert all(request.headers["content-type"] == "application/json" for request in app.received)
    first, last = (json.loads(request.body) for request in (app.received[0], app.received[-1]))
    assert first["chat_id"] == "-100123"
    assert first["parse_mode"] == "HTML"
    assert first["text"].startswith("<b>[FIRING:1] High API Latency</b>\n")
    assert last["text"].startswith("<b>[RESOLVED:1] High API Latency</b>\n✅")
    assert all(TOKEN not in repr(outcome) for outcome in outcomes)
    await channel.aclose()


async def test_a_refused_connection_does_not_show_the_token() -> None:
    from tests.actors.notify.servers import free_port

    channel = _channel(f"http://127.0.0.1:{free_port()}")
    outcome = await channel.send(make_notification())
    assert isinstance(outcome, Retry)
    assert TOKEN not in outcome.reason
    await channel.aclose()


async def test_a_resolution_is_not_sent_when_send_resolved_is_false(nursery: trio.Nursery) -> None:
    app = ScriptedReceiver(default=SENT)
    base = await serve_receiver(nursery, app)
    states = await deliver_firing_then_resolved(_channel(base, send_resolved=False))
    assert states == {
        "f": "delivered: HTTP 200",
        "r": "delivered: skipped: send_resolved is false",
    }
    assert len(app.received) == 1


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"chat_id": "1"}, "bot_token is empty"),
        ({"bot_token": " ", "chat_id": "1"}, "bot_token is empty"),
        ({"bot_token": TOKEN}, "chat_id is empty"),
        ({"bot_token": TOKEN, "chat_id": "1"}, None),
    ],
)
def test_an_empty_bot_token_or_chat_disables_the_channel(
    keys: dict[str, str], reason: str | None
) -> None:
    config = channel_config(TelegramChannelConfig, **keys)
    assert config.disabled_reason() == reason
    assert TOKEN not in repr(config)
