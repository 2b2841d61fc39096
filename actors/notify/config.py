"""What every channel kind's configuration shares: `ChannelBase` and the URL/secret validators.

Each kind's own model (`SlackChannelConfig`, ...) lives in its module, `actors.notify.channels.
<kind>`, next to the channel that keeps it; the union users write ([channels.NAME], discriminated
by `kind`) is `actors.notify.channels.kinds.ChannelConfig`, derived from the registry of kinds.
A channel whose required secret is empty is not an error: `disabled_reason()` says why it is
disabled, so the default configuration runs on a laptop without any secret.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, SecretStr

from actors.configtypes import ConfigModel, Duration, Secret

__all__ = ["ChannelBase", "OptionalUrl", "SecretUrl", "Url", "is_empty"]

_URL = re.compile(r"^https?://[^/\s]+")


def is_empty(secret: SecretStr | None) -> bool:
    """True when `secret` is unset or only blanks (the channel needing it is disabled)."""
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
