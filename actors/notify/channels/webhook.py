"""webhook channel: Alertmanager's webhook payload (version 4), or a body from a Jinja template.

Without `template` the body is Alertmanager's webhook JSON. With it, the body is the template
rendered (jinja2's sandbox, StrictUndefined, no autoescaping: a JSON template escapes values with
`|tojson`) over the version 4 payload's fields plus `title`, sent as `content_type`, for any other
receiver. A template that does not compile is a configuration error; one that fails while
rendering (an undefined name, a sandbox violation, a filter's error) makes the notification a
permanent failure whose reason is the error's one-line message.

Headers: `Content-Type` (`application/json`, or `content_type` with a template),
`Idempotency-Key: <notification key>` (stable across retries and restarts, so a receiver can drop
duplicates), when a secret is set `X-Signature: t=<unix seconds>,sha256=<hex>` (HMAC-SHA256 with
the channel secret of `"{t}."` and the exact body bytes; each attempt signs anew) and, for one
release, the older body-only `X-Signature-Legacy: sha256=<hex>`, plus the configured custom
headers. docs/security.md shows how a receiver verifies it. 2xx delivered; 408, 429
(Retry-After honoured) and 5xx retried; other 4xx dead-lettered.

This module imports jinja2 only for a channel that has a template (when its table is validated).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from actors.configtypes import Secret
from actors.models import Alert, Notification
from actors.notify.channels.base import ChannelContext, redact
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.render import (
    common_annotations,
    common_labels,
    held_alerts,
    title,
    with_held_annotations,
)
from actors.notify.codec import rfc3339
from actors.notify.config import ChannelBase, SecretUrl, is_empty
from actors.notify.outcome import Outcome, Permanent

if TYPE_CHECKING:
    from jinja2 import Template

__all__ = [
    "REPLAY_WINDOW",
    "WebhookChannel",
    "WebhookChannelConfig",
    "alert_v4",
    "build_webhook_payload",
    "compile_template",
    "render_template",
    "sign",
    "sign_legacy",
]


class WebhookChannelConfig(ChannelBase):
    """kind = "webhook": Alertmanager v4 JSON payload, HMAC-signed when `secret` is set."""

    kind: Literal["webhook"]
    url: SecretUrl = SecretStr("")
    secret: Secret = SecretStr("")
    headers: dict[str, str] = Field(default_factory=dict)
    template: str = ""
    content_type: str = "application/json"

    @field_validator("template")
    @classmethod
    def _compiles(cls, value: str) -> str:
        if value:
            compile_template(value)
        return value

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        if not value.strip() or not value.isprintable():
            raise ValueError(f"invalid content_type {value!r}; expected e.g. 'text/plain'")
        return value

    def disabled_reason(self) -> str | None:
        return "url is empty" if is_empty(self.url) else None


def compile_template(source: str) -> Template:
    """`source` compiled in a sandboxed environment (StrictUndefined, no autoescaping).

    Raises:
        ValueError: it does not compile ("does not compile: template line N: <jinja's message>").
    """
    from jinja2 import StrictUndefined, TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    try:
        return environment.from_string(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"does not compile: template line {exc.lineno}: {exc.message}") from None


def render_template(template: Template, payload: dict[str, Any], *, title: str) -> str:
    """`template` rendered over `payload`'s fields, `heldAlerts` (always, maybe empty) and
    `title`.

    Raises:
        ValueError: rendering failed; the message is one line ("template failed: <type>: <why>").
    """
    variables = {"heldAlerts": [], **payload, "title": title}
    try:
        return template.render(variables)
    except Exception as exc:  # the template is the user's code: any error of it is theirs
        detail = " ".join(str(exc).split())[:300]
        raise ValueError(f"template failed: {type(exc).__name__}: {detail}") from None


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


REPLAY_WINDOW = 300
"""Seconds either side of its `t` within which a receiver should accept a signature (the
verification example in docs/security.md uses it)."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The X-Signature header value: `t=<timestamp>,sha256=<hex>`, the hex HMAC-SHA256 with
    `secret` of `"{timestamp}."` followed by the exact `body` bytes. A receiver that checks `t`
    against its clock (`REPLAY_WINDOW`) refuses a captured request replayed later."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},sha256={digest}"


def sign_legacy(body: bytes, secret: str) -> str:
    """The X-Signature-Legacy header value (the X-Signature of earlier releases, sent for one
    more release): "sha256=" + hex HMAC-SHA256 of `body` alone, so it can be replayed."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel(HttpChannel[WebhookChannelConfig]):
    """POSTs the version 4 payload to `url`."""

    kind = "webhook"
    rate = (10.0, 50)

    def __init__(self, name: str, config: WebhookChannelConfig, context: ChannelContext) -> None:
        super().__init__(name, config, context)
        self._template = compile_template(config.template) if config.template else None

    def request_headers(self, notification: Notification, body: bytes) -> dict[str, str]:
        """Headers of the POST for `notification` with `body` (custom headers first)."""
        headers = dict(self.config.headers)
        templated = self._template is not None
        headers["Content-Type"] = self.config.content_type if templated else "application/json"
        headers["Idempotency-Key"] = notification.key
        secret = self.config.secret.get_secret_value()
        if secret:
            headers["X-Signature"] = sign(body, secret, int(self.clock.now()))
            headers["X-Signature-Legacy"] = sign_legacy(body, secret)
        return headers

    async def send(self, notification: Notification) -> Outcome:
        payload = build_webhook_payload(
            notification, receiver=self.name, external_url=self.context.external_url
        )
        if self._template is None:
            body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        else:
            try:
                text = render_template(self._template, payload, title=title(notification))
            except ValueError as exc:
                return Permanent(redact(str(exc), self.secrets()))
            body = text.encode("utf-8")
        url = self.config.url.get_secret_value()
        return await self.post(url, body, headers=self.request_headers(notification, body))
