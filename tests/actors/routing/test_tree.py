"""The routing tree: nested routes, Alertmanager's `continue`, inherited options, the rule's
channels as the root, time intervals; and the actor honouring per-route timers and intervals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pydantic
import pytest
import trio
from trio.testing import MockClock

from actors.models import AlertStatus
from actors.routing.config import RouteConfig, TimeIntervalConfig
from actors.routing.grouping import GroupTiming
from actors.routing.routes import (
    Route,
    match_routes,
    parse_route,
    route_alert,
    route_from_config,
)
from supervisor.config import ConfigError, parse_config
from tests.actors.routing.test_actor import START, Harness, _names

TIMING = GroupTiming(0.0, 60.0, 3600.0)


def _tree(*routes: Mapping[str, object]) -> list[Route]:
    return [route_from_config(RouteConfig.model_validate(r)) for r in routes]


def _receivers(labels: dict[str, str], *routes: Mapping[str, object]) -> list[str]:
    matched = match_routes(labels, ["rule"], _tree(*routes), ["alertname"], TIMING)
    return [",".join(m.channels) for m in matched]


def test_nested_routes_and_continue() -> None:
    team = {
        "matchers": ["team=db"],
        "channels": ["db"],
        "routes": [
            {"matchers": ["severity=critical"], "channels": ["db-page"], "continue": True},
            {"matchers": ["env=prod"], "channels": ["db-prod"]},
            {"matchers": ["env=~.+"], "channels": ["db-any"]},
        ],
    }
    other = {"matchers": ["team=~.+"], "channels": ["teams"]}
    # a child matched: the parent's channels are not used
    assert _receivers({"team": "db", "env": "prod"}, team, other) == ["db-prod"]
    # continue: the next sibling is tried too
    labels = {"team": "db", "env": "dev", "severity": "critical"}
    assert _receivers(labels, team, other) == ["db-page", "db-any"]
    # only a continue child matched: still not the parent (Alertmanager's Match)
    assert _receivers({"team": "db", "severity": "critical"}, team, other) == ["db-page"]
    # no child matched: the parent itself
    assert _receivers({"team": "db"}, team, other) == ["db"]
    # the first top-level match without continue ends the walk
    assert _receivers({"team": "web"}, team, other) == ["teams"]
    # nothing matched: the root (the rule's channels)
    assert _receivers({"x": "y"}, team, other) == ["rule"]


def test_the_rule_channels_also_receive_when_only_continue_routes_matched() -> None:
    """docs/decisions/0005: the root rule kept on purpose (Alertmanager would not add "rule")."""
    page = {"matchers": ["severity=critical"], "channels": ["pager"], "continue": True}
    assert _receivers({"severity": "critical"}, page) == ["pager", "rule"]
    stop = {"matchers": ["severity=critical"], "channels": ["pager"]}
    assert _receivers({"severity": "critical"}, stop) == ["pager"]


def test_inherited_options() -> None:
    routes = _tree(
        {
            "matchers": ["team=db"],
            "group_by": ["cluster"],
            "group_wait": "30s",
            "routes": [
                {"matchers": ["env=prod"], "repeat_interval": "1h", "mute_time_intervals": ["n"]},
            ],
        }
    )
    (m,) = match_routes({"team": "db", "env": "prod"}, ["email"], routes, ["alertname"], TIMING)
    assert m.id == "0.0"
    assert m.channels == ("email",)  # unset all the way up: the rule's channels
    assert m.group_by == ("cluster",)
    assert m.timing == GroupTiming(30.0, 60.0, 3600.0)
    assert m.mute_time_intervals == ("n",)
    (parent,) = match_routes({"team": "db"}, ["email"], routes, ["alertname"], TIMING)
    assert parent.id == "0"
    assert parent.mute_time_intervals == ()


def test_a_channel_reached_twice_is_sent_once() -> None:
    routes = [
        parse_route(["a=1"], ["x"], continue_=True),
        parse_route(["b=1"], ["x", "y"], continue_=True),
    ]
    dests = route_alert({"a": "1", "b": "1"}, ["x"], routes, ["alertname"])
    assert [(d.channel, d.route) for d in dests] == [("x", "0"), ("y", "1")]


def test_group_by_all_cannot_be_mixed() -> None:
    RouteConfig.model_validate({"group_by": ["..."]})
    with pytest.raises(pydantic.ValidationError, match="cannot be combined"):
        RouteConfig.model_validate({"group_by": ["...", "cluster"]})
    with pytest.raises(pydantic.ValidationError, match="not a label name"):
        RouteConfig.model_validate({"group_by": ["a-b"]})


def _interval(**spec: object) -> TimeIntervalConfig:
    return TimeIntervalConfig.model_validate({"name": "t", "time_intervals": [spec]})


def _at(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("spec", "when", "expected"),
    [
        ({"times": [{"start_time": "09:00", "end_time": "17:00"}]}, "2026-11-30T09:00Z", True),
        ({"times": [{"start_time": "09:00", "end_time": "17:00"}]}, "2026-11-30T17:00Z", False),
        ({"times": [{"start_time": "09:00", "end_time": "17:00"}]}, "2026-11-30T08:59Z", False),
        ({"times": [{"start_time": "22:00", "end_time": "24:00"}]}, "2026-11-30T23:59Z", True),
        ({"weekdays": ["monday:friday"]}, "2026-11-30T12:00Z", True),  # a Monday
        ({"weekdays": ["monday:friday"]}, "2026-11-29T12:00Z", False),  # a Sunday
        ({"weekdays": ["Saturday", "sunday"]}, "2026-11-29T12:00Z", True),
        ({"days_of_month": ["-1"]}, "2026-11-30T12:00Z", True),  # the last day of November
        ({"days_of_month": ["-1"]}, "2026-12-30T12:00Z", False),
        ({"days_of_month": ["-3:-1"]}, "2027-02-26T12:00Z", True),
        ({"days_of_month": ["1:5"]}, "2026-12-05T23:59Z", True),
        ({"days_of_month": ["30:31"]}, "2027-02-28T12:00Z", False),  # past a short month's end
        ({"months": ["11:12"]}, "2026-11-30T12:00Z", True),
        ({"years": ["2026:2027"]}, "2027-06-01T00:00Z", True),
        ({"years": ["2026"]}, "2027-01-01T00:00Z", False),
        # Lisbon is UTC+1 in summer: 08:30 UTC is 09:30 there
        (
            {"times": [{"start_time": "09:00", "end_time": "10:00"}], "location": "Europe/Lisbon"},
            "2026-07-01T08:30Z",
            True,
        ),
        (
            {"weekdays": ["monday"], "location": "Pacific/Auckland"},
            "2026-11-29T12:00Z",  # Sunday noon in UTC is Monday 01:00 in Auckland
            True,
        ),
        (
            {"weekdays": ["saturday"], "times": [{"start_time": "00:00", "end_time": "01:00"}]},
            "2026-11-28T00:30Z",
            True,
        ),
        ({}, "2026-11-28T00:30Z", True),
    ],
)
def test_time_interval_contains(spec: dict[str, object], when: str, expected: bool) -> None:
    assert _interval(**spec).build().contains(_at(when)) is expected


@pytest.mark.parametrize(
    "spec",
    [
        {"times": [{"start_time": "10:00", "end_time": "09:00"}]},
        {"times": [{"start_time": "9:00", "end_time": "10:00"}]},
        {"times": [{"start_time": "00:00", "end_time": "24:01"}]},
        {"weekdays": ["friday:monday"]},
        {"weekdays": ["funday"]},
        {"days_of_month": ["0"]},
        {"days_of_month": ["32"]},
        {"days_of_month": ["-1:5"]},
        {"days_of_month": ["10:2"]},
        {"months": ["13"]},
        {"months": ["march:january"]},
        {"years": ["2027:2026"]},
        {"location": "Mars/Olympus"},
    ],
)
def test_invalid_time_intervals(spec: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        _interval(**spec)


def test_config_checks_nested_channels_and_interval_names() -> None:
    source = """
