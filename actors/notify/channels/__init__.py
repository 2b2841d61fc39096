"""Notification channels, one module per kind, behind one interface (`Channel`).

`build_channel()` turns a channel's configuration into a channel; `build_channels()` does it for
the whole [channels] table and leaves out (with a warning) the channels whose required secret is
empty, so the default configuration runs without any secret. Given a `tracer_provider`, HTTP
channels make one client span per request (see `Channel.tracer_provider`).

The HTTP channel kinds (slack, pagerduty, webhook, alertmanager) and `HttpChannel` are imported
on first use: by `build_channel()` when such a channel is built, or when one of their names is
read from this package (`from actors.notify.channels import SlackChannel` still works). A process
whose channels are only console and email never imports httpx.
"""

from __future__ import annotations

import importlib
import logging
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

from actors.clock import Clock
from actors.notify.channels.base import Channel
from actors.notify.channels.console import ConsoleChannel
from actors.notify.channels.email import EmailChannel
from actors.notify.config import (
    AlertmanagerChannelConfig,
    ChannelConfig,
    ConsoleChannelConfig,
    EmailChannelConfig,
    PagerDutyChannelConfig,
    SlackChannelConfig,
    WebhookChannelConfig,
)
from actors.notify.errors import ChannelSetupError
from actors.store import Database

if TYPE_CHECKING:
    import httpx
    from opentelemetry.trace import TracerProvider

    from actors.notify.channels.alertmanager import AlertmanagerChannel
    from actors.notify.channels.http import HttpChannel
    from actors.notify.channels.pagerduty import PagerDutyChannel
    from actors.notify.channels.slack import SlackChannel
    from actors.notify.channels.webhook import WebhookChannel

__all__ = [
    "AlertmanagerChannel",
    "Channel",
    "ConsoleChannel",
    "EmailChannel",
    "HttpChannel",
    "PagerDutyChannel",
    "SlackChannel",
    "WebhookChannel",
    "build_channel",
    "build_channels",
]

_LAZY = {
    "AlertmanagerChannel": "actors.notify.channels.alertmanager",
    "HttpChannel": "actors.notify.channels.http",
    "PagerDutyChannel": "actors.notify.channels.pagerduty",
    "SlackChannel": "actors.notify.channels.slack",
    "WebhookChannel": "actors.notify.channels.webhook",
}
"""Public names whose modules import httpx: loaded by `__getattr__` when first read."""


def __getattr__(name: str) -> object:
    """PEP 562: import an HTTP channel class on first access (it imports httpx).

    Raises:
        AttributeError: `name` is not a name of this package.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later reads skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def build_channel(
    name: str,
    config: ChannelConfig,
    *,
    clock: Clock,
    logger: logging.Logger,
    transport: httpx.AsyncBaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
    external_url: str = "",
    database: Database | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Channel:
    """Build the channel `name` from its configuration.

    `transport` is the httpx transport of HTTP channels (None: real network); `ssl_context` the
    TLS context of the email channel (None: system trust store); `database` keeps the
    alertmanager channel's firing alerts across restarts; `tracer_provider` (None: no spans)
    instruments HTTP channels' requests.

    Raises:
        ChannelSetupError: the configuration is disabled (a required secret is empty) or unknown.
    """
    channel = _build_channel(
        name,
        config,
        clock=clock,
        logger=logger,
        transport=transport,
        ssl_context=ssl_context,
        external_url=external_url,
        database=database,
    )
    channel.tracer_provider = tracer_provider
    return channel


def _build_channel(
    name: str,
    config: ChannelConfig,
    *,
    clock: Clock,
    logger: logging.Logger,
    transport: httpx.AsyncBaseTransport | None,
    ssl_context: ssl.SSLContext | None,
    external_url: str,
    database: Database | None,
) -> Channel:
    reason = config.disabled_reason()
    if reason is not None:
        raise ChannelSetupError(name, f"disabled: {reason}")
    if isinstance(config, ConsoleChannelConfig):
        return ConsoleChannel(
            name,
            send_resolved=config.send_resolved,
            timeout=config.timeout,
            clock=clock,
            logger=logger,
        )
    if isinstance(config, EmailChannelConfig):
        return EmailChannel(
            name,
            smtp_host=config.smtp_host,
            smtp_port=config.smtp_port,
            sender=config.from_,
            recipients=config.to,
            username=config.username,
            password=config.password.get_secret_value(),
            starttls=config.starttls,
            tls=config.tls,
            ssl_context=ssl_context,
            external_url=external_url,
            send_resolved=config.send_resolved,
            timeout=config.timeout,
            clock=clock,
            logger=logger,
        )
    if isinstance(config, SlackChannelConfig):
        from actors.notify.channels.slack import SlackChannel

        return SlackChannel(
            name,
            webhook_url=config.webhook_url.get_secret_value(),
            external_url=external_url,
            send_resolved=config.send_resolved,
            timeout=config.timeout,
            clock=clock,
            logger=logger,
            transport=transport,
        )
    if isinstance(config, PagerDutyChannelConfig):
        from actors.notify.channels.pagerduty import PagerDutyChannel

        return PagerDutyChannel(
            name,
            routing_key=config.routing_key.get_secret_value(),
            url=config.url,
            source=external_url or "blipee-monitor",
            send_resolved=config.send_resolved,
            timeout=config.timeout,
            clock=clock,
            logger=logger,
            transport=transport,
        )
    if isinstance(config, WebhookChannelConfig):
        from actors.notify.channels.webhook import WebhookChannel

        return WebhookChannel(
            name,
            url=config.url.get_secret_value(),
            secret=config.secret.get_secret_value(),
            headers=config.headers,
            external_url=external_url,
            send_resolved=config.send_resolved,
            timeout=config.timeout,
            clock=clock,
            logger=logger,
            transport=transport,
        )
    if isinstance(config, AlertmanagerChannelConfig):
        from actors.notify.channels.alertmanager import AlertmanagerChannel

        return AlertmanagerChannel(
            name,
            url=config.url,
            resend_interval=config.resend_interval,
            database=database,
            send_resolved=config.send_resolved,
            timeout=config.timeout,
            clock=clock,
            logger=logger,
            transport=transport,
        )
    raise ChannelSetupError(name, f"unknown channel kind {type(config).__name__}")


def build_channels(
    configs: Mapping[str, ChannelConfig],
    *,
    clock: Clock,
    logger: logging.Logger,
    transport: httpx.AsyncBaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
    external_url: str = "",
    database: Database | None = None,
    tracer_provider: TracerProvider | None = None,
) -> dict[str, Channel]:
    """Build every enabled channel; a disabled one is logged (WARNING, no secret) and skipped."""
    channels: dict[str, Channel] = {}
    for name, config in configs.items():
        reason = config.disabled_reason()
        if reason is not None:
            logger.warning("channel %r (%s) is disabled: %s", name, config.kind, reason)
            continue
        channels[name] = build_channel(
            name,
            config,
            clock=clock,
            logger=logger,
            transport=transport,
            ssl_context=ssl_context,
            external_url=external_url,
            database=database,
            tracer_provider=tracer_provider,
        )
    return channels
