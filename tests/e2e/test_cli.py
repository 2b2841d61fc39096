"""The command line as an operator uses it: `check-config`, `--version`, `python -m supervisor`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from tests.e2e.harness import cli

SECRET = "s3cr3t-token-value-do-not-print"

VALID = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[security]
api_token = "${E2E_API_TOKEN}"
metrics_token = "${E2E_METRICS_TOKEN:-}"

[storage]
path = "monitor.db"

[[checks]]
name = "self"
kind = "self"
interval = "1s"
timeout = "1s"
critical = true

[[checks]]
name = "database"
kind = "postgres"
dsn = "postgresql://app:${E2E_DB_PASSWORD}@127.0.0.1:5432/app"

[channels.console]
kind = "console"

[channels.hooks]
kind = "webhook"
url = "https://hooks.example.com/${E2E_API_TOKEN}"
secret = "${E2E_API_TOKEN}"
"""

# Line numbers matter: the errors below name them.
INVALID = """\
[server]
listen = "127.0.0.1:0"

[[checks]]
name = "db"
kind = "postgres"
dsn = "${E2E_SURELY_UNSET_DSN}"
timout = "1s"

[[checks]]
name = "port"
kind = "tcp"
host = "127.0.0.1"
port = "not-a-port"
"""

ERROR_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<key>\S+): (?P<msg>.+)$")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_check_config_valid_exits_0_and_never_prints_secrets(tmp_path: Path) -> None:
    config = _write(tmp_path, "valid.toml", VALID)
    env = {"E2E_API_TOKEN": SECRET, "E2E_DB_PASSWORD": SECRET + "-db"}
    result = cli("check-config", "-c", str(config), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout
    # A summary: the checks and channels are named.
    for name in ("self", "database", "console", "hooks"):
        assert name in result.stdout
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_invalid_exits_2_with_every_error_located(tmp_path: Path) -> None:
    config = _write(tmp_path, "invalid.toml", INVALID)
    result = cli("check-config", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    errors = [m for line in result.stderr.splitlines() if (m := ERROR_LINE.match(line))]
    by_key = {m["key"]: m for m in errors}
    # All errors at once, each `PATH:LINE:COL: key.path: message`.
    assert set(by_key) >= {"checks[0].dsn", "checks[0].timout", "checks[1].port"}, result.stderr
    for match in errors:
        assert match["path"].endswith("invalid.toml")
    assert by_key["checks[0].dsn"]["line"] == "7"
    assert by_key["checks[0].timout"]["line"] == "8"
    assert by_key["checks[1].port"]["line"] == "14"
    # An unknown key says what was meant; a missing ${VAR} names VAR.
    assert "did you mean" in by_key["checks[0].timout"]["msg"]
    assert "'timeout'" in by_key["checks[0].timout"]["msg"]
    assert "E2E_SURELY_UNSET_DSN" in by_key["checks[0].dsn"]["msg"]


def test_check_config_syntax_error_is_located_and_exits_2(tmp_path: Path) -> None:
    config = _write(tmp_path, "syntax.toml", '[server\nlisten = "127.0.0.1:0"\n')
    result = cli("check-config", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.search(r"syntax\.toml:1:\d+: ", result.stderr), result.stderr


def test_missing_variable_in_a_secret_is_named_without_leaking_other_values(
    tmp_path: Path,
) -> None:
    config = _write(tmp_path, "valid.toml", VALID)
    # E2E_DB_PASSWORD is unset: the error names it; the token that is set is never echoed.
    result = cli("check-config", "-c", str(config), cwd=tmp_path, env={"E2E_API_TOKEN": SECRET})
    assert result.returncode == 2
    assert "E2E_DB_PASSWORD" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_run_with_an_invalid_file_exits_2_without_starting(tmp_path: Path) -> None:
    config = _write(tmp_path, "invalid.toml", INVALID)
    result = cli("run", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "checks[0].timout" in result.stderr


def test_version(tmp_path: Path) -> None:
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert re.match(r"^blipee-monitor \d+\.\d+", result.stdout), result.stdout


def test_python_dash_m_supervisor_is_the_command(tmp_path: Path) -> None:
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "check-config", "test-alert"):
        assert command in result.stdout
    bad = cli("no-such-command", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
