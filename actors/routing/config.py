"""Configuration of alert routing ([routing], [[routing.routes]]), inhibition ([[inhibit]]),
silences ([[silences]]) and recurring maintenance windows ([[maintenance]]).

Matchers are written as strings in Alertmanager's grammar (see `actors.routing.matchers`):
`name=value`, `name!=value`, `name=~regex`, `name!~regex`, the value optionally double-quoted
with escapes; in `matchers` of routes, inhibit rules and maintenance windows a string may hold a
list, `{a="b", c=~"d"}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from actors.configtypes import ConfigModel, Duration
from actors.routing.cron import parse_cron
from actors.routing.exceptions import InvalidCron, InvalidMatcher
from actors.routing.matchers import parse_matcher, parse_matcher_list, split_matcher
from actors.routing.timeintervals import (
    IntervalSpec,
    TimeInterval,
    parse_day_of_month_range,
    parse_location,
    parse_month_range,
    parse_time_of_day,
    parse_weekday_range,
    parse_year_range,
)

__all__ = [
    "InhibitConfig",
    "IntervalSpecConfig",
    "MaintenanceConfig",
    "MatcherText",
    "SingleMatcherText",
    "RouteConfig",
    "RoutingConfig",
    "SilenceConfig",
    "TimeIntervalConfig",
    "TimeRangeConfig",
    "split_matcher",
]

_CRON_FIELD = re.compile(r"^[\d*/,A-Za-z-]+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


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
    parse_location(text)
    return text


def _check_group_by(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if names is not None and "..." in names and len(names) > 1:
        raise ValueError("group_by '...' (every label) cannot be combined with other labels")
    for name in names or ():
        if name != "..." and not _LABEL_NAME.match(name):
            raise ValueError(f"group_by: {name!r} is not a label name")
    return names


GroupBy = Annotated[tuple[str, ...], AfterValidator(_check_group_by)]


class RouteConfig(ConfigModel):
    """[[routing.routes]]: a node of the routing tree (Alertmanager's `route`).

    Alerts matching every matcher go to `channels` (unset: the parent's), unless a child route
    in `routes` matches, which then decides. Unset `group_by`, `group_wait`, `group_interval`
    and `repeat_interval` are the parent's. `mute_time_intervals` and `active_time_intervals`
    name [[time_intervals]] and apply to this route only.
    """

    matchers: tuple[MatcherText, ...] = ()
    channels: tuple[str, ...] | None = None
    continue_: bool = Field(default=False, alias="continue")
    group_by: GroupBy | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[RouteConfig, ...] = ()


class TimeRangeConfig(ConfigModel):
    """`{start_time = "HH:MM", end_time = "HH:MM"}`: start inclusive, end exclusive."""

    start_time: str
    end_time: str

    @model_validator(mode="after")
    def _order(self) -> TimeRangeConfig:
        if parse_time_of_day(self.start_time) >= parse_time_of_day(self.end_time):
            raise ValueError("start_time must be before end_time")
        return self


def _each(parse: Callable[[str], object]) -> AfterValidator:
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            parse(value)
        return values

    return AfterValidator(check)


class IntervalSpecConfig(ConfigModel):
    """One spec of a [[time_intervals]] entry (Alertmanager's `time_interval`)."""

    times: tuple[TimeRangeConfig, ...] | None = None
    weekdays: Annotated[tuple[str, ...], _each(parse_weekday_range)] | None = None
    days_of_month: Annotated[tuple[str, ...], _each(parse_day_of_month_range)] | None = None
    months: Annotated[tuple[str, ...], _each(parse_month_range)] | None = None
    years: Annotated[tuple[str, ...], _each(parse_year_range)] | None = None
    location: Annotated[str, AfterValidator(_check_timezone)] = "UTC"

    def build(self) -> IntervalSpec:
        """The parsed spec (never raises for a validated model)."""

        def ranges(
            values: tuple[str, ...] | None, parse: Callable[[str], tuple[int, int]]
        ) -> tuple[tuple[int, int], ...] | None:
            return None if values is None else tuple(parse(v) for v in values)

        return IntervalSpec(
            times=None
            if self.times is None
            else tuple(
                (parse_time_of_day(t.start_time), parse_time_of_day(t.end_time)) for t in self.times
            ),
            weekdays=ranges(self.weekdays, parse_weekday_range),
            days_of_month=ranges(self.days_of_month, parse_day_of_month_range),
            months=ranges(self.months, parse_month_range),
            years=ranges(self.years, parse_year_range),
            location=parse_location(self.location),
        )


class TimeIntervalConfig(ConfigModel):
    """[[time_intervals]]: a named set of times, in it when in any of `time_intervals`."""

    name: str = Field(min_length=1)
    time_intervals: tuple[IntervalSpecConfig, ...] = ()

    def build(self) -> TimeInterval:
        """The parsed interval (never raises for a validated model)."""
        return TimeInterval(self.name, tuple(spec.build() for spec in self.time_intervals))


class RoutingConfig(ConfigModel):
    """[routing]: Alertmanager-style grouping and timing; the rule's `channels` is the default."""

    group_by: GroupBy = ("alertname",)
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
