"""Matchers and silences as an operator meets them: check-config, `run`, the API and amtool.

One monitor for the module. Its file has `level=~"(?i)crit.*"` in a route, an inhibit rule and a
silence, and a rule whose alert carries `level = "CRITICAL"`: check-config must accept the file,
`run` must start with it, and the config silence must mute that alert. The silences API is then
driven both as documented (v1) and by Alertmanager's own CLI, `amtool`, pointed at the monitor
(API v2: `GET /api/v2/status`, `POST /api/v2/silences`, `GET /api/v2/silences`,
`DELETE /api/v2/silence/<id>`), with the API token given in amtool's HTTP config file.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.telemetry.config import TelemetryConfig
from tests.e2e.harness import ROOT, Monitor, cli, require_binary, wait_until

API_TOKEN = "e2e-silences-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CRIT = 'level=~"(?i)crit.*"'

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[security]
api_token = "${{E2E_API_TOKEN}}"

[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "5s"

[log]
format = "json"
level = "info"

[[rules]]
id = "low-accuracy"
name = "Low Accuracy"
severity = "warning"
channels = ["console"]
labels = {{ level = "CRITICAL" }}
[rules.condition]
metric = "ml_model_accuracy"
aggregate = "last"
window = "1m"
operator = "<"
threshold = 0.5

[routing]
group_wait = "0s"
group_interval = "200ms"

[[routing.routes]]
matchers = ['{crit}']
channels = ["console"]

[[inhibit]]
source = ['{crit}']
target = ["level=warning"]

[[silences]]
matchers = ['{crit}']
ends = "2999-01-01T00:00:00Z"
comment = "case-insensitive regex"
created_by = "config"

[channels.console]
kind = "console"
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("silences")
    path = tmp / "silences.toml"
    path.write_text(CONFIG.format(db=tmp / "monitor.db", crit=CRIT))
    return path


@pytest.fixture(scope="module")
def monitor(config_file: Path) -> Iterator[Monitor]:
    proc = Monitor(config_file, env={"E2E_API_TOKEN": API_TOKEN})
    try:
        proc.start()
        yield proc
    finally:
        status = proc.stop()
    assert status == 0, proc.log()[-4000:]


@pytest.fixture(scope="module")
def api(monitor: Monitor) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=monitor.api, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def amtool_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME for amtool (so no user config is read) with an HTTP config carrying the token."""
    home = tmp_path_factory.mktemp("amtool-home")
    (home / "http.yml").write_text(f"authorization:\n  credentials: {API_TOKEN}\n")
    return home


