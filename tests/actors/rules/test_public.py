"""Pins the public surface of the rules and routing packages."""

from __future__ import annotations

import actors.routing
import actors.rules


def test_every_exported_name_exists() -> None:
    for package in (actors.rules, actors.routing):
        for name in package.__all__:
            assert hasattr(package, name), f"{package.__name__}.{name}"


def test_surface_is_pinned() -> None:
    assert {"RulesActor", "Rule", "step", "SqliteAlertStateStore", "InvalidRule"} <= set(
        actors.rules.__all__
    )
    assert {"RoutingActor", "SqliteRoutingStore", "flush", "parse_matcher", "parse_cron"} <= set(
        actors.routing.__all__
    )
