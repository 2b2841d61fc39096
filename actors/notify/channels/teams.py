"""teams channel: a Microsoft Teams incoming webhook or Workflows webhook, as an Adaptive Card.

The body is a `message` with one Adaptive Card attachment (the form both Teams incoming webhooks
and the Workflows "post to a channel when a webhook request is received" template accept): the
title, one line per alert (at most 20), the held alerts, the group labels as facts and a link to
the monitor when `external_url` is set. 200 (incoming webhook) and 202 (Workflows) are success,
except an incoming webhook's 200 whose body reports Teams throttling ("HTTP error 429"), which is
retried; 429 (Retry-After honoured) and 5xx are retried; other 4xx are permanent. The webhook URL
is the secret and is never logged.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import SecretStr

from actors.models import AlertStatus, Notification
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title, truncate
from actors.notify.config import ChannelBase, SecretUrl, is_empty
from actors.notify.outcome import Delivered, Outcome, Retry

__all__ = ["TeamsChannel", "TeamsChannelConfig", "build_teams_card", "judge_teams"]

_MAX_ALERTS = 20
_TEXT_MAX = 2000  # per text block; the whole message must stay under Teams' 28 KB
_CARD = "application/vnd.microsoft.card.adaptive"


class TeamsChannelConfig(ChannelBase):
    """kind = "teams": a Microsoft Teams incoming webhook or Workflows webhook."""

    kind: Literal["teams"]
    webhook_url: SecretUrl = SecretStr("")

    def disabled_reason(self) -> str | None:
        return "webhook_url is empty" if is_empty(self.webhook_url) else None


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": truncate(text, _TEXT_MAX), "wrap": True, **style}


def build_teams_card(notification: Notification, *, external_url: str = "") -> dict[str, Any]:
    """The webhook body for `notification`: a message carrying one Adaptive Card (pure)."""
    firing = notification.status is AlertStatus.FIRING
    body: list[dict[str, Any]] = [
        _text(
            title(notification),
            size="Large",
            weight="Bolder",
            color="Attention" if firing else "Good",
        )
    ]
    for alert in notification.alerts[:_MAX_ALERTS]:
        state = "FIRING" if alert.status is AlertStatus.FIRING else "RESOLVED"
        severity = dict(alert.labels).get("severity", "")
        extra = f" ({severity})" if severity else ""
        body.append(_text(f"**{state}**{extra} {alert_summary(alert)}"))
    hidden = len(notification.alerts) - _MAX_ALERTS
    if hidden > 0:
        body.append(_text(f"… and {hidden} more"))
    held = held_alerts(notification)
    if held:
        lines = [f"- {held_line(entry)}" for entry in held[:_MAX_ALERTS]]
        if len(held) > _MAX_ALERTS:
            lines.append(f"- … and {len(held) - _MAX_ALERTS} more")
        heading = f"**Held, blocked by a failing dependency ({len(held)}):**"
        body.append(_text(heading + "\n\n" + "\n".join(lines)))
    facts = [
        {"title": name, "value": truncate(value, 200)} for name, value in notification.group_labels
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if external_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "blipee-monitor", "url": external_url}
        ]
    return {
        "type": "message",
        "summary": truncate(title(notification), 200),
        "attachments": [{"contentType": _CARD, "contentUrl": None, "content": card}],
    }


def judge_teams(status: int, body: bytes, outcome: Outcome) -> Outcome:
    """An incoming webhook answers 200 even when Teams throttled the message: retry that."""
    text = body.decode("utf-8", "replace")
    if isinstance(outcome, Delivered) and "HTTP error 429" in text:
        return Retry(f"HTTP {status}: {' '.join(text.split())[:200]}")
    return outcome


class TeamsChannel(HttpChannel[TeamsChannelConfig]):
    """POSTs an Adaptive Card to a Teams webhook URL."""

    kind = "teams"
    rate = (1.0, 4)  # Teams throttles a webhook beyond about four requests a second

    def secrets(self) -> tuple[str, ...]:
        return (self.config.webhook_url.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        payload = build_teams_card(notification, external_url=self.context.external_url)
        body = json.dumps(payload).encode("utf-8")
        url = self.config.webhook_url.get_secret_value()
        return await self.post(url, body, ok={200, 202}, judge=judge_teams)
