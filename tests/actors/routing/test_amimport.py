"""import-alertmanager: an alertmanager.yml as our TOML.

The translation of each part (receivers of every kind we have, secrets, legacy matchers, time
intervals, inhibit rules, what is not carried over), and a differential test: a realistic
alertmanager.yml imported routes a few hundred label sets to the same receivers as
`amtool config routes test` on the original (the helpers of test_differential_alertmanager).
The root-level difference of decision 0005 does not arise: the import puts the tree under one
top-level route that matches every alert, so the rule's channels are never the root.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
import yaml

from actors.routing.amimport import AlertmanagerImport, import_alertmanager
from actors.routing.exceptions import InvalidAlertmanagerConfig
from actors.routing.inhibit import inhibited, parse_inhibit_rule
from actors.routing.routes import match_routes, route_from_config
from supervisor.config import Config, parse_config
from tests.actors.routing.test_differential_alertmanager import Amtool
from tests.e2e.harness import require_binary

# Kinds amtool 0.25 knows, plus ours that it does not (msteams) in a second document.
REALISTIC = """\
global:
  smtp_smarthost: smtp.example.com:587
  smtp_from: alertmanager@example.com
  smtp_auth_username: alertmanager
  smtp_auth_password: "smtp-password-in-clear"
  slack_api_url: https://hooks.slack.com/services/T000/B000/SLACKSECRET
  resolve_timeout: 5m
templates: ["/etc/alertmanager/templates/*.tmpl"]
route:
  receiver: ops-mail
  group_by: [alertname, cluster]
  group_wait: 10s
  group_interval: 2m
  repeat_interval: 3h
  routes:
    - matchers: ['team="db"', 'env=~"prod|staging"']
      receiver: dba
      group_by: [cluster]
      routes:
        - match: {severity: critical}
          receiver: db-pager
          continue: true
          mute_time_intervals: [nights]
        - match_re: {env: "prod"}
          receiver: db-chat
          active_time_intervals: [office-hours]
        - matchers: [service!~"replica.*"]
          receiver: dba
          group_wait: 1m
    - match: {team: api}
      receiver: api
      continue: true
      routes:
        - matchers: ['severity=~"crit.*|page"']
          receiver: api-pager
    - matchers: [severity="critical"]
      receiver: all-pager
      continue: true
    - match_re: {severity: "warn.*", alertname: ".*Slow.*"}
      receiver: blackhole
    - matchers: ['alertname="Watchdog"']
      receiver: blackhole
      group_by: ['...']
receivers:
  - name: ops-mail
    email_configs:
      - to: ops@example.com, oncall@example.com
  - name: dba
    email_configs:
      - to: dba@example.com
        headers: {Subject: "DB alert"}
    slack_configs:
      - channel: "#dba"
        send_resolved: true
  - name: db-pager
    pagerduty_configs:
      - routing_key: "pd-routing-key-in-clear"
  - name: db-chat
    webhook_configs:
      - url: https://chat.example.com/hooks/WEBHOOKSECRET
        http_config:
          authorization: {credentials: "bearer-in-clear"}
  - name: api
    opsgenie_configs:
      - api_key: "opsgenie-key-in-clear"
        api_url: https://api.eu.opsgenie.com/
    telegram_configs:
      - bot_token: "123:telegram-in-clear"
        chat_id: -1001234567
    discord_configs:
      - webhook_url: https://discord.com/api/webhooks/1/DISCORDSECRET
  - name: api-pager
    pagerduty_configs:
      - service_key: "pd-service-key-in-clear"
    pushover_configs:
      - user_key: "pushover-user-in-clear"
        token: "pushover-token-in-clear"
  - name: all-pager
    pagerduty_configs:
      - routing_key: "pd-all-key-in-clear"
        url: https://events.eu.pagerduty.com/v2/enqueue
  - name: blackhole
inhibit_rules:
  - source_match: {severity: critical}
    target_match_re: {severity: "warn.*"}
    equal: [cluster]
  - source_matchers: [alertname="DatabaseDown"]
    target_matchers: [team="db", alertname!="DatabaseDown"]
    equal: [cluster, env]
time_intervals:
  - name: office-hours
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: "09:00", end_time: "18:00"}]
        location: Europe/Lisbon
mute_time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "00:00", end_time: "06:00"}]
        days_of_month: [1, "-1"]
        months: ["january:march"]
        years: ["2026:2027"]
