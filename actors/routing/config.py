"""Configuration of alert routing ([routing], [[routing.routes]]), inhibition ([[inhibit]]),
silences ([[silences]]) and recurring maintenance windows ([[maintenance]]).

Matchers are written as strings in Alertmanager's grammar (see `actors.routing.matchers`):
`name=value`, `name!=value`, `name=~regex`, `name!~regex`, the value optionally double-quoted
with escapes; in `matchers` of routes, inhibit rules and maintenance windows a string may hold a
list, `{a="b", c=~"d"}`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from actors.configtypes import ConfigModel, Duration
from actors.routing.cron import parse_cron
from actors.routing.exceptions import InvalidCron, InvalidMatcher
from actors.routing.matchers import parse_matcher, parse_matcher_list, split_matcher

__all__ = [
    "InhibitConfig",
    "MaintenanceConfig",
    "MatcherText",
    "SingleMatcherText",
    "RouteConfig",
    "RoutingConfig",
    "SilenceConfig",
    "split_matcher",
]

_CRON_FIELD = re.compile(r"^[\d*/,A-Za-z-]+$")


def _validator(parse: Callable[[str], object]) -> AfterValidator:
    # The same parse and compile the routing actor does at run time (one path, see matchers).
    def check(text: str) -> str:
        try:
            parse(text)
        except InvalidMatcher as exc:
            raise ValueError(str(exc)) from exc
        return text

    return AfterValidator(check)


MatcherText = Annotated[str, _validator(parse_matcher_list)]
"""A matcher list string, as in Alertmanager's `matchers`: `a="b"` or `{a="b", c=~"d"}`."""

SingleMatcherText = Annotated[str, _validator(parse_matcher)]
"""Exactly one matcher (a silence's matchers are one per string, as in Alertmanager's API)."""


def _check_cron(text: str) -> str:
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(
            f"invalid cron expression {text!r}; expected 5 fields: minute hour day month weekday"
        )
    try:
        parse_cron(text)  # what the routing actor parses at start: a bad value, range or step
    except InvalidCron as exc:
        raise ValueError(str(exc)) from None
    return text


def _check_timezone(text: str) -> str:
    if text in ("UTC", ""):
        return text
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {text!r}; use an IANA name such as 'Europe/Lisbon'"
        ) from None
    return text


class RouteConfig(ConfigModel):
    """[[routing.routes]]: alerts matching every matcher also (or only) go to `channels`."""

    matchers: tuple[MatcherText, ...] = ()
    channels: tuple[str, ...]
    continue_: bool = Field(default=False, alias="continue")
    group_by: tuple[str, ...] | None = None


class RoutingConfig(ConfigModel):
    """[routing]: Alertmanager-style grouping and timing; the rule's `channels` is the default."""

    group_by: tuple[str, ...] = ("alertname",)
    group_wait: Duration = 0.0
    group_interval: Duration = 60.0
    repeat_interval: Duration = 14400.0
    escalate_after: Duration | None = None
    """A critical alert still firing this long also goes to `escalate_to`."""
    escalate_to: tuple[str, ...] = ()
    routes: tuple[RouteConfig, ...] = ()

    @model_validator(mode="after")
    def _escalation(self) -> RoutingConfig:
        if (self.escalate_after is None) != (not self.escalate_to):
            raise ValueError("escalate_after and escalate_to must be set together")
        return self


class InhibitConfig(ConfigModel):
    """[[inhibit]]: a firing `source` alert mutes `target` alerts with equal `equal` labels."""

    source: tuple[MatcherText, ...]
    target: tuple[MatcherText, ...]
    equal: tuple[str, ...] = ()


class SilenceConfig(ConfigModel):
    """[[silences]]: alerts matching every matcher are muted between `starts` and `ends`."""

    matchers: tuple[SingleMatcherText, ...] = Field(min_length=1)
    starts: AwareDatetime | None = None
    ends: AwareDatetime
    comment: str = ""
    created_by: str = "config"

    @model_validator(mode="after")
    def _order(self) -> SilenceConfig:
        if self.starts is not None and self.starts >= self.ends:
            raise ValueError("starts must be before ends")
        return self


class MaintenanceConfig(ConfigModel):
    """[[maintenance]]: a recurring window (cron start + duration) in which alerts are held."""

    matchers: tuple[MatcherText, ...] = ()
    cron: Annotated[str, AfterValidator(_check_cron)]
    duration: Duration
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    comment: str = ""
