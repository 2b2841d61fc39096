"""Structured logs: one line per event, the actor's name, no traceback, no secret."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trio
from pydantic import SecretStr

from supervisor.app import initialize_monitoring
from supervisor.logging_setup import (
    QUIET_LOGGERS,
    REDACTED_LOGGERS,
    JsonFormatter,
    LogfmtFormatter,
    RedactingFilter,
    SecretRedactor,
    configure_logging,
    install_redaction,
    logger_for,
)


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


def test_fields_are_on_every_line_and_kept_when_logging_is_configured_again() -> None:
    """A worker's `worker` field survives a reload (which configures logging again)."""
    first, second = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        configure_logging(format="json", stream=first, fields={"worker": 1})
        logger_for("main").info("started")
        logger_for("main").info("own", extra={"worker": 7})  # a record's own value wins
        configure_logging(format="logfmt", stream=second)
        logger_for("main").info("reloaded")
        configure_logging(format="logfmt", stream=second, fields={})
        logger_for("main").info("plain")
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    lines = [json.loads(line) for line in first.getvalue().splitlines()]
    assert [(line["msg"], line["worker"]) for line in lines] == [("started", 1), ("own", 7)]
    reloaded, plain = second.getvalue().splitlines()
    assert reloaded.endswith("msg=reloaded worker=1")
    assert plain.endswith("msg=plain")


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


SECRET_URL = "https://hooks.example.com/services/T000/B000/secret-path-31337"


@pytest.fixture
def host_log() -> Iterator[io.StringIO]:
    """A host that logs everything at INFO with its own handler and formatter, and leaves the
    HTTP client loggers at their default level."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in REDACTED_LOGGERS}
    before = root.level
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(before)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_fields_that_hold_a_configured_secret_are_redacted() -> None:
    redactor = SecretRedactor([SECRET_URL, "pg-password-1234", "ab"])
    record = logging.LogRecord("blipee.notify", logging.INFO, "", 0, "posting", None, None)
    extras = {
        "url": SECRET_URL,
        "endpoint_url": SECRET_URL.replace(
            "https://hooks.example.com", "https://HOOKS.example.com"
        ),
        "check_url": "http://127.0.0.1:8080/health",
        "token_source": "pg-password-1234",
        "channel": "slack",
        "short": "ab",
    }
    vars(record).update(extras)
    fields = json.loads(JsonFormatter(redactor).format(record))
    assert fields["url"] == "<redacted>"
    assert fields["endpoint_url"] == "<redacted>"  # matched by its path: the host part differs
    assert fields["token_source"] == "<redacted>"
    assert fields["check_url"] == "http://127.0.0.1:8080/health"  # not a secret: shown
    assert (fields["channel"], fields["short"]) == ("slack", "ab")  # too short to be one
    # Without the configured secrets only the names tell (a plain `url` is shown).
    assert json.loads(JsonFormatter().format(record))["url"] == SECRET_URL

    record = logging.LogRecord(
        "blipee.notify", logging.ERROR, "", 0, "POST %s failed", (SECRET_URL,), None
    )
    line = LogfmtFormatter(redactor).format(record)
    assert "secret-path-31337" not in line
    assert 'msg="POST <redacted> failed"' in line


def test_redaction_filter_leaves_the_host_configuration_alone(host_log: io.StringIO) -> None:
    remove = install_redaction(SecretRedactor([SECRET_URL]))
    try:
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        with httpx.Client(transport=transport) as client:
            client.post(SECRET_URL, json={})
            client.get("https://example.com/public")
        assert logging.getLogger("httpx").level == logging.NOTSET  # levels untouched
    finally:
        remove()
        remove()  # idempotent
    text = host_log.getvalue()
    assert "secret-path-31337" not in text
    assert 'httpx INFO HTTP Request: POST <redacted> "HTTP/1.1 200 OK"' in text
    assert "GET https://example.com/public" in text  # the host's own requests still show
    for name in REDACTED_LOGGERS:
        assert not [f for f in logging.getLogger(name).filters if isinstance(f, RedactingFilter)]


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.delivered = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/T000/secret-path-31337"


class _Receive(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.delivered.set()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


async def test_embedded_monitor_keeps_the_webhook_url_out_of_the_host_logs(
    tmp_path: Path, receiver: _Receiver, host_log: io.StringIO
) -> None:
    source = f"""
[storage]
path = "{tmp_path / "m.db"}"

[channels.hooks]
kind = "webhook"
url = "{receiver.url}"
timeout = "5s"
"""
    async with initialize_monitoring(source, serve_http=False, env={}) as monitoring:
        monitoring.alerting.add_rule(
            {
                "id": "no-errors-seen",
                "name": "No Errors Seen",
                "condition": {"metric": "agent_errors_total", "aggregate": "absent"},
                "channels": ["hooks"],
            }
        )
        with trio.fail_after(20):
            delivered = await trio.to_thread.run_sync(receiver.delivered.wait, 15)
        assert delivered
        assert logging.getLogger("httpx").level == logging.NOTSET  # the host's setting
    httpx_filters = list(logging.getLogger("httpx").filters)
    text = host_log.getvalue()
    assert "HTTP Request: POST <redacted>" in text  # the host still sees the delivery
    assert "secret-path-31337" not in text
    assert not [f for f in httpx_filters if isinstance(f, RedactingFilter)]  # removed on stop
