"""Routing's pure parts: matchers, cron, silences, inhibition, maintenance, holds, routes."""

from __future__ import annotations

import datetime as dt

import pytest

from actors.models import Alert, AlertStatus
from actors.routing.cron import in_window, parse_cron
from actors.routing.exceptions import InvalidCron, InvalidMatcher, InvalidSilence
from actors.routing.holds import blocked_by_of, held_for
from actors.routing.inhibit import inhibited, parse_inhibit_rule
from actors.routing.maintenance import in_maintenance, parse_window
from actors.routing.matchers import parse_matcher
from actors.routing.routes import parse_route, route_alert
from actors.routing.silences import SilenceState, expire, make_silence, silenced_by


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("severity=critical", {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ('alertname="High API Latency"', {"alertname": "High API Latency"}, True),
        ("severity!=info", {"severity": "critical"}, True),
        ("severity!=info", {}, True),
        ("check=~data.*", {"check": "database"}, True),
        ("check=~data", {"check": "database"}, False),  # anchored
        ("check!~data.*", {"check": "api"}, True),
        ("check=", {}, True),  # a missing label is the empty string
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["severity", "1x=y", "a=~(", "=x"])
def test_bad_matchers(text: str) -> None:
    with pytest.raises(InvalidMatcher):
        parse_matcher(text)


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("expr", "when", "expected"),
    [
        ("0 2 * * SUN", "2026-11-29T02:00", True),  # a Sunday
        ("0 2 * * SUN", "2026-11-29T02:01", False),
        ("0 2 * * 0", "2026-11-29T02:00", True),
        ("0 2 * * 7", "2026-11-29T02:00", True),
        ("0 2 * * MON-FRI", "2026-11-29T02:00", False),
        ("*/15 * * * *", "2026-11-25T10:45", True),
        ("*/15 * * * *", "2026-11-25T10:46", False),
        ("0 0 1 JAN *", "2027-01-01T00:00", True),
        ("0 0 1,15 * *", "2026-11-15T00:00", True),
        ("30 1-3/2 * * *", "2026-11-25T03:30", True),
        ("30 1-3/2 * * *", "2026-11-25T02:30", False),
        ("0 0 13 * FRI", "2026-11-13T00:00", True),  # dom OR dow when both restricted
        ("0 0 13 * FRI", "2026-11-20T00:00", True),
        ("0 0 13 * FRI", "2026-11-19T00:00", False),
    ],
)
def test_cron_matches(expr: str, when: str, expected: bool) -> None:
    stamp = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)
    assert parse_cron(expr).matches(stamp) is expected


@pytest.mark.parametrize(
    "expr", ["* * * *", "60 * * * *", "* * * * FOO", "*/0 * * * *", "5-1 * * * *"]
)
def test_bad_cron(expr: str) -> None:
    with pytest.raises(InvalidCron):
        parse_cron(expr)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-11-29T01:59:59", False),
        ("2026-11-29T02:00:00", True),
        ("2026-11-29T02:59:59", True),
        ("2026-11-29T03:00:00", False),
        ("2026-11-30T02:30:00", False),
    ],
)
def test_cron_window(when: str, expected: bool) -> None:
    assert in_window(parse_cron("0 2 * * SUN"), 3600, _ts(when)) is expected


def test_maintenance_matchers_and_window() -> None:
    window = parse_window(["check=database"], "0 2 * * SUN", 3600)
    inside = _ts("2026-11-29T02:10:00")
    assert in_maintenance([window], {"check": "database"}, inside)
    assert not in_maintenance([window], {"check": "api"}, inside)
    assert not in_maintenance([window], {"check": "database"}, inside + 3600)


def test_silence_lifecycle() -> None:
    s = make_silence(
        matchers=["alertname=X"],
        starts_at=100,
        ends_at=200,
        created_by="ops",
        comment="c",
        now=50,
    )
    assert s.state(50) is SilenceState.PENDING
    assert s.state(100) is SilenceState.ACTIVE
    assert s.state(200) is SilenceState.EXPIRED
    assert silenced_by([s], {"alertname": "X"}, 150) == (s.id,)
    assert silenced_by([s], {"alertname": "Y"}, 150) == ()
    assert silenced_by([s], {"alertname": "X"}, 50) == ()
    gone = expire(s, 150)
    assert gone.state(150) is SilenceState.EXPIRED
    assert gone.id == s.id
    early = expire(s, 60)
    assert early.state(60) is SilenceState.EXPIRED


