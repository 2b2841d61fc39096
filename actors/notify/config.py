"""What every channel kind's configuration shares: `ChannelBase` and the URL/secret validators.

Each kind's own model (`SlackChannelConfig`, ...) lives in its module, `actors.notify.channels.
<kind>`, next to the channel that keeps it; the union users write ([channels.NAME], discriminated
by `kind`) is `actors.notify.channels.kinds.ChannelConfig`, derived from the registry of kinds.
A channel whose required secret is empty is not an error: `disabled_reason()` says why it is
disabled, so the default configuration runs on a laptop without any secret.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, SecretStr

from actors.configtypes import ConfigModel, Duration, Secret, check_http_url

__all__ = ["ChannelBase", "OptionalUrl", "SecretUrl", "Url", "is_empty"]


def is_empty(secret: SecretStr | None) -> bool:
    """True when `secret` is unset or only blanks (the channel needing it is disabled)."""
    return secret is None or not secret.get_secret_value().strip()


def _url(value: str) -> str:
    check_http_url(value, shown=value)
    return value


def _optional_url(value: str) -> str:
    if value:
        check_http_url(value, shown=value)
    return value


def _optional_secret_url(value: SecretStr) -> SecretStr:
    if value.get_secret_value():
        check_http_url(value.get_secret_value(), shown=None)  # a secret URL is never echoed
    return value


Url = Annotated[str, AfterValidator(_url)]
"""An http(s) URL."""
OptionalUrl = Annotated[str, AfterValidator(_optional_url)]
"""An http(s) URL, or empty (the channel is disabled)."""
SecretUrl = Annotated[Secret, AfterValidator(_optional_secret_url)]
"""An http(s) URL that is a secret (webhooks: the URL is the credential), or empty."""


class ChannelBase(ConfigModel):
    """Keys every channel kind has; each kind's model narrows `kind` to `Literal["<kind>"]`."""

    kind: str
    send_resolved: bool = True
    timeout: Duration = 10.0

    def disabled_reason(self) -> str | None:
        """Why this channel cannot send (a required secret is empty), or None if it can."""
        return None
