"""webhook channel: Alertmanager's webhook payload (version 4), HMAC-signed, idempotent.

Headers: `Content-Type: application/json`, `Idempotency-Key: <notification key>` (stable across
retries and restarts, so a receiver can drop duplicates), `X-Signature: sha256=<hex>` (HMAC-SHA256
of the exact body bytes with the channel secret) when a secret is set, plus the configured custom
headers. 2xx delivered; 408, 429 (Retry-After honoured) and 5xx retried; other 4xx dead-lettered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from pydantic import Field, SecretStr

from actors.configtypes import Secret
from actors.models import Alert, Notification
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import (
    common_annotations,
    common_labels,
    held_alerts,
    with_held_annotations,
)
from actors.notify.codec import rfc3339
from actors.notify.config import ChannelBase, SecretUrl, is_empty
from actors.notify.outcome import Outcome

__all__ = ["WebhookChannel", "WebhookChannelConfig", "alert_v4", "build_webhook_payload", "sign"]


class WebhookChannelConfig(ChannelBase):
    """kind = "webhook": Alertmanager v4 JSON payload, HMAC-signed when `secret` is set."""

    kind: Literal["webhook"]
    url: SecretUrl = SecretStr("")
    secret: Secret = SecretStr("")
    headers: dict[str, str] = Field(default_factory=dict)

    def disabled_reason(self) -> str | None:
        return "url is empty" if is_empty(self.url) else None


ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt of a firing alert


def alert_v4(alert: Alert) -> dict[str, Any]:
    """One alert in Alertmanager's webhook format."""
    return {
        "status": alert.status.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at) if alert.ends_at is not None else ZERO_TIME,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def build_webhook_payload(
    notification: Notification, *, receiver: str, external_url: str = ""
) -> dict[str, Any]:
    """The version 4 payload for `notification` (pure).

    Alerts held because of this group's alerts (a dependency holds them) are named in the
    parents' `held_alerts` annotation and listed in an extra top-level `heldAlerts` field
    ({alertname, check, blockedBy, fingerprint}); both appear only when something is held, and
    receivers of Alertmanager's format ignore fields they do not know.
    """
    held = held_alerts(notification)
    alerts = with_held_annotations(notification, held)
    payload: dict[str, Any] = {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": 0,
        "status": notification.status.value,
        "receiver": notification.receiver or receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": dict(common_labels(alerts)),
        "commonAnnotations": dict(common_annotations(alerts)),
        "externalURL": external_url,
        "alerts": [alert_v4(a) for a in alerts],
    }
    if held:
        payload["heldAlerts"] = [
            {
                "alertname": e["alertname"],
                "check": e["check"],
                "blockedBy": e["blocked_by"],
                "fingerprint": e["fingerprint"],
            }
            for e in held
        ]
    return payload


def sign(body: bytes, secret: str) -> str:
    """The X-Signature header value: "sha256=" + hex HMAC-SHA256 of `body` with `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel(HttpChannel[WebhookChannelConfig]):
    """POSTs the version 4 payload to `url`."""

    kind = "webhook"
    rate = (10.0, 50)

    def secrets(self) -> tuple[str, ...]:
        return (self.config.url.get_secret_value(), self.config.secret.get_secret_value())

    def request_headers(self, notification: Notification, body: bytes) -> dict[str, str]:
        """Headers of the POST for `notification` with `body` (custom headers first)."""
        headers = dict(self.config.headers)
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = notification.key
        secret = self.config.secret.get_secret_value()
        if secret:
            headers["X-Signature"] = sign(body, secret)
        return headers

    async def send(self, notification: Notification) -> Outcome:
        payload = build_webhook_payload(
            notification, receiver=self.name, external_url=self.context.external_url
        )
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        url = self.config.url.get_secret_value()
        return await self.post(url, body, headers=self.request_headers(notification, body))
