"""The registry of channel kinds: `KINDS`, one line per kind; everything else is derived from it.

A kind is its module `actors.notify.channels.<kind>` (config model + channel) and one
`ChannelKind` line in `KINDS`. From `KINDS` come the discriminated union users write
([channels.NAME], `ChannelConfig`), the factory (`kind_of`, used by `build_channel`), and the
checks that docs/configuration.md documents every kind and key (tests/actors/notify/
test_kinds.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from pydantic import BaseModel

from actors.kinds import Kind, kind_union
from actors.kinds import kind_of as find_kind
from actors.notify.channels.alertmanager import AlertmanagerChannel, AlertmanagerChannelConfig
from actors.notify.channels.base import Channel, ChannelContext, ConfigT
from actors.notify.channels.console import ConsoleChannel, ConsoleChannelConfig
from actors.notify.channels.discord import DiscordChannel, DiscordChannelConfig
from actors.notify.channels.email import EmailChannel, EmailChannelConfig
from actors.notify.channels.ntfy import NtfyChannel, NtfyChannelConfig
from actors.notify.channels.opsgenie import OpsgenieChannel, OpsgenieChannelConfig
from actors.notify.channels.pagerduty import PagerDutyChannel, PagerDutyChannelConfig
from actors.notify.channels.slack import SlackChannel, SlackChannelConfig
from actors.notify.channels.teams import TeamsChannel, TeamsChannelConfig
from actors.notify.channels.telegram import TelegramChannel, TelegramChannelConfig
from actors.notify.channels.webhook import WebhookChannel, WebhookChannelConfig
from actors.notify.config import ChannelBase

__all__ = ["KINDS", "ChannelConfig", "ChannelKind", "channel_union", "kind_of"]


@dataclass(frozen=True)
class ChannelKind(Kind[ConfigT]):
    """One channel kind: its `kind` value, config model, channel and what it sends (for docs).

    `channel(name, config, context)` builds the channel; a `KindChannel` subclass is one.
    `keys()` lists the kind's keys beyond `ChannelBase`'s.

    Raises:
        ValueError: (at construction) `name` is not the config model's `kind` literal, or not the
            channel class's `kind`.
    """

    family: ClassVar[str] = "channel"
    common: ClassVar[type[BaseModel]] = ChannelBase

    channel: Callable[[str, ConfigT, ChannelContext], Channel]
    description: str

    def __post_init__(self) -> None:
        super().__post_init__()
        declared = getattr(self.channel, "kind", self.name)
        if isinstance(self.channel, type) and declared != self.name:
            raise ValueError(
                f"channel kind {self.name!r}: {self.channel.__name__}.kind is {declared!r}"
            )


KINDS: tuple[ChannelKind[Any], ...] = (
    ChannelKind("console", ConsoleChannelConfig, ConsoleChannel, "one log line per notification"),
    ChannelKind("email", EmailChannelConfig, EmailChannel, "SMTP mail, plain text and HTML"),
    ChannelKind("slack", SlackChannelConfig, SlackChannel, "a Slack incoming webhook message"),
    ChannelKind("pagerduty", PagerDutyChannelConfig, PagerDutyChannel, "PagerDuty Events API v2"),
    ChannelKind("webhook", WebhookChannelConfig, WebhookChannel, "Alertmanager's webhook JSON"),
    ChannelKind("alertmanager", AlertmanagerChannelConfig, AlertmanagerChannel, "Alertmanager API"),
    ChannelKind("opsgenie", OpsgenieChannelConfig, OpsgenieChannel, "Opsgenie Alert API v2"),
    ChannelKind("teams", TeamsChannelConfig, TeamsChannel, "a Microsoft Teams Adaptive Card"),
    ChannelKind("discord", DiscordChannelConfig, DiscordChannel, "a Discord webhook message"),
    ChannelKind("telegram", TelegramChannelConfig, TelegramChannel, "a Telegram bot message"),
    ChannelKind("ntfy", NtfyChannelConfig, NtfyChannel, "an ntfy push message"),
)
"""Every channel kind, in the order error messages and docs list them. Adding a kind: one line."""


def channel_union(kinds: Sequence[ChannelKind[Any]]) -> Any:
    """The pydantic type of a [channels.NAME] table: `kinds`' config models, chosen by `kind`.

    An unknown `kind` is reported with the registered kinds (the union's tags, in order).

    Raises:
        ValueError: `kinds` is empty or names a kind twice.
    """
    return kind_union(kinds, "channel")


if TYPE_CHECKING:
    ChannelConfig: TypeAlias = ChannelBase
else:
    ChannelConfig = channel_union(KINDS)
"""Any channel's configuration, chosen by its `kind` key (statically: a `ChannelBase`)."""


def kind_of(config: ChannelBase, kinds: Sequence[ChannelKind[Any]] = KINDS) -> ChannelKind[Any]:
    """The registered kind whose config model `config` is.

    Raises:
        LookupError: no kind of `kinds` has `type(config)` as its model.
    """
    return find_kind(config, kinds, "channel")
