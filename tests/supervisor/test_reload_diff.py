"""`diff_configs`: what a reload has to start, stop and restart, computed from two configs alone."""

from __future__ import annotations

from supervisor.app.reload import ConfigDiff, diff_configs
from supervisor.config import Config, parse_config

BASE = """
[server]
listen = "127.0.0.1:3000"

[[checks]]
name = "api"
kind = "tcp"
host = "127.0.0.1"
port = 1

[[checks]]
name = "db"
kind = "tcp"
host = "127.0.0.1"
port = 2

[[rules]]
id = "down"
name = "Down"
channels = ["console"]
[rules.condition]
metric = "health_check_up"
operator = "<"
threshold = 1

[channels.console]
kind = "console"
"""


def _config(text: str) -> Config:
    return parse_config(text, env={})


def test_the_same_file_changes_nothing() -> None:
    assert diff_configs(_config(BASE), _config(BASE)) == ConfigDiff()


def test_checks_rules_and_channels_are_compared_by_name() -> None:
    new = (
        BASE.replace('name = "db"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 2', "")
        .replace("port = 1", "port = 11")
        .replace("threshold = 1", "threshold = 0.5")
        + '\n[[checks]]\nname = "cache"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 3\n'
        + '\n[channels.hooks]\nkind = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
    )
    new = new.replace("[[checks]]\n\n", "")
    diff = diff_configs(_config(BASE), _config(new))
    assert diff.checks_started == ("cache",)
    assert diff.checks_stopped == ("db",)
    assert diff.checks_restarted == ("api",)
    assert diff.rules_changed == ("down",)
    assert diff.rules_added == diff.rules_removed == ()
    assert diff.channels_added == ("hooks",)
    assert not diff.routing_changed
    assert diff.needs_restart == ()


def test_disabling_a_rule_removes_it_and_sections_outside_live_ones_need_a_restart() -> None:
    new = BASE.replace('id = "down"', 'id = "down"\nenabled = false').replace(
        '"127.0.0.1:3000"', '"127.0.0.1:3001"'
    )
    new += '\n[routing]\ngroup_wait = "5s"\n'
    diff = diff_configs(_config(BASE), _config(new))
    assert diff.rules_removed == ("down",)
    assert diff.routing_changed
    assert diff.needs_restart == ("server",)


SLO = """
[[slos]]
name = "api"
objective = 0.999
bad = { metric = "api_requests_total", labels = { status = "5.." } }
total = { metric = "api_requests_total" }
alert_channels = ["console"]
"""


def test_an_slo_is_live_and_its_alerts_are_rules_of_the_diff() -> None:
    diff = diff_configs(_config(BASE), _config(BASE + SLO))
    assert diff.rules_added == ("slo-api-page", "slo-api-ticket")
    assert diff.needs_restart == ()
    # A new objective is the SLO actor's to apply: the rules watch its slo_burn_alert as before.
    changed = diff_configs(_config(BASE + SLO), _config(BASE + SLO.replace("0.999", "0.99")))
    assert changed.rules_changed == ()
    paged = diff_configs(_config(BASE + SLO), _config(BASE + SLO.replace('["console"]', "[]")))
    assert paged.rules_changed == ("slo-api-page", "slo-api-ticket")
    gone = diff_configs(_config(BASE + SLO), _config(BASE))
    assert gone.rules_removed == ("slo-api-page", "slo-api-ticket")
