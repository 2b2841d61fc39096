"""Time intervals, Alertmanager's (`[[time_intervals]]`): when a route is muted or active.

A named interval is a list of specs; a time is in the interval when it is in any spec. A spec
is a conjunction of optional parts, each a list of ranges (a time is in a part when it is in any
of its ranges; an absent part always holds):
- `times`: `{start_time = "HH:MM", end_time = "HH:MM"}`, start inclusive, end exclusive, minutes
  of the day (`24:00` is the end of the day);
- `weekdays`: `monday`, `monday:friday` (Sunday is the first day of the week, so `sunday:monday`
  is an error);
- `days_of_month`: `1`, `1:5`, `-1` (the last day), `-7:-1`; days past the end of a short month
  are clamped to it;
- `months`: `january:march` or `1:3`;
- `years`: `2026`, `2026:2027`;
- `location`: an IANA time zone the other parts are read in (default UTC).

Routes name intervals in `mute_time_intervals` (no notification while now is in any of them) and
`active_time_intervals` (notifications only while now is in one of them); see `routes`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "IntervalSpec",
    "TimeInterval",
    "any_contains",
    "parse_day_of_month_range",
    "parse_location",
    "parse_month_range",
    "parse_time_of_day",
    "parse_weekday_range",
    "parse_year_range",
]

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_TIME = re.compile(r"^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)\Z")

Range = tuple[int, int]


def _split(text: str, member: Callable[[str], int]) -> Range:
    parts = text.lower().split(":")
    if len(parts) > 2:
        raise ValueError(f"cannot parse range {text!r}; expected BEGIN or BEGIN:END")
    begin = member(parts[0])
    return begin, member(parts[-1])


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def parse_time_of_day(text: str) -> int:
    """`HH:MM` (00:00 to 24:00) as minutes of the day.

    Raises:
        ValueError: another format.
    """
    if not _TIME.match(text):
        raise ValueError(f"invalid time {text!r}; expected HH:MM between 00:00 and 24:00")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def parse_weekday_range(text: str) -> Range:
    """`monday` or `monday:friday` as (begin, end), Sunday = 0.

    Raises:
        ValueError: an unknown day, or the end before the start.
    """

    def member(name: str) -> int:
        if name not in WEEKDAYS:
            raise ValueError(f"{name!r} is not a weekday")
        return WEEKDAYS.index(name)

    begin, end = _split(text, member)
    if begin > end:
        raise ValueError(f"weekday range {text!r} ends before it starts (weeks start on sunday)")
    return begin, end


def parse_day_of_month_range(text: str) -> Range:
    """`1`, `1:5`, `-1`, `-7:-1` as (begin, end); negative days count from the month's end.

    Raises:
        ValueError: 0 or beyond +-31, a negative start with a positive end, or an end that is
            always before the start.
    """
    begin, end = _split(text, _integer)
    for day in (begin, end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{day} is not a valid day of the month")
    if begin < 0 < end:
        raise ValueError(f"day range {text!r}: the end must be negative when the start is")
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise ValueError(f"day range {text!r} always ends before it starts")
    return begin, end


def parse_month_range(text: str) -> Range:
    """`january:march`, `1:3` or one month as (begin, end), January = 1.

    Raises:
        ValueError: an unknown month, or the end before the start.
    """

    def member(name: str) -> int:
        if name in MONTHS:
            return MONTHS.index(name) + 1
        number = _integer(name)
        if not 1 <= number <= 12:
            raise ValueError(f"{name!r} is not a month")
        return number

    begin, end = _split(text, member)
    if begin > end:
        raise ValueError(f"month range {text!r} ends before it starts")
    return begin, end


def parse_year_range(text: str) -> Range:
    """`2026` or `2026:2027` as (begin, end).

    Raises:
        ValueError: not numbers, or the end before the start.
    """
    begin, end = _split(text, _integer)
    if begin > end:
        raise ValueError(f"year range {text!r} ends before it starts")
    return begin, end


def parse_location(text: str) -> dt.tzinfo:
    """An IANA time zone name (`UTC` and an empty string are UTC).

    Raises:
        ValueError: an unknown zone.
    """
    if text in ("", "UTC"):
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {text!r}; use an IANA name such as 'Europe/Lisbon'"
        ) from None


def _in_any(value: int, ranges: Sequence[Range] | None) -> bool:
    return ranges is None or any(begin <= value <= end for begin, end in ranges)


@dataclass(frozen=True, slots=True)
class IntervalSpec:
    """One spec of an interval, parsed; None for a part that is absent (always holds)."""

    times: tuple[Range, ...] | None = None
    """(start, end) minutes of the day, end exclusive."""
    weekdays: tuple[Range, ...] | None = None
    days_of_month: tuple[Range, ...] | None = None
    months: tuple[Range, ...] | None = None
    years: tuple[Range, ...] | None = None
    location: dt.tzinfo = dt.UTC

    def contains(self, when: dt.datetime) -> bool:
        """Whether the aware time `when` is in this spec."""
        t = when.astimezone(self.location)
        minute = t.hour * 60 + t.minute
        if self.times is not None and not any(s <= minute < e for s, e in self.times):
            return False
        if self.days_of_month is not None and not self._day_in(t):
            return False
        weekday = (t.weekday() + 1) % 7  # Python's Monday=0 -> Sunday=0
        return (
            _in_any(t.month, self.months)
            and _in_any(weekday, self.weekdays)
            and _in_any(t.year, self.years)
        )

    def _day_in(self, t: dt.datetime) -> bool:
        assert self.days_of_month is not None
        length = calendar.monthrange(t.year, t.month)[1]
        for first, last in self.days_of_month:
            begin = length + first + 1 if first < 0 else first
            end = length + last + 1 if last < 0 else last
            if begin > length:
                continue
            begin = max(min(begin, length), -length)
            end = max(min(end, length), -length)
            if begin <= t.day <= end:
                return True
        return False


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """A named `[[time_intervals]]` entry: in it when in any of its specs."""

    name: str
    specs: tuple[IntervalSpec, ...]

    def contains(self, now: float) -> bool:
        """Whether Unix time `now` is in this interval."""
        when = dt.datetime.fromtimestamp(now, tz=dt.UTC)
        return any(spec.contains(when) for spec in self.specs)


def any_contains(intervals: Iterable[TimeInterval], now: float) -> bool:
    """Whether `now` is in any of `intervals`."""
    return any(interval.contains(now) for interval in intervals)
