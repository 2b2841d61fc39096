"""httpx is loaded only by a process that configures an HTTP notification channel.

Each scenario runs in a fresh interpreter (`sys.executable -c`): in this process other tests have
imported httpx long ago. The HTTP channel classes stay importable from `actors.notify.channels`.
Every channel kind's module is imported with the configuration (its config model parses its
table): what must stay unloaded is httpx itself (and its OpenTelemetry instrumentation).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import actors.notify.channels as channels_package
from actors.notify.channels import Channel, HttpChannel, SlackChannel, WebhookChannel
from actors.notify.channels.http import HttpChannel as HttpChannelImpl
from actors.notify.channels.webhook import WebhookChannel as WebhookChannelImpl

ROOT = Path(__file__).resolve().parents[3]

BUILD_APP = """
import json, sys
from pathlib import Path
from supervisor.app import App
HTTPX_MODULES = ("httpx", "opentelemetry.instrumentation.httpx")
from supervisor.config import parse_config

app = App(parse_config(Path(sys.argv[1]).read_text(), env={}), env={}, serve_http=False)
print(json.dumps({
    "channels": {name: type(ch).__name__ for name, ch in sorted(app.notify.channels.items())},
    "loaded": sorted(m for m in HTTPX_MODULES if m in sys.modules),
}))
"""

BUILD_TRACED_WEBHOOK = """
import json, logging, sys
from opentelemetry.trace import NoOpTracerProvider
from actors.clock import SystemClock
from actors.notify.channels import ChannelContext, build_channel
from actors.notify.channels.webhook import WebhookChannelConfig

provider = NoOpTracerProvider()
config = WebhookChannelConfig(kind="webhook", url="http://127.0.0.1:9/hook")
log = logging.getLogger("t")
context = ChannelContext(clock=SystemClock(), logger=log, tracer_provider=provider)
channel = build_channel("hooks", config, context)
print(json.dumps({
    "type": type(channel).__name__,
    "traced": getattr(channel, "tracer_provider", None) is provider,
}))
"""


PARSE_CONFIG = """
import json, sys
from pathlib import Path
from supervisor.config import parse_config

config = parse_config(Path(sys.argv[1]).read_text(), env={})
print(json.dumps({
    "kinds": sorted(c.kind for c in config.channels.values()),
    "httpx": "httpx" in sys.modules,
}))
"""


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _config(tmp_path: Path, channels: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [server]
            listen = "127.0.0.1:0"
            metrics_listen = "127.0.0.1:0"

            [storage]
            path = "{tmp_path / "m.db"}"

            [[checks]]
            name = "web"
            kind = "http"
            url = "http://127.0.0.1:9/"

            [[rules]]
            id = "r1"
            name = "R1"
            channels = ["console"]
            condition = {{ metric = "agent_errors_total", aggregate = "increase", threshold = 1 }}

            [channels.console]
            kind = "console"
            """
        )
        + textwrap.dedent(channels)
    )
    return path


def test_console_and_email_channels_do_not_import_httpx(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        """
        [channels.mail]
        kind = "email"
        smtp_host = "127.0.0.1"
        to = ["ops@example.com"]
        """,
    )
    result = _run(BUILD_APP, str(path))
    assert result["channels"] == {"console": "ConsoleChannel", "mail": "EmailChannel"}
    assert result["loaded"] == []


def test_a_webhook_channel_builds_and_imports_httpx(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        """
        [channels.hooks]
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        """,
    )
    result = _run(BUILD_APP, str(path))
    assert result["channels"] == {"console": "ConsoleChannel", "hooks": "WebhookChannel"}
    assert result["loaded"] == ["httpx"]


def test_the_first_http_channel_built_gets_the_tracer_provider() -> None:
    assert _run(BUILD_TRACED_WEBHOOK) == {"type": "WebhookChannel", "traced": True}


def test_http_channel_names_stay_importable_from_the_package() -> None:
    assert HttpChannel is HttpChannelImpl
    assert WebhookChannel is WebhookChannelImpl
    assert issubclass(SlackChannel, HttpChannel)
    assert issubclass(HttpChannel, Channel)
    for name in channels_package.__all__:
        assert getattr(channels_package, name) is not None
        assert name in dir(channels_package)


def test_parsing_http_channels_does_not_import_httpx(tmp_path: Path) -> None:
    # Their config models live in their modules, next to channels that need httpx to send.
    path = _config(
        tmp_path,
        """
        [channels.s]
        kind = "slack"
        webhook_url = "https://hooks.slack.test/x"
        [channels.p]
        kind = "pagerduty"
        routing_key = "k"
        [channels.w]
        kind = "webhook"
        url = "http://127.0.0.1:9/"
        [channels.a]
        kind = "alertmanager"
        url = "http://127.0.0.1:9/"
        """,
    )
    assert _run(PARSE_CONFIG, str(path)) == {
        "kinds": ["alertmanager", "console", "pagerduty", "slack", "webhook"],
        "httpx": False,
    }


def test_an_unknown_package_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchChannel"):
        _ = channels_package.NoSuchChannel  # type: ignore[attr-defined]
