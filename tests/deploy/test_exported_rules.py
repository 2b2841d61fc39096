"""deploy/prometheus/rules.yml: the packaged default's rules as `export-rules` writes them (so it
cannot drift from the rules it claims to be), and `promtool check rules` accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.harness import ROOT, cli, require_binary

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"


def test_the_deployed_rules_are_the_export_of_the_default_config(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    result = cli("export-rules", "-c", "supervisor/default_config.toml", "-o", str(out), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert RULES.read_text() == out.read_text(), (
        "regenerate: blipee-monitor export-rules -c supervisor/default_config.toml"
        " -o deploy/prometheus/rules.yml"
    )


def test_promtool_accepts_the_deployed_rules() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 70 rules found" in result.stdout  # 5 rules, 13 for each of 5 SLOs
