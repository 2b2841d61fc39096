"""The registry of channel kinds: what the config union, the factory and the docs derive from it."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Literal

import pydantic
import pytest

from actors.models import Notification
from actors.notify.channels import (
    KINDS,
    Channel,
    ChannelConfig,
    ChannelKind,
    KindChannel,
    build_channel,
)
from actors.notify.channels.console import ConsoleChannel, ConsoleChannelConfig
from actors.notify.channels.kinds import channel_union, kind_of
from actors.notify.config import ChannelBase
from actors.notify.errors import ChannelSetupError
from actors.notify.outcome import Delivered, Outcome
from supervisor.config import ConfigError, parse_config, summarize
from tests.actors.notify.factories import channel_context, make_notification
from tests.kinds_docs import assert_kinds_documented

ENABLED: dict[str, dict[str, Any]] = {
    "console": {},
    "email": {"smtp_host": "127.0.0.1", "to": ["ops@example.test"]},
    "slack": {"webhook_url": "https://hooks.slack.test/services/T/B/X"},
    "pagerduty": {"routing_key": "R" * 32},
    "webhook": {"url": "http://127.0.0.1:9/hook"},
    "alertmanager": {"url": "http://127.0.0.1:9"},
    "opsgenie": {"api_key": "k" * 36},
    "teams": {"webhook_url": "https://example.webhook.office.com/webhookb2/T/IncomingWebhook/X"},
    "discord": {"webhook_url": "https://discord.test/api/webhooks/1/T"},
    "telegram": {"bot_token": "123456:ABC-DEF1234ghIkl", "chat_id": "-1001234"},
    "ntfy": {"topic": "ops-alerts"},
}
"""The keys that enable a channel of each kind (a test fails when a kind is missing here)."""


def test_every_registered_kind_and_key_is_documented() -> None:
    assert_kinds_documented("`[channels.NAME]`", KINDS)


def test_each_kind_has_an_enabled_example() -> None:
    assert list(ENABLED) == [kind.name for kind in KINDS]


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
async def test_each_kind_parses_and_builds_a_channel_that_keeps_its_config(
    kind: ChannelKind[Any],
) -> None:
    table = pydantic.TypeAdapter(ChannelConfig).validate_python(
        {"kind": kind.name, **ENABLED[kind.name]}
    )
    assert type(table) is kind.config
    assert kind_of(table) is kind
    channel = build_channel("c", table, channel_context())
    assert isinstance(channel, KindChannel)
    assert channel.kind == kind.name
    assert channel.config is table
    await channel.aclose()


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
def test_check_config_shows_each_kind_with_its_secrets_hidden(kind: ChannelKind[Any]) -> None:
    keys = "".join(f"{key} = {json.dumps(value)}\n" for key, value in ENABLED[kind.name].items())
    source = f'[channels.c]\nkind = "{kind.name}"\n{keys}'
    summary = summarize(parse_config(source, file="c.toml", env={}), "c.toml")
    [line] = [line for line in summary.splitlines() if line.startswith("  c: ")]
    assert line.startswith(f"  c: {kind.name}")
    assert line.endswith(" enabled")
    for value in ENABLED[kind.name].values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in summary


def test_an_unknown_kind_lists_the_registered_ones() -> None:
    source = textwrap.dedent(
        """
        [channels.ops]
        kind = "sms"
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    expected = ", ".join(kind.name for kind in KINDS)
    assert f"unknown kind 'sms' (expected one of: {expected})" in str(caught.value)


# -- a kind added in one file plus one registry line -------------------------------------------


class PagerChannelConfig(ChannelBase):
    """kind = "pager": a test kind."""

    kind: Literal["pager"]
    number: str = ""

    def disabled_reason(self) -> str | None:
        return "number is empty" if not self.number else None


class PagerChannel(KindChannel[PagerChannelConfig]):
    kind = "pager"

    async def send(self, notification: Notification) -> Outcome:
        return Delivered(f"paged {self.config.number}")


PAGER = ChannelKind("pager", PagerChannelConfig, PagerChannel, "a test pager")


async def test_a_new_kind_is_one_registry_line() -> None:
    registry = (*KINDS, PAGER)
    union = pydantic.TypeAdapter(channel_union(registry))
    table = union.validate_python({"kind": "pager", "number": "555"})
    kind = kind_of(table, registry)
    assert kind is PAGER
    channel = kind.channel("p", table, channel_context())
    assert await channel.send(make_notification()) == Delivered("paged 555")
    with pytest.raises(pydantic.ValidationError, match=r"'console', 'email'.*'pager'"):
        union.validate_python({"kind": "fax"})
    with pytest.raises(ChannelSetupError, match="unknown channel kind PagerChannelConfig"):
        build_channel("p", table, channel_context())  # not in the real registry


def test_a_kind_record_must_agree_with_its_model_and_channel() -> None:
    with pytest.raises(ValueError, match=r"PagerChannelConfig\.kind is Literal\['pager'\]"):
        ChannelKind("beeper", PagerChannelConfig, PagerChannel, "x")
    with pytest.raises(ValueError, match=r"ConsoleChannel\.kind is 'console'"):
        ChannelKind("pager", PagerChannelConfig, ConsoleChannel, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct"):
        channel_union((*KINDS, KINDS[0]))


def test_a_single_kind_registry_still_checks_the_kind() -> None:
    only = pydantic.TypeAdapter(channel_union(KINDS[:1]))
    assert isinstance(only.validate_python({"kind": "console"}), ConsoleChannelConfig)
    with pytest.raises(pydantic.ValidationError):
        only.validate_python({"kind": "slack"})


def test_a_channel_of_the_registry_is_a_channel() -> None:
    for kind in KINDS:
        assert isinstance(kind.channel, type)
        assert issubclass(kind.channel, Channel)
