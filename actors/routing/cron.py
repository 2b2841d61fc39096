"""A small, pure 5-field cron matcher (minute hour day-of-month month day-of-week).

Times are matched in a given time zone (UTC by default); a window's start is the wall-clock
minute in that zone, so "0 2 * * SUN" in Europe/Lisbon follows daylight saving time.

Fields accept `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, and names for
months (JAN..DEC) and weekdays (SUN..SAT; 0 and 7 are Sunday). As in Vixie cron, when both
day-of-month and day-of-week are restricted, a day matching either one matches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from actors.routing.exceptions import InvalidCron

__all__ = ["Cron", "in_window", "parse_cron"]

_MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_NAMES: list[dict[str, int]] = [{}, {}, {}, _MONTHS, _DAYS]


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression: the allowed values of each field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, when: dt.datetime) -> bool:
        """Whether the minute containing `when` (UTC) is a start minute of this expression."""
        if (
            when.minute not in self.minutes
            or when.hour not in self.hours
            or when.month not in self.months
        ):
            return False
        dom = when.day in self.days
        dow = (when.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow


def _value(token: str, index: int, text: str) -> int:
    names = _NAMES[index]
    if token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise InvalidCron(text, f"bad value {token!r}")
    return int(token)


def _field(spec: str, index: int, text: str) -> frozenset[int]:
    low, high = _BOUNDS[index]
    out: set[int] = set()
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise InvalidCron(text, f"bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, index, text), _value(b, index, text)
        else:
            start = _value(part, index, text)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise InvalidCron(text, f"{part!r} is out of range {low}-{high}")
        out.update(range(start, end + 1, step))
    if index == 4 and 7 in out:
        out.discard(7)
        out.add(0)
    return frozenset(out)


def parse_cron(text: str) -> Cron:
    """Parse a 5-field cron expression.

    Raises:
        InvalidCron: not 5 fields, a bad value, range or step.
    """
    fields = text.split()
    if len(fields) != 5:
        raise InvalidCron(text, "expected 5 fields: minute hour day month weekday")
    sets = [_field(f, i, text) for i, f in enumerate(fields)]
    minutes, hours, days, months, weekdays = sets
    return Cron(
        minutes,
        hours,
        days,
        months,
        weekdays,
        days_restricted=fields[2] != "*",
        weekdays_restricted=fields[4] != "*",
    )


def in_window(cron: Cron, duration: float, now: float, tz: dt.tzinfo = dt.UTC) -> bool:
    """Whether `now` (Unix seconds) lies in a window `[start, start + duration)` of `cron`,
    start minutes read in time zone `tz`.

    Checks each start minute that could still cover `now` (at most `duration / 60 + 1` minutes).
    """
    if duration <= 0:
        return False
    current = dt.datetime.fromtimestamp(now, tz=tz).replace(second=0, microsecond=0)
    minutes = int(duration // 60) + 1
    for back in range(minutes):
        start = (current - dt.timedelta(minutes=back)).astimezone(tz)
        if start.timestamp() + duration <= now:
            break
        if cron.matches(start):
            return True
    return False
