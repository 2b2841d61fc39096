"""The route tree: which channels an alert goes to, and how it is grouped there.

The rule's own `channels` are the default route. Extra routes ([[routing.routes]]) are tried in
order; a matching route adds its channels. A matching route without `continue` ends the walk and
replaces the default; when every matching route has `continue = true` (or none matches), the
alert also goes to the rule's channels. So `severity=critical -> pagerduty, continue = true`
pages PagerDuty in addition to the rule's channels, and without `continue` instead of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from actors.routing.matchers import Matcher, matches_all, parse_matcher_lists

__all__ = ["Destination", "Route", "parse_route", "route_alert"]


@dataclass(frozen=True, slots=True)
class Route:
    """One extra route, parsed."""

    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...]
    continue_: bool = False
    group_by: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one alert goes: a channel, the route that chose it ("default", "0", "1", ...,
    "escalation") and the labels its groups are keyed by."""

    channel: str
    route: str
    group_by: tuple[str, ...]


def parse_route(
    matchers: Sequence[str],
    channels: Sequence[str],
    continue_: bool = False,
    group_by: Sequence[str] | None = None,
) -> Route:
    """Build a route from matcher strings.

    Raises:
        InvalidMatcher: a matcher is invalid.
    """
    return Route(
        parse_matcher_lists(matchers),
        tuple(channels),
        continue_,
        None if group_by is None else tuple(group_by),
    )


def route_alert(
    labels: Mapping[str, str],
    default_channels: Sequence[str],
    routes: Sequence[Route],
    group_by: Sequence[str],
) -> list[Destination]:
    """The destinations of an alert, without duplicate channels (the first route wins)."""
    out: list[Destination] = []
    seen: set[str] = set()

    def add(channels: Sequence[str], route: str, by: Sequence[str]) -> None:
        for channel in channels:
            if channel not in seen:
                seen.add(channel)
                out.append(Destination(channel, route, tuple(by)))

    use_default = True
    for index, route in enumerate(routes):
        if not matches_all(route.matchers, labels):
            continue
        add(route.channels, str(index), route.group_by if route.group_by is not None else group_by)
        if not route.continue_:
            use_default = False
            break
    if use_default:
        add(default_channels, "default", group_by)
    return out