"""

SECRETS = (
    "smtp-password-in-clear", "SLACKSECRET", "pd-routing-key-in-clear", "WEBHOOKSECRET",
    "bearer-in-clear", "opsgenie-key-in-clear", "telegram-in-clear", "DISCORDSECRET",
    "pd-service-key-in-clear", "pd-all-key-in-clear", "pushover-user-in-clear",
)  # fmt: skip


def _import(text: str = REALISTIC) -> AlertmanagerImport:
    return import_alertmanager(yaml.safe_load(text))


def _config(result: AlertmanagerImport) -> Config:
    env = {v.name: "https://secret.example.com/value" for v in result.variables}
    return parse_config(result.toml, file="imported.toml", env=env)


def test_the_import_passes_check_config_and_copies_no_secret() -> None:
    result = _import()
    config = _config(result)
    for secret in SECRETS:
        assert secret not in result.toml
    assert {v.name: v.path for v in result.variables} == {
        "ALERTMANAGER_SMTP_AUTH_PASSWORD": "global.smtp_auth_password",
        "ALERTMANAGER_SLACK_API_URL": "global.slack_api_url",
        "DB_PAGER_ROUTING_KEY": "receivers[2].pagerduty_configs[0].routing_key",
        "DB_CHAT_URL": "receivers[3].webhook_configs[0].url",
        "DB_CHAT_CREDENTIALS": "receivers[3].webhook_configs[0].http_config.authorization"
        ".credentials",
        "API_OPSGENIE_API_KEY": "receivers[4].opsgenie_configs[0].api_key",
        "API_TELEGRAM_BOT_TOKEN": "receivers[4].telegram_configs[0].bot_token",
        "API_DISCORD_WEBHOOK_URL": "receivers[4].discord_configs[0].webhook_url",
        "API_PAGER_SERVICE_KEY": "receivers[5].pagerduty_configs[0].service_key",
        "ALL_PAGER_ROUTING_KEY": "receivers[6].pagerduty_configs[0].routing_key",
    }
    for variable in result.variables:
        assert f"#   {variable.name}  <- {variable.path}\n" in result.toml
    assert dict(result.receivers) == {
        "ops-mail": ("ops-mail",),
        "dba": ("dba-email", "dba-slack"),
        "db-pager": ("db-pager",),
        "db-chat": ("db-chat",),
        "api": ("api-opsgenie", "api-telegram", "api-discord"),
        "api-pager": ("api-pager",),
        "all-pager": ("all-pager",),
        "blackhole": (),
    }
    channels = config.channels
    mail = channels["ops-mail"].model_dump(by_alias=True)
    assert {k: mail[k] for k in ("smtp_host", "smtp_port", "starttls", "tls", "from", "to")} == {
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "starttls": True,
        "tls": False,
        "from": "alertmanager@example.com",
        "to": ("ops@example.com", "oncall@example.com"),
    }
    # Alertmanager's send_resolved defaults: false for email and Slack, true for the others.
    assert not channels["ops-mail"].send_resolved
    assert channels["dba-slack"].send_resolved
    assert channels["db-pager"].send_resolved
    assert channels["api-opsgenie"].model_dump()["url"] == "https://api.eu.opsgenie.com"
    assert channels["api-telegram"].model_dump()["chat_id"] == "-1001234567"
    assert config.routing.group_by == ("alertname", "cluster")
    assert (config.routing.group_wait, config.routing.group_interval) == (10.0, 120.0)
    assert config.routing.repeat_interval == 3 * 3600.0
    assert [t.name for t in config.time_intervals] == ["office-hours", "nights"]


def test_what_is_not_carried_over_is_listed_with_its_path() -> None:
    notes = {note.path: note.text for note in _import().notes}
    assert set(notes) == {
        "receivers[1].email_configs[0].headers",
        "receivers[1].slack_configs[0].channel",
        "receivers[5].pagerduty_configs[0].service_key",
        "receivers[5].pushover_configs",
        "templates",
        "global.resolve_timeout",
    }
    assert "no channel kind" in notes["receivers[5].pushover_configs"]
    for path in notes:
        assert f"#   {path}: " in _import().toml


def test_the_legacy_inhibit_forms_inhibit_as_the_new_ones() -> None:
    config = _config(_import())
    rules = [
        parse_inhibit_rule(list(r.source), list(r.target), list(r.equal)) for r in config.inhibit
    ]
    critical = {"alertname": "A", "severity": "critical", "cluster": "c1"}
    warning = {"alertname": "B", "severity": "warning", "cluster": "c1"}
    other = {"alertname": "B", "severity": "warning", "cluster": "c2"}
    assert inhibited(rules, warning, "w", [("c", critical)])
    assert not inhibited(rules, other, "o", [("c", critical)])
    down = {"alertname": "DatabaseDown", "cluster": "c1", "env": "prod"}
    db = {"alertname": "Slow", "team": "db", "cluster": "c1", "env": "prod"}
    assert inhibited(rules, db, "s", [("d", down)])
    assert not inhibited(rules, down, "d", [("d", down)])


def test_teams_kinds_and_files_and_http_config() -> None:
    result = _import(
        """\
