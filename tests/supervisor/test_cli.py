"""The command line, run as users run it: a subprocess of `python -m supervisor`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
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


def test_check_config_prints_warnings_and_exits_0(tmp_path: Path) -> None:
    # The packaged default listens on every address without a token (its writes are refused
    # until one is set), and its "Database Connection Issues" rule watches a check it only
    # ships commented out.
    result = _cli("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "default_config.toml: configuration is valid" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, result.stderr
    assert (
        "server.listen: no API token is configured and the API listens on 0.0.0.0:3000"
        in (warnings[0])
    )
    assert "set [security] api_token" in warnings[0]
    assert "rules[3].condition.labels.check: no check named 'database' is defined" in warnings[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/ready", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.slow
def test_run_starts_on_what_check_config_accepts(tmp_path: Path) -> None:
    port = _free_port()
    # A 1s check without a timeout, a rule watching a check that is not defined (a warning).
    rule = """
        [[rules]]
        id = "db"
        name = "DB"
        channels = ["console"]
        [rules.condition]
        metric = "health_check_up"
        labels = { check = "database" }
        """
    path = _run_config(tmp_path, textwrap.dedent(rule))
    text = path.read_text().replace('timeout = "1s"\n', "")
    assert 'timeout = "1s"' not in text
    # The same address for both listeners is rejected before anything starts, by both commands.
    path.write_text(text.replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"'))
    checked = _cli("check-config", "-c", str(path))
    assert checked.returncode == 2, checked.stdout
    assert "server.metrics_listen: metrics_listen 127.0.0.1:" in checked.stderr
    refused = _cli("run", "-c", str(path), timeout=20)
    assert refused.returncode == 2
    assert "restarting" not in refused.stderr
    # With its own /metrics port, what check-config accepts runs and becomes ready.
    path.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"', 1))
    checked = _cli("check-config", "-c", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "self: self every 1s, timeout 1s critical" in checked.stdout
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "supervisor", "run", "-c", str(path)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            _wait_for(proc, '"msg": "started"', lines, 20)
            deadline = time.monotonic() + 15
            while not _ready(port) and time.monotonic() < deadline:
                time.sleep(0.1)  # polling a condition with a deadline
            ready = _ready(port)
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=10)
            rest = proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
    log = "".join(lines) + rest
    assert ready, log
    assert status == 0, log
    assert "crashed" not in log
    assert "restarting" not in log
    # The warning check-config prints is logged when run starts.
    assert "configuration warning:" in "".join(lines), log
    assert "no check named 'database' is defined" in "".join(lines)
