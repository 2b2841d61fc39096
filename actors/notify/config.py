"""Configuration of notification channels ([channels.NAME]): one model per `kind`.

`ChannelConfig` is the union users write, discriminated by `kind`. A channel whose required secret
is empty is not an error: `disabled_reason()` says why it is disabled, so the default configuration
runs on a laptop without any secret.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from actors.configtypes import ConfigModel, Duration, Secret

__all__ = [
    "AlertmanagerChannelConfig",
    "ChannelBase",
    "ChannelConfig",
    "ConsoleChannelConfig",
    "EmailChannelConfig",
    "PagerDutyChannelConfig",
    "SlackChannelConfig",
    "WebhookChannelConfig",
]

_URL = re.compile(r"^https?://[^/\s]+")


def _empty(secret: SecretStr | None) -> bool:
    return secret is None or not secret.get_secret_value().strip()


def _check_url(text: str, *, shown: bool) -> None:
    if not _URL.match(text):
        got = f", got {text!r}" if shown else ""  # a secret URL is never echoed
        raise ValueError(f"expected an http:// or https:// URL{got}")
    try:
        valid_port = urlsplit(text).port != 0
    except ValueError:
        valid_port = False
    if not valid_port:
        got = f" in {text!r}" if shown else ""
        raise ValueError(f"invalid port{got}; expected 1-65535")


def _url(value: str) -> str:
    _check_url(value, shown=True)
    return value


def _optional_url(value: str) -> str:
    if value:
        _check_url(value, shown=True)
    return value


def _optional_secret_url(value: SecretStr) -> SecretStr:
    if value.get_secret_value():
        _check_url(value.get_secret_value(), shown=False)
    return value


_Url = Annotated[str, AfterValidator(_url)]
"""An http(s) URL."""
_OptionalUrl = Annotated[str, AfterValidator(_optional_url)]
"""An http(s) URL, or empty (the channel is disabled)."""
_SecretUrl = Annotated[Secret, AfterValidator(_optional_secret_url)]
"""An http(s) URL that is a secret (webhooks: the URL is the credential), or empty."""


class ChannelBase(ConfigModel):
    """Keys every channel kind has."""

    send_resolved: bool = True
    timeout: Duration = 10.0

    def disabled_reason(self) -> str | None:
        """Why this channel cannot send (a required secret is empty), or None if it can."""
        return None


class ConsoleChannelConfig(ChannelBase):
    """kind = "console": one log line per notification."""

    kind: Literal["console"]


class EmailChannelConfig(ChannelBase):
    """kind = "email": SMTP, plain text + HTML."""

    kind: Literal["email"]
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    username: str = ""
    password: Secret = SecretStr("")
    starttls: bool = False
    tls: bool = False
    from_: str = Field(default="blipee-monitor@localhost", alias="from")
    to: tuple[str, ...] = ()

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if address and "@" not in address:
                raise ValueError(f"not an email address: {address!r}")
        return value

    @model_validator(mode="after")
    def _tls_modes(self) -> EmailChannelConfig:
        if self.tls and self.starttls:
            raise ValueError("choose one of tls (implicit TLS) and starttls")
        return self

    def disabled_reason(self) -> str | None:
        if not self.smtp_host.strip():
            return "smtp_host is empty"
        if not any(address.strip() for address in self.to):
            return "no recipient in 'to'"
        return None


class SlackChannelConfig(ChannelBase):
    """kind = "slack": a Slack incoming webhook."""

    kind: Literal["slack"]
    webhook_url: _SecretUrl = SecretStr("")

    def disabled_reason(self) -> str | None:
        return "webhook_url is empty" if _empty(self.webhook_url) else None


class PagerDutyChannelConfig(ChannelBase):
    """kind = "pagerduty": PagerDuty Events API v2."""

    kind: Literal["pagerduty"]
    routing_key: Secret = SecretStr("")
    url: _Url = "https://events.pagerduty.com/v2/enqueue"

    def disabled_reason(self) -> str | None:
        return "routing_key is empty" if _empty(self.routing_key) else None


class WebhookChannelConfig(ChannelBase):
    """kind = "webhook": Alertmanager v4 JSON payload, HMAC-signed when `secret` is set."""

    kind: Literal["webhook"]
    url: _SecretUrl = SecretStr("")
    secret: Secret = SecretStr("")
    headers: dict[str, str] = Field(default_factory=dict)

    def disabled_reason(self) -> str | None:
        return "url is empty" if _empty(self.url) else None


class AlertmanagerChannelConfig(ChannelBase):
    """kind = "alertmanager": POST /api/v2/alerts of an Alertmanager."""

    kind: Literal["alertmanager"]
    url: _OptionalUrl = ""
    resend_interval: Duration = 60.0

    def disabled_reason(self) -> str | None:
        return "url is empty" if not self.url.strip() else None


ChannelConfig = Annotated[
    ConsoleChannelConfig
    | EmailChannelConfig
    | SlackChannelConfig
    | PagerDutyChannelConfig
    | WebhookChannelConfig
    | AlertmanagerChannelConfig,
    Field(discriminator="kind"),
]
"""Any channel, chosen by its `kind` key."""