route: {receiver: chat}
receivers:
  - name: chat
    msteams_configs: [{webhook_url: "https://teams/in-clear"}]
    msteamsv2_configs: [{webhook_url_file: /etc/am/teams}]
    webhook_configs:
      - url: https://hook/in-clear
        max_alerts: 5
        http_config: {bearer_token: tok-in-clear, tls_config: {insecure_skip_verify: true}}
"""
    )
    config = _config(result)
    assert [c.kind for c in config.channels.values()] == ["teams", "teams", "webhook"]
    assert "in-clear" not in result.toml
    notes = {note.path for note in result.notes}
    assert notes == {
        "receivers[0].msteamsv2_configs[0].webhook_url_file",
        "receivers[0].webhook_configs[0].max_alerts",
        "receivers[0].webhook_configs[0].http_config.tls_config",
    }
    headers = config.channels["chat-webhook"].model_dump()["headers"]
    assert headers == {"Authorization": "Bearer https://secret.example.com/value"}


def test_a_literal_dollar_brace_stays_literal() -> None:
    result = _import(
        """\
route:
  receiver: r
  routes: [{matchers: ['x="${a}"'], receiver: r}]
receivers: [{name: r}]
"""
    )
    config = _config(result)
    assert config.routing.routes[0].routes[0].matchers == ('x="${a}"',)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("[1, 2]", ""),
        ("receivers: []", "route"),
        ("route: {group_by: [a]}\nreceivers: []", "route.receiver"),
        ("route: {receiver: nope}\nreceivers: []", "route.receiver"),
        ("route: {receiver: r, routes: {a: 1}}\nreceivers: [{name: r}]", "route.routes"),
        ("route: {receiver: r, group_wait: soon}\nreceivers: [{name: r}]", "route.group_wait"),
        ("route: {receiver: r}\nreceivers: [{email_configs: []}]", "receivers[0].name"),
    ],
)
def test_what_cannot_be_read_is_an_error_with_its_path(text: str, path: str) -> None:
    with pytest.raises(InvalidAlertmanagerConfig) as caught:
        import_alertmanager(yaml.safe_load(text))
    assert caught.value.path == path


# -- the differential ----------------------------------------------------------------------------

NAMES = ("team", "env", "severity", "alertname", "service", "cluster")
VALUES = {
    "team": ("db", "api", "web", "", "DB"),
    "env": ("prod", "staging", "dev", "", "production"),
    "severity": ("critical", "warning", "warn", "page", "info", "crit-1", ""),
    "alertname": ("DatabaseDown", "Watchdog", "APISlowRequests", "Slow", "x", ""),
    "service": ("replica-1", "primary", "replica", ""),
    "cluster": ("eu", "us"),
}
LABEL_SETS = 300


@pytest.mark.slow
def test_imported_routes_send_to_the_receivers_amtool_names(tmp_path: Path) -> None:
    binary = require_binary("/usr/bin/amtool")
    document = yaml.safe_load(REALISTIC)
    checked = subprocess.run(
        [binary, "check-config", str(_write(tmp_path / "check.yml", REALISTIC))],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = import_alertmanager(document)
    config = _config(result)
    routes = [route_from_config(r) for r in config.routing.routes]
    amtool = Amtool(binary, tmp_path, document)
    rng = random.Random(20261206)
    failures = []
    reached: set[str] = set()
    for _ in range(LABEL_SETS):
        labels = {n: rng.choice(VALUES[n]) for n in NAMES if rng.random() < 0.75}
        names = amtool.receivers(labels)
        reached.update(names)
        theirs = [result.receivers[name] for name in names]
        matched = match_routes(labels, ["rule-channel"], routes, config.routing.group_by)
        ours = [m.channels for m in matched]
        if ours != theirs:
            failures.append(f"{labels}: amtool {theirs}, ours {ours}")
    assert amtool.calls == LABEL_SETS
    assert reached == set(result.receivers), reached  # every receiver is reached
    assert not failures, "\n".join(failures[:20])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
