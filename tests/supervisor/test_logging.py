"""Structured logs: one line per event, the actor's name, no traceback, no secret."""

from __future__ import annotations

import io
import json
import logging

import httpx
from pydantic import SecretStr

from supervisor.logging_setup import QUIET_LOGGERS, configure_logging, logger_for


def _emit(fmt: str) -> str:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    configure_logging(format=fmt, level="info", stream=stream)  # type: ignore[arg-type]
    try:
        log = logger_for("notify.slack")
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            log.exception(
                "delivery failed",
                extra={"attempt": 2, "api_token": "tok-123", "url": SecretStr("https://s")},
            )
        logger_for("rules").debug("not shown at info")
        logging.getLogger("supervisor.runtime").warning("child crashed", extra={"actor": "x"})
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    return stream.getvalue()


def test_json_lines() -> None:
    lines = _emit("json").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["actor"] == "notify.slack"
    assert first["level"] == "error"
    assert first["msg"] == "delivery failed"
    assert first["attempt"] == 2
    assert first["api_token"] == "<redacted>"
    assert first["url"] == "**********"
    assert first["error"] == "ValueError: boom\nsecond line"
    second = json.loads(lines[1])
    assert (second["actor"], second["msg"]) == ("supervisor.runtime", "child crashed")


def test_logfmt_lines() -> None:
    text = _emit("logfmt")
    lines = text.splitlines()
    assert len(lines) == 2
    assert "Traceback" not in text
    assert "tok-123" not in text
    assert 'level=error actor=notify.slack msg="delivery failed" attempt=2' in lines[0]
    assert 'error="ValueError: boom\\nsecond line"' in lines[0]


def test_http_client_loggers_never_print_a_request_url() -> None:
    # httpx logs "HTTP Request: POST <full url>" at INFO on every request, httpcore its
    # connections at DEBUG: a Slack or webhook URL carries its secret in the path.
    secret_url = "https://hooks.example.com/services/T000/B000/secret-path-31337"
    stream = io.StringIO()
    root = logging.getLogger()
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    before = (list(root.handlers), root.level)
    configure_logging(format="json", level="debug", stream=stream)
    try:
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        with httpx.Client(transport=transport) as client:
            assert client.post(secret_url, json={}).status_code == 200
        logging.getLogger("httpcore.connection").debug("connect_tcp host=%s", secret_url)
        logging.getLogger("httpx").warning("a library warning still shows")
        logger_for("app").debug("ours still log at debug")
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
    text = stream.getvalue()
    assert "secret-path-31337" not in text
    assert "a library warning still shows" in text
    assert "ours still log at debug" in text
    assert set(QUIET_LOGGERS) >= {"httpx", "httpcore"}
