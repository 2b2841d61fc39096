"""Building blocks shared by every configuration model (pydantic v2).

Each check kind, rule and channel kind declares its own model next to its code, built from these:
- `ConfigModel`: frozen, unknown keys rejected (`extra="forbid"`).
- `Duration`: "250ms", "10s", "5m", "1h30m", "1d" -> float seconds. Bare numbers are rejected so a
  forgotten unit is never taken for seconds.
- `Secret`: a string whose value is never printed (`pydantic.SecretStr`: repr and str are
  "**********"); read it with `.get_secret_value()` at the one place it is used.
- `check_http_url`: the one validation of an http(s) URL (checks, channels), its error message
  showing the URL only in the form the caller allows.

Environment interpolation (`${VAR}`, `${VAR:-default}`) is done on the raw TOML tree before these
models see it, by `supervisor.config`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

__all__ = [
    "ConfigModel",
    "Duration",
    "Secret",
    "check_http_url",
    "format_duration",
    "parse_duration",
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_HTTP_URL = re.compile(r"^https?://[^/\s]+")


def parse_duration(text: str) -> float:
    """Parse a duration string such as "250ms", "10s", "1h30m" into seconds.

    Raises:
        ValueError: the text is empty, has no unit, an unknown unit or trailing garbage.
    """
    source = text.strip()
    if not source:
        raise ValueError("empty duration; use a number with a unit, e.g. '10s'")
    pos = 0
    total = 0.0
    for match in _PART.finditer(source):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(source):
        raise ValueError(
            f"invalid duration {text!r}; use a number with a unit (ms, s, m, h, d, w), "
            "e.g. '250ms', '10s', '1h30m'"
        )
    return total


def format_duration(seconds: float) -> str:
    """Render seconds the way a user would write them ("1h30m", "250ms", "0s")."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out = []
    remaining = seconds
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if remaining >= size:
            count = int(remaining // size)
            out.append(f"{count}{unit}")
            remaining -= count * size
    if remaining:
        out.append(f"{remaining:g}s")
    return "".join(out)


def _coerce_duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a duration string such as '10s'")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f"a duration needs a unit: write '{value}s' or '{value}ms'")
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("expected a duration string such as '10s'")


def check_http_url(url: str, *, shown: str | None) -> None:
    """Accept an http:// or https:// URL with a host and, if given, a port in 1-65535.

    `shown` is the URL as an error message may print it (e.g. its password masked), or None for
    a URL that is itself a secret: the message then never echoes it.

    Raises:
        ValueError: not an http(s) URL with a host, or a port outside 1-65535.
    """
    if not _HTTP_URL.match(url):
        got = f", got {shown!r}" if shown is not None else ""
        raise ValueError(f"expected an http:// or https:// URL{got}")
    try:
        valid_port = urlsplit(url).port != 0
    except ValueError:
        valid_port = False
    if not valid_port:
        got = f" in {shown!r}" if shown is not None else ""
        raise ValueError(f"invalid port{got}; expected 1-65535")


Duration = Annotated[float, BeforeValidator(_coerce_duration)]
"""Seconds, written in TOML as a string with units ("10s")."""

Secret = SecretStr
"""A string that is never printed, logged or served."""


class ConfigModel(BaseModel):
    """Base of every configuration model: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
