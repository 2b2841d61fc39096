"""telegram channel: the Telegram Bot API's `sendMessage`, HTML formatted.

`POST {url}/bot{bot_token}/sendMessage` with `chat_id`, `text` and `parse_mode = "HTML"`: the
title in bold, then one line per alert and the held alerts; every piece of alert text is
HTML-escaped, and the text is cut (between lines, never inside an escape) to Telegram's 4096
characters. Success is HTTP 200 with `{"ok": true}`; a 429 is retried after its
`parameters.retry_after`; 5xx are retried; 400 (chat not found, bad request) and 403 (the bot
was blocked or removed) are permanent, with Telegram's `description` as the reason. The bot
token, which is in the request's URL, is the secret and is never logged.
"""

from __future__ import annotations

import html
import json
from typing import Any, Literal

from pydantic import SecretStr

from actors.configtypes import Secret
from actors.models import AlertStatus, Notification
from actors.notify.channels.base import ChannelContext
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title, truncate
from actors.notify.config import ChannelBase, Url, is_empty
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry, body_reason

__all__ = [
    "TEXT_MAX",
    "TelegramChannel",
    "TelegramChannelConfig",
    "build_telegram_text",
    "judge_telegram",
]

TEXT_MAX = 4096
_LINE_MAX = 500


class TelegramChannelConfig(ChannelBase):
    """kind = "telegram": a Telegram bot sending to one chat."""

    kind: Literal["telegram"]
    bot_token: Secret = SecretStr("")
    chat_id: str = ""
    url: Url = "https://api.telegram.org"

    def disabled_reason(self) -> str | None:
        if is_empty(self.bot_token):
            return "bot_token is empty"
        return "chat_id is empty" if not self.chat_id.strip() else None


def build_telegram_text(notification: Notification) -> str:
    """The message text for `notification`: Telegram HTML, at most `TEXT_MAX` characters (pure)."""
    lines = []
    for alert in notification.alerts:
        mark = "🔴" if alert.status is AlertStatus.FIRING else "✅"
        severity = dict(alert.labels).get("severity", "")
        extra = f" ({html.escape(severity, quote=False)})" if severity else ""
        summary = html.escape(truncate(alert_summary(alert), _LINE_MAX), quote=False)
        lines.append(f"{mark}{extra} {summary}")
    held = held_alerts(notification)
    if held:
        lines.append(f"<b>Held, blocked by a failing dependency ({len(held)}):</b>")
        lines.extend(
            f"• {html.escape(truncate(held_line(entry), _LINE_MAX), quote=False)}" for entry in held
        )
    text = f"<b>{html.escape(truncate(title(notification), _LINE_MAX), quote=False)}</b>"
    for index, line in enumerate(lines):
        more = f"\n… and {len(lines) - index} more lines"
        if len(text) + 1 + len(line) + len(more) > TEXT_MAX:
            return text + more
        text += "\n" + line
    return text


def judge_telegram(status: int, body: bytes, outcome: Outcome) -> Outcome:
    """Telegram's answer is `{"ok": ..., "description": ..., "parameters": {"retry_after"}}`:
    a 200 without `"ok": true` is retried, a 429 waits `retry_after`, and the reason of a
    failure is its `description`."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    if isinstance(outcome, Delivered):
        if data.get("ok") is True:
            return outcome
        return Retry(f"unexpected answer HTTP {status}: {body_reason(body, 100)}")
    description = data.get("description")
    reason = outcome.reason
    if isinstance(description, str):
        reason = f"HTTP {status}: {body_reason(description)}"
    if isinstance(outcome, Permanent):
        return Permanent(reason)
    parameters = data.get("parameters")
    wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 <= wait < 1e9:
        return Retry(reason, float(wait))
    return Retry(reason, outcome.retry_after)


class TelegramChannel(HttpChannel[TelegramChannelConfig]):
    """Sends one message per notification through a Telegram bot."""

    kind = "telegram"
    rate = (1.0, 5)  # Telegram: about one message per second per chat

    def __init__(self, name: str, config: TelegramChannelConfig, context: ChannelContext) -> None:
        super().__init__(name, config, context)
        token = config.bot_token.get_secret_value()
        self._url = f"{config.url.rstrip('/')}/bot{token}/sendMessage"

    def secrets(self) -> tuple[str, ...]:
        return (self.config.bot_token.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        payload: dict[str, Any] = {
            "chat_id": self.config.chat_id,
            "text": build_telegram_text(notification),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        body = json.dumps(payload).encode("utf-8")
        return await self.post(self._url, body, ok={200}, judge=judge_telegram)
