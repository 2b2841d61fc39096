"""Alert routing, Alertmanager semantics: routes, groups, silences, inhibition, dependency
holds, maintenance windows and escalation; one concern per module, pure logic apart from
`actor` (the loop) and `api` (the HTTP blueprint, imported on its own: `actors.routing.api`).

Public surface:
- `RoutingActor` (`run`, `handle`, `mute_status`, `groups`);
- `Silences` (`all`, `get`, `add`, `expire`, `load`): the process's silences, one object shared
  by the routing actor and the API, outliving the actor's restarts;
- `RoutingStore`, `MemoryRoutingStore`, `SqliteRoutingStore` (notification log and silences);
- the pure parts: `Matcher`/`parse_matcher`/`parse_matcher_lists`, `Route`/`match_routes`/
  `route_alert`, `Group`/`add_alert`/`flush`, `Silence`/`make_silence`, `InhibitRule`/`inhibited`,
  `Cron`/`parse_cron`, `MaintenanceWindow`, `TimeInterval`;
- `RoutingError` and its subclasses.
"""

from __future__ import annotations

from actors.routing.actor import (
    AlertSource,
    HealthView,
    MuteStatus,
    NotificationSink,
    RoutingActor,
)
from actors.routing.cron import Cron, in_window, parse_cron
from actors.routing.exceptions import (
    InvalidCron,
    InvalidMatcher,
    InvalidSilence,
    RoutingError,
    SilenceNotFound,
)
from actors.routing.grouping import (
    Group,
    GroupTiming,
    NotifyLog,
    add_alert,
    flush,
    group_key,
    notification_key,
)
from actors.routing.inhibit import InhibitRule, inhibited, parse_inhibit_rule
from actors.routing.maintenance import MaintenanceWindow, parse_window
from actors.routing.matchers import (
    Matcher,
    matches_all,
    parse_matcher,
    parse_matcher_lists,
    parse_matchers,
)
from actors.routing.persist import MemoryRoutingStore, RoutingStore, SqliteRoutingStore
from actors.routing.routes import (
    Destination,
    MatchedRoute,
    Route,
    match_routes,
    parse_route,
    route_alert,
    route_from_config,
)
from actors.routing.silences import Silence, SilenceState, expire, make_silence
from actors.routing.silencing import Silences
from actors.routing.timeintervals import TimeInterval

__all__ = [
    "AlertSource",
    "Cron",
    "Destination",
    "Group",
    "GroupTiming",
    "HealthView",
    "InhibitRule",
    "InvalidCron",
    "InvalidMatcher",
    "InvalidSilence",
    "MaintenanceWindow",
    "MatchedRoute",
    "Matcher",
    "MemoryRoutingStore",
    "MuteStatus",
    "NotificationSink",
    "NotifyLog",
    "Route",
    "RoutingActor",
    "RoutingError",
    "RoutingStore",
    "Silence",
    "SilenceNotFound",
    "SilenceState",
    "Silences",
    "SqliteRoutingStore",
    "TimeInterval",
    "add_alert",
    "expire",
    "flush",
    "group_key",
    "in_window",
    "inhibited",
    "make_silence",
    "match_routes",
    "matches_all",
    "notification_key",
    "parse_cron",
    "parse_inhibit_rule",
    "parse_matcher",
    "parse_matcher_lists",
    "parse_matchers",
    "parse_route",
    "parse_window",
    "route_alert",
    "route_from_config",
]
