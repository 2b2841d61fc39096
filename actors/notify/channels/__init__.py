"""Notification channels, one module per kind, behind one interface (`Channel`).

A channel kind is one file, `actors.notify.channels.<kind>`, holding its config model
(`<Kind>ChannelConfig`, a `ChannelBase`) and its channel (`<Kind>Channel(name, config, context)`,
a `KindChannel` that keeps the model as `self.config`), plus one line in the registry
`actors.notify.channels.kinds.KINDS`. The registry gives the [channels.NAME] union
(`ChannelConfig`), the factory below, and the docs checks; see docs/extending-channels.md.

`build_channel()` turns a channel's configuration into a channel, lending it a `ChannelContext`
(clock, logger, transport, TLS context, external URL, database, tracer provider);
`build_channels()` does it for the whole [channels] table and leaves out (with a warning) the
channels whose required secret is empty, so the default configuration runs without any secret.

Lazy httpx: every kind module is imported with the configuration (its config model is needed to
parse it), so no kind module imports httpx at module level. The HTTP kinds (every kind but
console and email) subclass `HttpChannel`, which imports httpx when the first HTTP channel is
built, and name httpx only under TYPE_CHECKING. A process whose channels are only console and
email never imports httpx (tests/actors/notify/test_lazy_imports.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from actors.notify.channels.alertmanager import AlertmanagerChannel
from actors.notify.channels.base import Channel, ChannelContext, KindChannel
from actors.notify.channels.console import ConsoleChannel
from actors.notify.channels.email import EmailChannel
from actors.notify.channels.http import HttpChannel
from actors.notify.channels.kinds import KINDS, ChannelConfig, ChannelKind, kind_of
from actors.notify.channels.pagerduty import PagerDutyChannel
from actors.notify.channels.slack import SlackChannel
from actors.notify.channels.webhook import WebhookChannel
from actors.notify.config import ChannelBase
from actors.notify.errors import ChannelSetupError

__all__ = [
    "KINDS",
    "AlertmanagerChannel",
    "Channel",
    "ChannelConfig",
    "ChannelContext",
    "ChannelKind",
    "ConsoleChannel",
    "EmailChannel",
    "HttpChannel",
    "KindChannel",
    "PagerDutyChannel",
    "SlackChannel",
    "WebhookChannel",
    "build_channel",
    "build_channels",
]


def build_channel(name: str, config: ChannelBase, context: ChannelContext) -> Channel:
    """Build the channel `name` from its configuration with the kind registered for it.

    Raises:
        ChannelSetupError: the configuration is disabled (a required secret is empty), or its
            model is not one of a registered kind.
    """
    reason = config.disabled_reason()
    if reason is not None:
        raise ChannelSetupError(name, f"disabled: {reason}")
    try:
        kind = kind_of(config)
    except LookupError as exc:
        raise ChannelSetupError(name, str(exc)) from None
    return kind.channel(name, config, context)


def build_channels(
    configs: Mapping[str, ChannelConfig], context: ChannelContext
) -> dict[str, Channel]:
    """Build every enabled channel; a disabled one is logged (WARNING on the context's logger,
    no secret) and skipped.

    Raises:
        ChannelSetupError: a configuration's model is not one of a registered kind.
    """
    channels: dict[str, Channel] = {}
    for name, config in configs.items():
        reason = config.disabled_reason()
        if reason is not None:
            context.logger.warning("channel %r (%s) is disabled: %s", name, config.kind, reason)
            continue
        channels[name] = build_channel(name, config, context)
    return channels