def _amtool(monitor: Monitor, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    amtool = require_binary("amtool")
    return subprocess.run(
        [
            amtool,
            f"--alertmanager.url={monitor.api}",
            f"--http.config.file={home / 'http.yml'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "USER": "e2e"},
    )


def test_check_config_accepts_a_case_insensitive_regex(config_file: Path) -> None:
    result = cli(
        "check-config",
        "-c",
        str(config_file),
        cwd=config_file.parent,
        env={"E2E_API_TOKEN": API_TOKEN},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_run_starts_and_the_config_silence_mutes_the_alert(
    monitor: Monitor, api: httpx.Client
) -> None:
    silences = api.get("/api/v1/silences").json()["silences"]
    config_silence = next(s for s in silences if s["createdBy"] == "config")
    assert config_silence["matchers"] == [CRIT]
    assert config_silence["status"] == {"state": "active"}
    response = api.post(
        "/api/v1/events",
        json={"events": [{"type": "ml_accuracy", "model": "m", "accuracy": 0.1}]},
        headers=AUTH,
    )
    assert response.status_code == 202, response.text

    def muted_alert() -> dict[str, Any] | None:
        for alert in api.get("/api/v1/alerts?state=firing").json()["alerts"]:
            if alert["labels"].get("level") == "CRITICAL" and alert["silencedBy"]:
                return dict(alert)
        return None

    alert = wait_until(muted_alert, "the alert muted by the config silence")
    assert config_silence["id"] in alert["silencedBy"]
    assert monitor.proc is not None
    assert monitor.proc.poll() is None


def test_api_silences_accept_a_case_insensitive_regex(api: httpx.Client) -> None:
    v1 = api.post(
        "/api/v1/silences",
        json={"matchers": [CRIT, "alertname=V1"], "duration": "1h", "comment": "v1"},
        headers=AUTH,
    )
    assert v1.status_code == 201, v1.text
    v2 = api.post(
        "/api/v2/silences",
        json={
            "matchers": [
                {"name": "level", "value": "(?i)crit.*", "isRegex": True, "isEqual": True},
                {"name": "alertname", "value": "V2", "isRegex": False},
            ],
            "endsAt": _SOON,
            "createdBy": "e2e",
            "comment": "v2",
        },
        headers=AUTH,
    )
    assert v2.status_code == 200, v2.text
    sid = v2.json()["silenceID"]
    got = api.get(f"/api/v2/silence/{sid}").json()
    assert got["matchers"][0] == {
        "name": "level",
        "value": "(?i)crit.*",
        "isRegex": True,
        "isEqual": True,
    }
    assert got["status"] == {"state": "active"}


def test_amtool_adds_queries_and_expires_a_silence(monitor: Monitor, amtool_home: Path) -> None:
    added = _amtool(
        monitor,
        amtool_home,
        "silence",
        "add",
        "--comment=from amtool",
        "--duration=2h",
        "alertname=AmtoolX",
        CRIT,
    )
    assert added.returncode == 0, added.stderr
    sid = added.stdout.strip()
    assert sid

    queried = _amtool(monitor, amtool_home, "silence", "query", "-o", "json", "alertname=AmtoolX")
    assert queried.returncode == 0, queried.stderr
    assert sid in queried.stdout
    assert "from amtool" in queried.stdout
    assert '"isRegex":true' in queried.stdout.replace(" ", "")

    other = _amtool(monitor, amtool_home, "silence", "query", "-q", "alertname=Other")
    assert other.returncode == 0, other.stderr
    assert sid not in other.stdout

    expired = _amtool(monitor, amtool_home, "silence", "expire", sid)
    assert expired.returncode == 0, expired.stderr
    active = _amtool(monitor, amtool_home, "silence", "query", "-q")
    assert sid not in active.stdout
    gone = _amtool(monitor, amtool_home, "silence", "query", "-q", "--expired")
    assert sid in gone.stdout


def test_amtool_without_the_token_is_refused(monitor: Monitor, tmp_path: Path) -> None:
    (tmp_path / "http.yml").write_text("{}\n")
    refused = _amtool(monitor, tmp_path, "silence", "add", "--comment=x", "alertname=NoToken")
    assert refused.returncode != 0
    assert "401" in refused.stderr or "nauthorized" in refused.stderr


DOCS = ROOT / "docs" / "configuration.md"
# Within the longest silence the API takes (actors.routing.limits.MAX_SILENCE_DURATION).
_SOON = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _section(heading: str) -> str:
    text = DOCS.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def test_the_documented_silence_example_is_accepted(api: httpx.Client) -> None:
    section = _section("## `[[silences]]`")
    example = re.search(r"-d '(\{.*?\})'", section, re.DOTALL)
    assert example is not None, "no curl example in the silences section"
    body = json.loads(example.group(1))
    assert set(body) >= {"matchers", "startsAt", "endsAt", "createdBy", "comment"}
    body["endsAt"] = _SOON  # the example's own times are in the past by now
    response = api.post("/api/v2/silences", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"silenceID"}


def test_every_telemetry_key_is_documented() -> None:
    section = _section("## `[telemetry]`")
    for name in TelemetryConfig.model_fields:
        assert f"| `{name}` |" in section, name
