"""`test-alert` through notify's test sender, against a real local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from supervisor.app import TestAlertError, send_test_alert
from supervisor.config import parse_config


class _Hook(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.bodies: list[dict[str, object]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"


class _Handler(BaseHTTPRequestHandler):
    server: _Hook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.bodies.append(json.loads(body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _config(url: str) -> str:
    return f"""
[channels.console]
kind = "console"

[channels.hooks]
kind = "webhook"
url = "{url}"
timeout = "2s"

[channels.slack]
kind = "slack"
webhook_url = ""
"""


def test_every_enabled_channel_gets_one_test_notification(hook: _Hook) -> None:
    config = parse_config(_config(hook.url), env={})
    lines = send_test_alert(config)
    assert lines == [
        "console: test notification delivered (console)",
        "hooks: test notification delivered (webhook)",
    ]
    (body,) = hook.bodies
    assert body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "TestAlert"}


def test_a_refused_delivery_is_reported_with_the_ones_that_worked(hook: _Hook) -> None:
    hook.status = 500
    config = parse_config(_config(hook.url), env={})
    with pytest.raises(TestAlertError) as caught:
        send_test_alert(config)
    assert caught.value.exit_status == 1
    assert caught.value.delivered == ("console: test notification delivered (console)",)
    assert str(caught.value).startswith("hooks: retryable: HTTP 500")


def test_no_enabled_channel() -> None:
    config = parse_config('[channels.slack]\nkind = "slack"\nwebhook_url = ""\n', env={})
    with pytest.raises(TestAlertError, match="no enabled channel to send to"):
        send_test_alert(config)
