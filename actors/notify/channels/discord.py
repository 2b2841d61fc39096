"""discord channel: a Discord webhook message (`content` and embeds).

The message's `content` is the title; one embed lists the alerts (one line each), a second the
alerts held by a failing dependency, and the group labels are the first embed's fields. Discord's
limits are kept: content 2000 characters, at most 10 embeds, an embed description 4096 and all
embeds of a message together 6000 (the caps below add up to less). Mentions are disabled
(`allowed_mentions`), so a label holding "@everyone" pings nobody. 204 (and 200) are success; 429
is retried after the `retry_after` of Discord's JSON answer (its `Retry-After` header when the
body has none), 5xx retried, other 4xx permanent. The webhook URL is the secret and is never
logged.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import SecretStr

from actors.models import AlertStatus, Notification
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title, truncate
from actors.notify.config import ChannelBase, SecretUrl, is_empty
from actors.notify.outcome import Outcome, Retry

__all__ = ["DiscordChannel", "DiscordChannelConfig", "build_discord_message", "judge_discord"]

CONTENT_MAX = 2000
EMBEDS_MAX = 10
DESCRIPTION_MAX = 4096
EMBEDS_TOTAL_MAX = 6000
_ALERTS_TEXT = 3000  # the alerts' embed, so that every embed fits in EMBEDS_TOTAL_MAX
_HELD_TEXT = 1200
_TITLE = 200
_FIELDS = 5
_FIELD_NAME = 50
_FIELD_VALUE = 100
_FOOTER = 200
_RED, _GREEN = 0xE74C3C, 0x2ECC71


class DiscordChannelConfig(ChannelBase):
    """kind = "discord": a Discord webhook."""

    kind: Literal["discord"]
    webhook_url: SecretUrl = SecretStr("")

    def disabled_reason(self) -> str | None:
        return "webhook_url is empty" if is_empty(self.webhook_url) else None


def build_discord_message(notification: Notification, *, external_url: str = "") -> dict[str, Any]:
    """The webhook body for `notification`, within Discord's limits (pure)."""
    head = title(notification)
    lines = []
    for alert in notification.alerts:
        mark = "🔴" if alert.status is AlertStatus.FIRING else "✅"
        severity = dict(alert.labels).get("severity", "")
        extra = f" ({severity})" if severity else ""
        lines.append(f"{mark}{extra} {alert_summary(alert)}")
    alerts: dict[str, Any] = {
        "title": truncate(head, _TITLE),
        "description": truncate("\n".join(lines), _ALERTS_TEXT),
        "color": _RED if notification.status is AlertStatus.FIRING else _GREEN,
        "fields": [
            {
                "name": truncate(name, _FIELD_NAME),
                "value": truncate(value, _FIELD_VALUE) or "-",
                "inline": True,
            }
            for name, value in notification.group_labels[:_FIELDS]
        ],
        "footer": {"text": truncate(f"blipee-monitor · {notification.group_key}", _FOOTER)},
    }
    if external_url:
        alerts["url"] = external_url
    embeds = [alerts]
    held = held_alerts(notification)
    if held:
        text = "\n".join(f"• {held_line(entry)}" for entry in held)
        embeds.append(
            {
                "title": f"Held, blocked by a failing dependency ({len(held)})",
                "description": truncate(text, _HELD_TEXT),
            }
        )
    return {
        "content": truncate(head, CONTENT_MAX),
        "embeds": embeds[:EMBEDS_MAX],
        "allowed_mentions": {"parse": []},
    }


def judge_discord(status: int, body: bytes, outcome: Outcome) -> Outcome:
    """A 429 waits the `retry_after` seconds of Discord's JSON answer when it has one."""
    if status != 429 or not isinstance(outcome, Retry):
        return outcome
    try:
        data = json.loads(body)
    except ValueError:
        return outcome
    wait = data.get("retry_after") if isinstance(data, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 <= wait < 1e9:
        return Retry(outcome.reason, float(wait))
    return outcome


class DiscordChannel(HttpChannel[DiscordChannelConfig]):
    """POSTs a message to a Discord webhook URL."""

    kind = "discord"
    rate = (0.5, 5)  # Discord: about 5 requests per 2 seconds per webhook

    def secrets(self) -> tuple[str, ...]:
        return (self.config.webhook_url.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        payload = build_discord_message(notification, external_url=self.context.external_url)
        body = json.dumps(payload).encode("utf-8")
        url = self.config.webhook_url.get_secret_value()
        return await self.post(url, body, ok={200, 204}, judge=judge_discord)