[[routing.routes]]
matchers = ["team=db"]
mute_time_intervals = ["nights"]
[[routing.routes.routes]]
matchers = ["env=prod"]
channels = ["pagr"]
active_time_intervals = ["offce"]

[[time_intervals]]
name = "nights"
[[time_intervals.time_intervals]]
times = [{ start_time = "00:00", end_time = "06:00" }]

[[time_intervals]]
name = "office"
[[time_intervals.time_intervals]]
weekdays = ["monday:friday"]

[channels.pager]
kind = "console"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml")
    text = str(caught.value)
    assert "routing.routes[0].routes[0].channels[0]: unknown channel 'pagr'" in text
    assert "routing.routes[0].routes[0].active_time_intervals[0]: unknown time interval" in text
    fixed = source.replace('"pagr"', '"pager"').replace('"offce"', '"office"')
    config = parse_config(fixed, file="c.toml")
    assert config.routing.routes[0].routes[0].channels == ("pager",)
    assert [t.name for t in config.time_intervals] == ["nights", "office"]


async def test_per_route_timers(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    h = Harness(
        group_by=["alertname"],
        group_interval="1m",
        routes=[{"matchers": ["team=db"], "group_wait": "30s", "group_by": ["team"]}],
    )
    await nursery.start(h.actor.run)
    await h.fire("A", team="db")
    await h.fire("B")
    assert _names(h.outbox.take()) == [("hooks", "firing", ["B"])]  # the root: at once
    await h.fire("C", team="db")
    await trio.sleep(29)
    assert h.outbox.take() == []
    await trio.sleep(2)
    (n,) = h.outbox.take()  # the route's group_wait, grouped by team
    assert sorted(dict(a.labels)["alertname"] for a in n.alerts) == ["A", "C"]
    assert n.group_labels == (("team", "db"),)


async def test_mute_and_active_time_intervals(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    # START is Sunday 01:00 UTC; "night" is 00:00-02:00
    night = {
        "name": "night",
        "time_intervals": [{"times": [{"start_time": "00:00", "end_time": "02:00"}]}],
    }
    h = Harness(
        group_interval="5m",
        time_intervals=[night],
        routes=[
            {
                "matchers": ["team=db"],
                "channels": ["muted"],
                "mute_time_intervals": ["night"],
                "continue": True,
            },
            {"matchers": ["team=db"], "channels": ["active"], "active_time_intervals": ["night"]},
        ],
    )
    await nursery.start(h.actor.run)
    await h.fire("A", team="db")
    assert _names(h.outbox.take()) == [("active", "firing", ["A"])]
    await trio.sleep(START + 3600 + 1 - h.clock.now())  # 02:00:01, outside the interval
    await trio.sleep(5 * 60)
    assert ("muted", "firing", ["A"]) in _names(h.outbox.take())


async def test_a_resolution_during_a_mute_is_sent_when_it_ends(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """A deliberate difference (docs/configuration.md): Alertmanager drops it."""
    times = [{"start_time": "02:00", "end_time": "03:00"}]
    h = Harness(
        group_interval="5m",
        time_intervals=[{"name": "two", "time_intervals": [{"times": times}]}],
        routes=[{"matchers": ["team=db"], "mute_time_intervals": ["two"]}],
    )
    await nursery.start(h.actor.run)
    await h.fire("A", team="db")
    assert _names(h.outbox.take()) == [("hooks", "firing", ["A"])]  # 01:00: not muted
    await trio.sleep(START + 3600 + 600 - h.clock.now())  # 02:10
    await h.fire("A", status=AlertStatus.RESOLVED, team="db")
    await trio.sleep(40 * 60)  # 02:50
    assert h.outbox.take() == []
    await trio.sleep(15 * 60)  # past 03:00
    assert _names(h.outbox.take()) == [("hooks", "resolved", ["A"])]
