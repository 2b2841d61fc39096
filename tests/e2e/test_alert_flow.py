"""An alert end to end: a check target the test controls fails, the rule on
`health_check_up{check="x"}` fires, the webhook receiver gets the signed Alertmanager v4 payload;
the target recovers and a `resolved` POST follows."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import HttpPeer, Monitor, Recorded, wait_until

WEBHOOK_SECRET = "e2e-webhook-hmac-secret-31337"
HOOK_PATH = "/hooks/e2e-private-path-5d41402a"

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[storage]
path = "{db}"

[supervisor]
shutdown_timeout = "5s"

[log]
format = "json"

[[checks]]
name = "x"
kind = "http"
url = "{target}/health"
interval = "200ms"
timeout = "200ms"

[[rules]]
id = "x-down"
name = "X Down"
severity = "critical"
channels = ["hooks"]
summary = "x is down"
[rules.condition]
metric = "health_check_up"
labels = {{ check = "x" }}
aggregate = "last"
window = "1m"
operator = "=="
threshold = 0

[routing]
group_by = ["alertname"]
group_wait = "0s"
group_interval = "300ms"
repeat_interval = "1h"

[channels.hooks]
kind = "webhook"
url = "{receiver}{hook}"
secret = "${{E2E_WEBHOOK_SECRET}}"
timeout = "2s"
"""


# Each test gets its own target, receiver and monitor (and database): no test relies on what
# another one did, so they pass alone and in any order.
@pytest.fixture
def monitor(tmp_path: Path, target: HttpPeer, receiver: HttpPeer) -> Iterator[Monitor]:
    config = tmp_path / "alerts.toml"
    config.write_text(
        CONFIG.format(
            db=tmp_path / "monitor.db", target=target.url, receiver=receiver.url, hook=HOOK_PATH
        )
    )
    proc = Monitor(config, env={"E2E_WEBHOOK_SECRET": WEBHOOK_SECRET})
    try:
        proc.start()
        yield proc
    finally:
        status = proc.stop()
    assert status == 0, proc.log()[-4000:]


def _posts(receiver: HttpPeer, status: str) -> list[Recorded]:
    out = []
    for request in receiver.received(HOOK_PATH):
        body: Any = request.json()
        if request.method == "POST" and body.get("status") == status:
            out.append(request)
    return out


def _assert_signed(request: Recorded) -> None:
    signature = request.headers.get("x-signature", "")
    timestamp = signature.partition(",")[0].removeprefix("t=")
    signed = f"{timestamp}.".encode() + request.body
    expected = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert signature == f"t={timestamp},sha256={expected}", signature
    legacy = hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers.get("x-signature-legacy") == f"sha256={legacy}"


def _fire(api: httpx.Client, target: HttpPeer, receiver: HttpPeer) -> Recorded:
    """Let check x pass with nothing sent, then fail its target; the firing POST received."""
    wait_until(
        lambda: api.get("/api/v1/checks/x").json().get("status") == "pass",
        "check x to pass",
    )
    assert receiver.received(HOOK_PATH) == []
    target.set_status(500)
    return wait_until(lambda: _posts(receiver, "firing"), "the firing POST", timeout=10)[0]


def test_a_failing_target_fires_then_resolves_on_the_webhook(
    monitor: Monitor, target: HttpPeer, receiver: HttpPeer
) -> None:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        request = _fire(api, target, receiver)
        payload: Any = request.json()
        assert payload["version"] == "4"
        assert payload["status"] == "firing"
        assert request.headers["content-type"].startswith("application/json")
        alert = payload["alerts"][0]
        assert alert["status"] == "firing"
        assert alert["labels"]["alertname"] == "X Down"
        assert alert["labels"]["check"] == "x"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["rule"] == "x-down"
        assert alert["annotations"]["summary"] == "x is down"
        assert "startsAt" in alert
        assert payload["groupLabels"] == {"alertname": "X Down"}
        _assert_signed(request)

        alerts = api.get("/api/v1/alerts").json()["alerts"]
        assert [a["labels"]["alertname"] for a in alerts] == ["X Down"]
        assert alerts[0]["state"] == "firing"

        target.set_status(200)
        resolved = wait_until(lambda: _posts(receiver, "resolved"), "the resolved POST", timeout=10)
        payload = resolved[0].json()
        assert payload["alerts"][0]["status"] == "resolved"
        assert payload["alerts"][0]["labels"]["alertname"] == "X Down"
        assert payload["alerts"][0]["endsAt"] > payload["alerts"][0]["startsAt"]
        _assert_signed(resolved[0])
        assert len(_posts(receiver, "firing")) == 1

        wait_until(lambda: api.get("/api/v1/alerts").json()["alerts"] == [], "no active alert")
        notifications = api.get("/api/v1/notifications").json()
        assert len(notifications["deliveries"]) >= 2
        # The webhook URL and its secret are secrets: never served.
        for path in ("/api/v1/notifications", "/api/v1/alerts", "/api/v1/actors", "/"):
            text = api.get(path).text
            assert HOOK_PATH not in text, path
            assert WEBHOOK_SECRET not in text, path

    with httpx.Client(base_url=monitor.metrics, timeout=5.0) as scraper:
        text = scraper.get("/metrics").text
    assert 'notifications_total{channel="hooks",result=' in text
    assert HOOK_PATH not in text


def test_the_webhook_secret_and_url_are_never_logged(
    monitor: Monitor, target: HttpPeer, receiver: HttpPeer
) -> None:
    with httpx.Client(base_url=monitor.api, timeout=5.0) as api:
        _fire(api, target, receiver)
    log = monitor.log()
    assert WEBHOOK_SECRET not in log
    assert HOOK_PATH not in log
