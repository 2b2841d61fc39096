"""The metric store keeps what the longest rule or `metric` check window needs."""

from __future__ import annotations

from pathlib import Path

import trio

from actors.clock import VirtualClock
from supervisor.app import App, metric_retention
from supervisor.app.root import MIN_RETENTION
from supervisor.config import Config, default_config_path, load_config, parse_config

HOUR = 3600.0
DAY = 86400.0

SOURCE = """
[storage]
path = "{db}"

[[checks]]
name = "slow"
kind = "metric"
condition = {{ metric = "api_errors_total", aggregate = "increase", window = "{check}" }}

[[rules]]
id = "r1"
name = "R1"
enabled = false
condition = {{ metric = "agent_errors_total", aggregate = "increase", window = "{rule}" }}
"""


def _config(tmp_path: Path, *, check: str = "5m", rule: str = "5m") -> Config:
    return parse_config(SOURCE.format(db=tmp_path / "m.db", check=check, rule=rule), env={})


def test_retention_is_the_longest_window_and_at_least_an_hour(tmp_path: Path) -> None:
    assert metric_retention(_config(tmp_path)) == MIN_RETENTION == HOUR
    assert metric_retention(_config(tmp_path, check="2h")) == 2 * HOUR
    # A disabled rule counts too: a reload may enable it.
    assert metric_retention(_config(tmp_path, check="2h", rule="3h")) == 3 * HOUR


async def test_default_configuration_keeps_a_day_for_network_growth() -> None:
    config = load_config(default_config_path(), env={"BLIPEE_MONITOR_DB": ":memory:"})
    assert metric_retention(config) == DAY
    app = App(config, clock=VirtualClock(), serve_http=False)
    assert app.metrics.retention == DAY
    app.database.close()


async def test_gauge_increase_over_a_day_is_the_net_growth() -> None:
    """`increase` of a gauge is its last value minus the value held when the window opened."""
    config = load_config(default_config_path(), env={"BLIPEE_MONITOR_DB": ":memory:"})
    clock = VirtualClock()
    app = App(config, clock=clock, serve_http=False)
    store = app.metrics
    labels = {"organization": "org-1"}
    t0 = 1_700_000_000.0
    # 1,000 connections, then 50 more spread over the day, reported every 10 minutes.
    for step in range(145):
        store.record(
            "network_connections_active", 1000 + step * 50 / 144, labels, timestamp=t0 + step * 600
        )
    now = t0 + DAY
    growth = store.aggregate("network_connections_active", {}, "increase", DAY, now=now)
    assert growth == {(("organization", "org-1"),): 50.0}
    # 150 more the next day: growth is measured from the value held 24h ago.
    for step in range(1, 145):
        store.record(
            "network_connections_active",
            1050 + step * 150 / 144,
            labels,
            timestamp=now + step * 600,
        )
    growth = store.aggregate("network_connections_active", {}, "increase", DAY, now=now + DAY)
    assert growth == {(("organization", "org-1"),): 150.0}
    app.database.close()


async def test_reload_with_a_longer_window_asks_for_a_restart(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    app = App(_config(tmp_path), clock=VirtualClock(), serve_http=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        report = await app.apply(_config(tmp_path, rule="30m"))
        assert report.needs_restart == ()
        report = await app.apply(_config(tmp_path, check="6h"))
        assert report.needs_restart == ("metric retention",)
        assert report.restarted == ("check:slow",)
        await app.stop()
