"""Recurring maintenance windows: alerts matching the matchers are held while now lies within
`duration` after a start minute of the cron expression (UTC). Checks keep running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from actors.routing.cron import Cron, in_window, parse_cron
from actors.routing.matchers import Matcher, matches_all, parse_matchers

__all__ = ["MaintenanceWindow", "in_maintenance", "parse_window"]


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """One [[maintenance]] entry, parsed."""

    matchers: tuple[Matcher, ...]
    cron: Cron
    duration: float
    comment: str = ""

    def holds(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this window holds an alert with `labels` at `now`."""
        return matches_all(self.matchers, labels) and in_window(self.cron, self.duration, now)


def parse_window(
    matchers: Iterable[str], cron: str, duration: float, comment: str = ""
) -> MaintenanceWindow:
    """Build a window.

    Raises:
        InvalidMatcher: a matcher is invalid.
        InvalidCron: the cron expression is invalid.
    """
    return MaintenanceWindow(parse_matchers(matchers), parse_cron(cron), duration, comment)


def in_maintenance(
    windows: Iterable[MaintenanceWindow], labels: Mapping[str, str], now: float
) -> bool:
    """Whether any window holds an alert with `labels` at `now`."""
    return any(w.holds(labels, now) for w in windows)
