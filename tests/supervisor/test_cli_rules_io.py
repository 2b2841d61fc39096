"""`blipee-monitor export-rules` as users run it (the translation itself: tests/actors/rules)."""

from __future__ import annotations

from pathlib import Path

import yaml

from supervisor.cli import _metric_kinds
from supervisor.config import default_config_path, load_config
from tests.e2e.harness import cli

RULES = """\
[[rules]]
id = "errors"
name = "Errors"
[rules.condition]
metric = "agent_errors_total"
aggregate = "increase"
threshold = 3

[[rules]]
id = "increments"
name = "Increments"
[rules.condition]
metric = "agent_errors_total"
aggregate = "avg"

[[rules]]
id = "check"
name = "Check Down"
[rules.condition]
metric = "health_check_up"
operator = "=="
threshold = 0
"""


def test_export_rules_writes_the_file_and_lists_what_is_not_exact(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(RULES)
    out = tmp_path / "rules.yml"
    result = cli("export-rules", "-c", str(config), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        "export-rules: rule 'errors': approximated: increase() extrapolates to the window's"
        " edges; here the increments are added",
        "export-rules: rule 'increments': not exported: avg of a counter is over its"
        " increments, which Prometheus does not see",
    ]
    text = out.read_text()
    assert all(f"#   {line.removeprefix('export-rules: ')}" in text for line in lines)
    rules = yaml.safe_load(text)["groups"][0]["rules"]
    assert [r["expr"] for r in rules] == [
        "increase(agent_errors_total[5m]) > 3.0",
        "health_check_up == 0.0",
    ]


def test_export_rules_to_stdout_and_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(RULES)
    result = cli("export-rules", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0
    assert yaml.safe_load(result.stdout)["groups"][0]["name"] == "blipee-monitor"
    config.write_text("[[rules]]\nid = 1\n")
    result = cli("export-rules", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    config.write_text(RULES)
    result = cli(
        "export-rules", "-c", str(config), "-o", str(tmp_path / "no" / "x.yml"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"cannot write {tmp_path / 'no' / 'x.yml'}: ")


ALERTMANAGER = """\
route:
  receiver: team
  routes:
    - match: {severity: critical}
      receiver: pager
receivers:
  - name: team
    slack_configs: [{api_url: "https://hooks.slack.com/services/T/B/SECRET", title: "x"}]
  - name: pager
    pagerduty_configs: [{routing_key: "KEYSECRET"}]
    sns_configs: [{topic_arn: "arn"}]
"""


def test_import_alertmanager_writes_toml_that_check_config_accepts(tmp_path: Path) -> None:
    source = tmp_path / "alertmanager.yml"
    source.write_text(ALERTMANAGER)
    out = tmp_path / "routing.toml"
    result = cli("import-alertmanager", str(source), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "import-alertmanager: receivers[0].slack_configs[0].title: not carried over",
        "import-alertmanager: receivers[1].sns_configs: no channel kind of ours sends this;"
        " not carried over",
        "import-alertmanager: secret: set TEAM_API_URL (the value at"
        " receivers[0].slack_configs[0].api_url)",
        "import-alertmanager: secret: set PAGER_ROUTING_KEY (the value at"
        " receivers[1].pagerduty_configs[0].routing_key)",
    ]
    text = out.read_text()
    assert "SECRET" not in text
    env = {"TEAM_API_URL": "https://hooks.slack.com/x", "PAGER_ROUTING_KEY": "k"}
    checked = cli("check-config", "-c", str(out), cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "team: slack (webhook_url <set>) enabled" in checked.stdout
    missing = cli("check-config", "-c", str(out), cwd=tmp_path)
    assert missing.returncode == 2
    assert "TEAM_API_URL is not set" in missing.stderr


def test_import_alertmanager_errors(tmp_path: Path) -> None:
    source = tmp_path / "alertmanager.yml"
    source.write_text("route: [\n")
    result = cli("import-alertmanager", str(source), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{source}: not valid YAML: ")
    source.write_text("route: {receiver: nobody}\nreceivers: []\n")
    result = cli("import-alertmanager", str(source), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        2,
        f"{source}: route.receiver: unknown receiver 'nobody'\n",
    )
    result = cli("import-alertmanager", str(tmp_path / "missing.yml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_export_rules_writes_each_slos_group(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        RULES
        + """
[[slos]]
name = "api"
objective = 0.999
bad = { metric = "api_requests_total", labels = { status = "5.." } }
total = { metric = "api_requests_total" }
"""
    )
    out = tmp_path / "rules.yml"
    result = cli("export-rules", "-c", str(config), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    groups = yaml.safe_load(out.read_text())["groups"]
    assert [g["name"] for g in groups] == ["blipee-monitor", "slo-api"]
    records = [r["record"] for r in groups[1]["rules"] if "record" in r]
    assert records[0] == "slo:sli_error:ratio_rate5m"
    assert groups[1]["rules"][0]["expr"] == (
        'sum(rate(api_requests_total{status=~"5.."}[5m])) / sum(rate(api_requests_total[5m]))'
    )
    alerts = [r["labels"]["burn"] for r in groups[1]["rules"] if "alert" in r]
    assert alerts == ["page", "ticket"]


def test_export_rules_knows_the_kind_of_every_metric_the_monitor_declares() -> None:
    # The kinds come from the declarations of the app itself: a metric any subsystem declares
    # (checks' scheduler, storage, reloads, SLOs, rules, notify, health) is known.
    kinds = _metric_kinds(load_config(default_config_path(), env={}))
    assert {
        name: kinds.get(name)
        for name in (
            "check_overloaded",
            "check_runs_skipped_total",
            "storage_errors_total",
            "config_reload_total",
            "slo_sli",
            "alerts_firing",
            "notifications_total",
            "health_check_up",
        )
    } == {
        "check_overloaded": "gauge",
        "check_runs_skipped_total": "counter",
        "storage_errors_total": "counter",
        "config_reload_total": "counter",
        "slo_sli": "gauge",
        "alerts_firing": "gauge",
        "notifications_total": "counter",
        "health_check_up": "gauge",
    }
