"""ntfy channel: one push message per notification, POSTed to an ntfy topic.

`POST {url}/{topic}`: the body is the message (one line per alert, cut to ntfy's 4096 bytes);
the `Title` header is the title (RFC 2047-encoded when not ASCII, which ntfy decodes),
`Priority` follows the highest firing severity (critical 5, warning 4, info 3; a resolution 2),
`Tags` are an emoji tag and the severity, and `Click` opens the monitor when `external_url` is
set. 200 delivered; 429 (Retry-After honoured) and 5xx retried; other 4xx dead-lettered (the
classification `HttpChannel.post` shares). The access token (`Authorization: Bearer`) is the
secret and is never logged.
"""

from __future__ import annotations

import re
from email.header import Header
from typing import Literal

from pydantic import SecretStr, field_validator

from actors.configtypes import Secret
from actors.models import AlertStatus, Notification
from actors.notify.channels.base import ChannelContext
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.pagerduty import severity
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title, truncate
from actors.notify.config import ChannelBase, Url
from actors.notify.outcome import Outcome

__all__ = ["NtfyChannel", "NtfyChannelConfig", "build_ntfy_message"]

MESSAGE_MAX = 4096  # bytes; ntfy turns a longer message into an attachment
_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_PRIORITY = {"critical": "5", "warning": "4", "info": "3"}


class NtfyChannelConfig(ChannelBase):
    """kind = "ntfy": an ntfy topic."""

    kind: Literal["ntfy"]
    url: Url = "https://ntfy.sh"
    topic: str = ""
    token: Secret = SecretStr("")

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if value and not _TOPIC.fullmatch(value):
            raise ValueError(f"invalid topic {value!r}; use 1-64 letters, digits, '-', '_'")
        return value

    def disabled_reason(self) -> str | None:
        return "topic is empty" if not self.topic else None


def build_ntfy_message(
    notification: Notification, *, external_url: str = ""
) -> tuple[dict[str, str], bytes]:
    """The headers (Title, Priority, Tags, Click) and body of the message (pure)."""
    lines = [alert_summary(alert) for alert in notification.alerts]
    held = held_alerts(notification)
    if held:
        lines.append(f"Held, blocked by a failing dependency ({len(held)}):")
        lines.extend(f"- {held_line(entry)}" for entry in held)
    body = "\n".join(lines).encode("utf-8")
    if len(body) > MESSAGE_MAX:
        body = body[: MESSAGE_MAX - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."
    head = " ".join(truncate(title(notification), 200).split())  # no line breaks in a header
    firing = notification.status is AlertStatus.FIRING
    level = severity(notification)
    headers = {
        "Content-Type": "text/plain; charset=utf-8",
        "Title": head if head.isascii() else Header(head, "utf-8").encode(maxlinelen=0),
        "Priority": _PRIORITY[level] if firing else "2",
        "Tags": f"{'rotating_light' if firing else 'white_check_mark'},{level}",
    }
    if external_url:
        headers["Click"] = external_url
    return headers, body


class NtfyChannel(HttpChannel[NtfyChannelConfig]):
    """POSTs the notification to `url`/`topic`."""

    kind = "ntfy"
    rate = (0.2, 60)  # ntfy.sh: a burst of 60 requests, then one every 5 seconds

    def __init__(self, name: str, config: NtfyChannelConfig, context: ChannelContext) -> None:
        super().__init__(name, config, context)
        self._url = f"{config.url.rstrip('/')}/{config.topic}"

    def secrets(self) -> tuple[str, ...]:
        return (self.config.token.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        headers, body = build_ntfy_message(notification, external_url=self.context.external_url)
        token = self.config.token.get_secret_value()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.post(self._url, body, headers=headers)