@pytest.mark.parametrize(
    ("matchers", "starts", "ends"),
    [([], None, 200.0), (["a=~.*", "b="], None, 200.0), (["a=b"], 300.0, 200.0)],
)
def test_bad_silences(matchers: list[str], starts: float | None, ends: float) -> None:
    with pytest.raises(InvalidSilence):
        make_silence(
            matchers=matchers, starts_at=starts, ends_at=ends, created_by="", comment="", now=100
        )


def test_inhibition_needs_equal_labels_and_not_self() -> None:
    rule = parse_inhibit_rule(["severity=critical"], ["severity=warning"], ["check"])
    target = {"severity": "warning", "check": "db"}
    firing = [("src", {"severity": "critical", "check": "db"})]
    assert inhibited([rule], target, "t", firing)
    assert not inhibited([rule], {"severity": "warning", "check": "api"}, "t", firing)
    assert not inhibited([rule], {"severity": "info", "check": "db"}, "t", firing)
    both = parse_inhibit_rule(["check=db"], ["check=db"], [])
    assert not inhibited([both], target, "src2", [("src2", target)])


def _alert(fp: str, **labels: str) -> Alert:
    return Alert(fp, tuple(sorted(labels.items())), (), AlertStatus.FIRING, 0.0, None)


def test_holds() -> None:
    assert blocked_by_of({"blocked_by": "database"}) == ("database",)
    assert blocked_by_of({"blocked_by": ["database", "redis"]}) == ("database", "redis")
    assert blocked_by_of({}) == ()
    parent = _alert("p", alertname="DB down", check="database")
    child = _alert("c", alertname="API down", check="api")
    other = _alert("o", alertname="Cache", check="cache")
    held = held_for([parent], [(child, ("database",)), (other, ("redis",))])
    assert held == [
        {"alertname": "API down", "check": "api", "blocked_by": "database", "fingerprint": "c"}
    ]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"severity": "critical"}, ["pagerduty", "email", "slack"]),
        ({"severity": "warning", "team": "db"}, ["dba"]),
        ({"severity": "info"}, ["email", "slack"]),
    ],
)
def test_routes(labels: dict[str, str], expected: list[str]) -> None:
    routes = [
        parse_route(["severity=critical"], ["pagerduty"], continue_=True),
        parse_route(["team=db"], ["dba"]),
    ]
    got = route_alert(labels, ["email", "slack"], routes, ["alertname"])
    assert [d.channel for d in got] == expected


def test_maintenance_in_a_time_zone() -> None:
    window = parse_window(["check=db"], "0 2 * * SUN", 3600, timezone="Europe/Lisbon")
    # 2026-07-05 is a Sunday; Lisbon is UTC+1 in summer: 02:30 local = 01:30 UTC.
    assert in_maintenance([window], {"check": "db"}, _ts("2026-07-05T01:30:00"))
    assert not in_maintenance([window], {"check": "db"}, _ts("2026-07-05T02:30:00"))


def test_unknown_time_zone() -> None:
    with pytest.raises(InvalidCron):
        parse_window([], "0 2 * * SUN", 3600, timezone="Mars/Olympus")


def test_alerts_matching_both_sides_do_not_inhibit_each_other() -> None:
    # Alertmanager's excludeTwoSidedMatch: source and target both match `team=db`.
    rule = parse_inhibit_rule(["team=db"], ["team=db", "severity=warning"], ["cluster"])
    both_a = {"team": "db", "severity": "warning", "cluster": "c1", "alertname": "A"}
    both_b = {"team": "db", "severity": "warning", "cluster": "c1", "alertname": "B"}
    source_only = {"team": "db", "severity": "critical", "cluster": "c1", "alertname": "C"}
    assert not inhibited([rule], both_a, "a", [("a", both_a), ("b", both_b)])
    # a source that does not match the target side still mutes it
    assert inhibited([rule], both_a, "a", [("b", both_b), ("c", source_only)])
    # equal labels still apply
    other = {**source_only, "cluster": "c2"}
    assert not inhibited([rule], both_a, "a", [("c", other)])
    # a target that does not match the source side is muted by a two-sided alert
    target_only = {"team": "db", "severity": "warning", "cluster": "c1", "alertname": "T"}
    rule2 = parse_inhibit_rule(["alertname=~A|B"], ["severity=warning"], [])
    assert inhibited([rule2], target_only, "t", [("a", both_a)])
