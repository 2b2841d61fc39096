"""Recurring maintenance windows: alerts matching the matchers are held while now lies within
`duration` after a start minute of the cron expression (UTC). Checks keep running.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from actors.routing.cron import Cron, in_window, parse_cron
from actors.routing.exceptions import InvalidCron
from actors.routing.matchers import Matcher, matches_all, parse_matcher_lists

__all__ = ["MaintenanceWindow", "in_maintenance", "parse_window"]


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """One [[maintenance]] entry, parsed."""

    matchers: tuple[Matcher, ...]
    cron: Cron
    duration: float
    comment: str = ""
    tz: dt.tzinfo = field(default=dt.UTC)

    def holds(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this window holds an alert with `labels` at `now`."""
        return matches_all(self.matchers, labels) and in_window(
            self.cron, self.duration, now, self.tz
        )


def parse_window(
    matchers: Iterable[str],
    cron: str,
    duration: float,
    comment: str = "",
    timezone: str = "UTC",
) -> MaintenanceWindow:
    """Build a window; `cron` is read in `timezone` (an IANA name such as "Europe/Lisbon").

    Raises:
        InvalidMatcher: a matcher is invalid.
        InvalidCron: the cron expression or the time zone is invalid.
    """
    try:
        tz: dt.tzinfo = dt.UTC if timezone in ("UTC", "") else zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidCron(cron, f"unknown time zone {timezone!r}") from exc
    return MaintenanceWindow(parse_matcher_lists(matchers), parse_cron(cron), duration, comment, tz)


def in_maintenance(
    windows: Iterable[MaintenanceWindow], labels: Mapping[str, str], now: float
) -> bool:
    """Whether any window holds an alert with `labels` at `now`."""
    return any(w.holds(labels, now) for w in windows)
