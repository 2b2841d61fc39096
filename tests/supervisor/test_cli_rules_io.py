"""`blipee-monitor export-rules` as users run it (the translation itself: tests/actors/rules)."""

from __future__ import annotations

from pathlib import Path

import yaml

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
