"""pagerduty channel: PagerDuty Events API v2 (`POST /v2/enqueue`).

A firing group triggers (or updates) one incident; its resolution resolves it: both carry the
same `dedup_key`, derived from the alert group only, so it is stable across retries and restarts
and PagerDuty itself drops duplicate triggers. Severity: critical, warning, info map to the same
PagerDuty values (the highest of the firing alerts; anything else is "warning"). The summary is
cut to 1024 characters. 202 accepted; 400 permanent; 429 and 5xx retried (Retry-After honoured).
The routing key is the secret and is never logged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from actors.configtypes import Secret
from actors.models import AlertStatus, Notification
from actors.notify.channels.base import ChannelContext
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import alert_summary, group_name, held_alerts, title, truncate
from actors.notify.codec import rfc3339
from actors.notify.config import ChannelBase, Url, is_empty
from actors.notify.outcome import Outcome

__all__ = [
    "PagerDutyChannel",
    "PagerDutyChannelConfig",
    "build_pagerduty_event",
    "dedup_key",
    "enqueue_url",
    "severity",
]


class PagerDutyChannelConfig(ChannelBase):
    """kind = "pagerduty": PagerDuty Events API v2."""

    kind: Literal["pagerduty"]
    routing_key: Secret = SecretStr("")
    url: Url = "https://events.pagerduty.com/v2/enqueue"

    def disabled_reason(self) -> str | None:
        return "routing_key is empty" if is_empty(self.routing_key) else None


_RANK = {"info": 0, "warning": 1, "critical": 2}
_DEDUP_MAX = 255
_SUMMARY_MAX = 1024
_DETAIL_ALERTS = 50


def dedup_key(notification: Notification) -> str:
    """The incident key of the alert group (<= 255 characters, stable across restarts)."""
    key = f"blipee-monitor/{notification.group_key}"
    if len(key) <= _DEDUP_MAX:
        return key
    digest = hashlib.sha256(notification.group_key.encode("utf-8")).hexdigest()
    return f"blipee-monitor/sha256:{digest}"


def severity(notification: Notification) -> str:
    """The highest severity among the firing alerts (all alerts if none fires)."""
    alerts = [a for a in notification.alerts if a.status is AlertStatus.FIRING]
    ranks = [
        _RANK.get(dict(a.labels).get("severity", ""), 1) for a in alerts or notification.alerts
    ]
    best = max(ranks, default=1)
    return next(name for name, rank in _RANK.items() if rank == best)


def enqueue_url(url: str) -> str:
    """`url` itself when it names a path, else `url` + "/v2/enqueue" (a bare host or proxy)."""
    if urlsplit(url).path in ("", "/"):
        return url.rstrip("/") + "/v2/enqueue"
    return url


def build_pagerduty_event(
    notification: Notification, *, routing_key: str, source: str = "blipee-monitor"
) -> dict[str, Any]:
    """The Events API v2 body: a trigger while the group fires, a resolve after (pure)."""
    key = dedup_key(notification)
    if notification.status is AlertStatus.RESOLVED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    firing = [a for a in notification.alerts if a.status is AlertStatus.FIRING]
    lines = [alert_summary(a) for a in firing]
    summary = title(notification)
    if lines:
        summary += ": " + "; ".join(lines)
    first = min((a.starts_at for a in firing), default=notification.created_at)
    common = dict(firing[0].labels) if firing else {}
    details: dict[str, Any] = {
        "firing": [
            {"summary": alert_summary(a), "labels": dict(a.labels), "value": a.value}
            for a in firing[:_DETAIL_ALERTS]
        ],
        "resolved": [
            alert_summary(a) for a in notification.alerts if a.status is AlertStatus.RESOLVED
        ][:_DETAIL_ALERTS],
        "group_labels": dict(notification.group_labels),
        "num_firing": len(firing),
    }
    held = held_alerts(notification)
    if held:
        details["held"] = held[:_DETAIL_ALERTS]
        details["num_held"] = len(held)
    payload: dict[str, Any] = {
        "summary": truncate(summary, _SUMMARY_MAX),
        "source": source,
        "severity": severity(notification),
        "timestamp": rfc3339(first),
        "class": group_name(notification),
        "custom_details": details,
    }
    if "check" in common:
        payload["component"] = common["check"]
    if "rule" in common:
        payload["group"] = common["rule"]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": payload,
        "client": "blipee-monitor",
    }
    if firing and firing[0].generator_url:
        event["client_url"] = firing[0].generator_url
    return event


class PagerDutyChannel(HttpChannel[PagerDutyChannelConfig]):
    """Sends trigger/resolve events to the Events API v2; the event source is the context's
    `external_url` ("blipee-monitor" when empty)."""

    kind = "pagerduty"
    rate = (2.0, 10)  # PagerDuty: about 120 events per minute per routing key

    def __init__(self, name: str, config: PagerDutyChannelConfig, context: ChannelContext) -> None:
        super().__init__(name, config, context)
        self._url = enqueue_url(config.url)

    def secrets(self) -> tuple[str, ...]:
        return (self.config.routing_key.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        event = build_pagerduty_event(
            notification,
            routing_key=self.config.routing_key.get_secret_value(),
            source=self.context.external_url or "blipee-monitor",
        )
        body = json.dumps(event).encode("utf-8")
        return await self.post(self._url, body)
