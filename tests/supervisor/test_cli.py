"""The command line, run as users run it: a subprocess of `python -m supervisor`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path = ROOT, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTP_"))}
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _run_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "run.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [server]
            listen = "127.0.0.1:0"
            metrics_listen = "127.0.0.1:0"
            [storage]
            path = "{tmp_path / "monitor.db"}"
            [supervisor]
            shutdown_timeout = "5s"
            [log]
            format = "json"
            [[checks]]
            name = "self"
            kind = "self"
            interval = "1s"
            timeout = "1s"
            critical = true
            [channels.console]
            kind = "console"
            """
        )
        + extra
    )
    return path


def test_version() -> None:
    result = _cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("blipee-monitor ")


def test_check_config_valid_prints_a_summary() -> None:
    result = _cli("check-config", "-c", "config.toml")
    assert result.returncode == 0, result.stderr
    assert "config.toml: configuration is valid" in result.stdout
    assert "slack: slack (webhook_url <empty>) disabled: webhook_url is empty" in result.stdout


def test_check_config_without_c_uses_the_packaged_default(tmp_path: Path) -> None:
    result = _cli("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "default_config.toml: configuration is valid" in result.stdout
    assert "rules (5):" in result.stdout


def test_check_config_invalid_exits_2_with_every_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nlisten = "nowhere"\n[[checks]]\nname = "x"\nkind = "tcp"\n')
    result = _cli("check-config", "-c", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:2:1: server.listen: expected 'host:port', e.g. '0.0.0.0:3000', got 'nowhere'",
        f"{path}:3:1: checks[0].host: required key is missing",
        f"{path}:3:1: checks[0].port: required key is missing",
        f"{path}: 3 errors; configuration not used",
    ]


def test_check_config_missing_file_exits_2(tmp_path: Path) -> None:
    result = _cli("check-config", "-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_syntax_error_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nlisten = \n")
    result = _cli("run", "-c", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == f"{path}:2:10: TOML syntax: invalid value"
    assert "Traceback" not in result.stderr


def test_test_alert_unknown_channel_exits_2(tmp_path: Path) -> None:
    result = _cli("test-alert", "-c", str(_run_config(tmp_path)), "--channel", "consol")
    assert result.returncode == 2
    assert "unknown channel 'consol' (defined: console); did you mean 'console'?" in result.stderr


def test_test_alert_disabled_channel_exits_1(tmp_path: Path) -> None:
    extra = '[channels.slack]\nkind = "slack"\nwebhook_url = ""\n'
    result = _cli("test-alert", "-c", str(_run_config(tmp_path, extra)), "--channel", "slack")
    assert result.returncode == 1
    assert "channel 'slack' is disabled: webhook_url is empty" in result.stderr


def test_test_alert_on_the_console(tmp_path: Path) -> None:
    result = _cli("test-alert", "-c", str(_run_config(tmp_path)), "--channel", "console")
    assert result.returncode == 0, result.stderr
    assert "console: test notification delivered (console)" in result.stdout


def _wait_for(proc: subprocess.Popen[str], text: str, lines: list[str], timeout: float) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return
    pytest.fail(f"{text!r} not logged; got:\n{''.join(lines)}")


@pytest.mark.slow
def test_run_stops_on_sigterm_with_status_0(tmp_path: Path) -> None:
    path = _run_config(tmp_path)
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "supervisor", "run", "-c", str(path)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            _wait_for(proc, '"msg": "started"', lines, 20)
            # A bad file on SIGHUP is rejected and the process keeps running.
            path.write_text(path.read_text().replace('interval = "1s"', 'interval = "fast"'))
            proc.send_signal(signal.SIGHUP)
            _wait_for(proc, "configuration reload rejected", lines, 10)
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=10)
            rest = proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
    assert status == 0, "".join(lines) + rest
    assert "Traceback" not in "".join(lines) + rest
    assert '"msg": "stopped"' in rest
