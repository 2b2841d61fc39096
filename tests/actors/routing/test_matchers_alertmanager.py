"""Differential: our regex matchers against Alertmanager's own, via `amtool config routes test`.

Each case is a route `level=~"PATTERN"` to receiver `hit` under a default `miss`; amtool (the
Alertmanager code, RE2) says which receiver a label set reaches, and our `Matcher` must agree.
The wider differential suite is test_differential_alertmanager.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from actors.routing.matchers import parse_matcher
from tests.e2e.harness import require_binary

CASES = [
    ("(?i)crit.*", "CRITICAL"),
    ("(?i)crit.*", "critical"),
    ("(?i)crit.*", "xcrit"),
    ("(?i)a|b", "B"),
    ("(?i)a|b", "ab"),
    ("(?i)(?-i)a", "A"),
    ("crit", "critical"),
    ("crit.*", "critical"),
    ("data|api", "api"),
    ("data|api", "apix"),
    ("", ""),
    ("[a-c]+", "abcab"),
    ("[a-c]+", "abcd"),
    ("\\d+", "١٢٣"),
    ("[[:alpha:]]+", "abc"),
    ("x(?i)y", "xY"),
]


def _alertmanager_routes_to_hit(amtool: str, tmp: Path, pattern: str, value: str) -> bool:
    config = tmp / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: miss\n"
        "  routes:\n"
        "    - receiver: hit\n"
        f"      matchers: ['level=~\"{pattern}\"']\n"
        "receivers:\n"
        "  - name: miss\n"
        "  - name: hit\n"
    )
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", f"level={value}"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    receiver = result.stdout.strip()
    assert receiver in ("hit", "miss"), result.stdout
    return receiver == "hit"


@pytest.mark.parametrize(("pattern", "value"), CASES)
def test_regex_matchers_agree_with_alertmanager(tmp_path: Path, pattern: str, value: str) -> None:
    amtool = require_binary("amtool")
    expected = _alertmanager_routes_to_hit(amtool, tmp_path, pattern, value)
    assert parse_matcher(f'level=~"{pattern}"').matches({"level": value}) is expected
