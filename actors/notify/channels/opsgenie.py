"""opsgenie channel: Opsgenie Alert API v2, one alert per alert group.

A firing group creates an alert (`POST /v2/alerts`); its resolution closes it (`POST
/v2/alerts/{alias}/close?identifierType=alias`). Both name the alert by the same `alias`, the
group key's SHA-256, stable across retries and restarts, so Opsgenie deduplicates repeated
creates and a resolution closes the alert its group opened (a digest, so the alias is safe in
the close URL's path whatever the group's labels hold; the group key itself is in `details`).
Priority from the highest firing severity: critical P1, warning P3, info P5. Opsgenie answers
202 (the request is queued); 429 (Retry-After honoured) and 5xx are retried; other 4xx are
permanent. The API key (`Authorization: GenieKey KEY`) is the secret and is never logged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import SecretStr

from actors.configtypes import Secret
from actors.models import AlertStatus, Notification
from actors.notify.channels.base import ChannelContext
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.pagerduty import severity
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title, truncate
from actors.notify.config import ChannelBase, Url, is_empty
from actors.notify.outcome import Outcome

__all__ = [
    "OpsgenieChannel",
    "alias",
    "OpsgenieChannelConfig",
    "build_opsgenie_close",
    "build_opsgenie_create",
    "priority",
]

_PRIORITY = {"critical": "P1", "warning": "P3", "info": "P5"}
_MESSAGE_MAX = 130  # Opsgenie's limits, in characters
_DESCRIPTION_MAX = 15000
_SOURCE_MAX = 100
_TAG_MAX = 50
_NOTE_MAX = 25000


class OpsgenieChannelConfig(ChannelBase):
    """kind = "opsgenie": the Opsgenie Alert API v2."""

    kind: Literal["opsgenie"]
    api_key: Secret = SecretStr("")
    url: Url = "https://api.opsgenie.com"

    def disabled_reason(self) -> str | None:
        return "api_key is empty" if is_empty(self.api_key) else None


def alias(notification: Notification) -> str:
    """The alert's alias: "blipee-monitor-" and the hex SHA-256 of the group key (<= 512)."""
    digest = hashlib.sha256(notification.group_key.encode("utf-8")).hexdigest()
    return f"blipee-monitor-{digest}"


def priority(notification: Notification) -> str:
    """P1 (critical), P3 (warning, or any other severity) or P5 (info)."""
    return _PRIORITY[severity(notification)]


def build_opsgenie_create(notification: Notification, *, source: str) -> dict[str, Any]:
    """The body of the create request of a firing group (pure)."""
    firing = [a for a in notification.alerts if a.status is AlertStatus.FIRING]
    lines = [alert_summary(a) for a in firing or notification.alerts]
    held = held_alerts(notification)
    if held:
        lines.append(f"Held, blocked by a failing dependency ({len(held)}):")
        lines.extend(f"- {held_line(entry)}" for entry in held)
    tags = ["blipee-monitor", severity(notification)]
    checks = sorted({dict(a.labels).get("check", "") for a in firing} - {""})
    tags.extend(f"check:{check}" for check in checks)
    details = dict(notification.group_labels)
    details["group_key"] = notification.group_key
    details["firing"] = str(len(firing))
    return {
        "message": truncate(title(notification), _MESSAGE_MAX),
        "alias": alias(notification),
        "description": truncate("\n".join(lines), _DESCRIPTION_MAX),
        "tags": [truncate(tag, _TAG_MAX) for tag in tags[:20]],
        "details": details,
        "source": truncate(source, _SOURCE_MAX),
        "priority": priority(notification),
    }


def build_opsgenie_close(notification: Notification, *, source: str) -> dict[str, Any]:
    """The body of the close request of a resolved group (pure)."""
    return {
        "source": truncate(source, _SOURCE_MAX),
        "note": truncate(title(notification), _NOTE_MAX),
    }


class OpsgenieChannel(HttpChannel[OpsgenieChannelConfig]):
    """Creates and closes Opsgenie alerts."""

    kind = "opsgenie"
    rate = (2.0, 10)

    def __init__(self, name: str, config: OpsgenieChannelConfig, context: ChannelContext) -> None:
        super().__init__(name, config, context)
        self._alerts = config.url.rstrip("/") + "/v2/alerts"

    def secrets(self) -> tuple[str, ...]:
        return (self.config.api_key.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        source = self.context.external_url or "blipee-monitor"
        if notification.status is AlertStatus.RESOLVED:
            url = f"{self._alerts}/{alias(notification)}/close?identifierType=alias"
            payload = build_opsgenie_close(notification, source=source)
        else:
            url = self._alerts
            payload = build_opsgenie_create(notification, source=source)
        headers = {"Authorization": f"GenieKey {self.config.api_key.get_secret_value()}"}
        return await self.post(url, json.dumps(payload).encode("utf-8"), headers=headers)
