"""The routing tree: which channels an alert goes to, and how it is grouped and timed there.

Alertmanager's tree, exactly, below the root: a route matches an alert when all its matchers do;
its child routes (`routes`) are tried in order, and the first matching child ends the walk unless
it has `continue`; a route whose children matched none is itself the match, and one whose
children matched is not (whether those children had `continue` or not). Unset `channels`,
`group_by`, `group_wait`, `group_interval` and `repeat_interval` are the parent's;
`mute_time_intervals` and `active_time_intervals` are the route's own.

The root is the rule: its channels are the rule's `channels` and its grouping and timers are
[routing]'s. One deliberate difference from Alertmanager (docs/decisions/0005): when top-level
routes matched but every one of them has `continue = true`, the alert also goes to the rule's
own channels (Alertmanager would use the root only when no route matched). So
`severity=critical -> pagerduty, continue = true` pages PagerDuty in addition to the rule's
channels, and without `continue` instead of them.

A channel reached by several matched routes gets the alert once, from the first of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from actors.routing.config import RouteConfig
from actors.routing.grouping import GroupTiming
from actors.routing.matchers import Matcher, matches_all, parse_matcher_lists

__all__ = [
    "DEFAULT_ROUTE",
    "Destination",
    "MatchedRoute",
    "Route",
    "match_routes",
    "parse_route",
    "route_alert",
    "route_from_config",
]

DEFAULT_ROUTE = "default"
"""The id of the root route (the rule's channels)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One node of the tree, parsed; None means "the parent's"."""

    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...] | None = None
    continue_: bool = False
    group_by: tuple[str, ...] | None = None
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class MatchedRoute:
    """A route an alert matched, with its inherited options resolved.

    `id` is the route's path in the tree: "default" for the root, "0", "1", ... for top-level
    routes, "0.1" for the second child of the first."""

    id: str
    channels: tuple[str, ...]
    group_by: tuple[str, ...]
    timing: GroupTiming
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one alert goes: a channel, the route that chose it ("default", "0", "0.1", ...,
    "escalation"), the labels its groups are keyed by, the route's timers and time intervals."""

    channel: str
    route: str
    group_by: tuple[str, ...]
    timing: GroupTiming = field(default_factory=GroupTiming)
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


def parse_route(
    matchers: Sequence[str],
    channels: Sequence[str] | None = None,
    continue_: bool = False,
    group_by: Sequence[str] | None = None,
    *,
    group_wait: float | None = None,
    group_interval: float | None = None,
    repeat_interval: float | None = None,
    mute_time_intervals: Sequence[str] = (),
    active_time_intervals: Sequence[str] = (),
    routes: Sequence[Route] = (),
) -> Route:
    """Build a route from matcher strings (each may be a matcher list).

    Raises:
        InvalidMatcher: a matcher is invalid.
    """
    return Route(
        parse_matcher_lists(matchers),
        None if channels is None else tuple(channels),
        continue_,
        None if group_by is None else tuple(group_by),
        group_wait,
        group_interval,
        repeat_interval,
        tuple(mute_time_intervals),
        tuple(active_time_intervals),
        tuple(routes),
    )


def route_from_config(config: RouteConfig) -> Route:
    """Build a route and its children from [[routing.routes]].

    Raises:
        InvalidMatcher: never for a validated model.
    """
    return parse_route(
        config.matchers,
        config.channels,
        config.continue_,
        config.group_by,
        group_wait=config.group_wait,
        group_interval=config.group_interval,
        repeat_interval=config.repeat_interval,
        mute_time_intervals=config.mute_time_intervals,
        active_time_intervals=config.active_time_intervals,
        routes=tuple(route_from_config(child) for child in config.routes),
    )


def _resolve(route: Route, route_id: str, parent: MatchedRoute) -> MatchedRoute:
    timing = GroupTiming(
        parent.timing.group_wait if route.group_wait is None else route.group_wait,
        parent.timing.group_interval if route.group_interval is None else route.group_interval,
        parent.timing.repeat_interval if route.repeat_interval is None else route.repeat_interval,
    )
    return MatchedRoute(
        route_id,
        parent.channels if route.channels is None else route.channels,
        parent.group_by if route.group_by is None else route.group_by,
        timing,
        route.mute_time_intervals,
        route.active_time_intervals,
    )


def _children(
    routes: Sequence[Route], prefix: str, parent: MatchedRoute, labels: Mapping[str, str]
) -> tuple[list[MatchedRoute], bool]:
    """The matches among `routes` (in order) and whether a match without `continue` ended it."""
    found: list[MatchedRoute] = []
    for index, route in enumerate(routes):
        route_id = f"{prefix}{index}"
        if not matches_all(route.matchers, labels):
            continue
        here = _resolve(route, route_id, parent)
        below, _ = _children(route.routes, f"{route_id}.", here, labels)
        found += below or [here]
        if not route.continue_:
            return found, True
    return found, False


def match_routes(
    labels: Mapping[str, str],
    default_channels: Sequence[str],
    routes: Sequence[Route],
    group_by: Sequence[str],
    timing: GroupTiming | None = None,
) -> list[MatchedRoute]:
    """The routes an alert matches, in order (Alertmanager's `Route.Match` from the root, with
    the root rule of the module docstring); the root is `routes`' parent."""
    root = MatchedRoute(
        DEFAULT_ROUTE, tuple(default_channels), tuple(group_by), timing or GroupTiming()
    )
    found, stopped = _children(routes, "", root, labels)
    if not stopped:
        found.append(root)
    return found


def route_alert(
    labels: Mapping[str, str],
    default_channels: Sequence[str],
    routes: Sequence[Route],
    group_by: Sequence[str],
    timing: GroupTiming | None = None,
) -> list[Destination]:
    """The destinations of an alert, without duplicate channels (the first route wins)."""
    out: list[Destination] = []
    seen: set[str] = set()
    for match in match_routes(labels, default_channels, routes, group_by, timing):
        for channel in match.channels:
            if channel not in seen:
                seen.add(channel)
                out.append(
                    Destination(
                        channel,
                        match.id,
                        match.group_by,
                        match.timing,
                        match.mute_time_intervals,
                        match.active_time_intervals,
                    )
                )
    return out
