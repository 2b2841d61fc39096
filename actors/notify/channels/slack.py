"""slack channel: a Slack incoming webhook, blocks with a text fallback.

Success is only HTTP 200 with the body `ok`. 400 (invalid_payload), 403 (action_prohibited),
404 (no_service, channel_not_found) and 410 (channel_is_archived) are permanent; 429 (Retry-After
honoured) and 5xx are retried. The webhook URL is the secret and is never logged.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import SecretStr

from actors.models import AlertStatus, Notification
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title, truncate
from actors.notify.config import ChannelBase, SecretUrl, is_empty
from actors.notify.outcome import Outcome

__all__ = ["SlackChannel", "SlackChannelConfig", "build_slack_payload"]

_MAX_ALERTS = 10  # Slack allows 50 blocks; keep messages readable
_TEXT_MAX = 2900  # section text limit is 3000


class SlackChannelConfig(ChannelBase):
    """kind = "slack": a Slack incoming webhook."""

    kind: Literal["slack"]
    webhook_url: SecretUrl = SecretStr("")

    def disabled_reason(self) -> str | None:
        return "webhook_url is empty" if is_empty(self.webhook_url) else None


def build_slack_payload(notification: Notification, *, external_url: str = "") -> dict[str, Any]:
    """The JSON body for `notification`: `text` (fallback, notifications) and `blocks` (pure)."""
    head = title(notification)
    emoji = ":red_circle:" if notification.status is AlertStatus.FIRING else ":white_check_mark:"
    lines = []
    for alert in notification.alerts[:_MAX_ALERTS]:
        labels = dict(alert.labels)
        severity = labels.get("severity", "")
        mark = "*FIRING*" if alert.status is AlertStatus.FIRING else "*RESOLVED*"
        extra = f" ({severity})" if severity else ""
        lines.append(f"{mark}{extra} {alert_summary(alert)}")
    hidden = len(notification.alerts) - _MAX_ALERTS
    if hidden > 0:
        lines.append(f"… and {hidden} more")
    body = truncate("\n".join(lines), _TEXT_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(head, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} {body}"}},
    ]
    held = held_alerts(notification)
    if held:
        shown = [f"• {held_line(entry)}" for entry in held[:_MAX_ALERTS]]
        if len(held) > _MAX_ALERTS:
            shown.append(f"… and {len(held) - _MAX_ALERTS} more")
        text = f"*Held, blocked by a failing dependency ({len(held)}):*\n" + "\n".join(shown)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, _TEXT_MAX)}}
        )
    context = f"group `{truncate(notification.group_key, 200)}`"
    if external_url:
        context += f" · <{external_url}|blipee-monitor>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    summary = f"{head}: " + "; ".join(alert_summary(a) for a in notification.alerts)
    if held:
        summary += f" (holding {len(held)}: " + "; ".join(held_line(e) for e in held) + ")"
    fallback = truncate(summary, _TEXT_MAX)
    return {"text": fallback, "blocks": blocks}


class SlackChannel(HttpChannel[SlackChannelConfig]):
    """POSTs to a Slack incoming webhook URL."""

    kind = "slack"
    rate = (1.0, 5)  # Slack: about one message per second per webhook

    def secrets(self) -> tuple[str, ...]:
        return (self.config.webhook_url.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        payload = build_slack_payload(notification, external_url=self.context.external_url)
        body = json.dumps(payload).encode("utf-8")
        url = self.config.webhook_url.get_secret_value()
        return await self.post(url, body, ok={200}, accept_body="ok")
