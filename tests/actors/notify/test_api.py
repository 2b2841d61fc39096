from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from quart_trio import QuartTrio

from actors.clock import FixedClock
from actors.notify.api import create_blueprint
from actors.notify.channels import Channel, ChannelConfig, ConsoleChannel, WebhookChannel
from actors.notify.channels.console import ConsoleChannelConfig
from actors.notify.channels.slack import SlackChannelConfig
from actors.notify.channels.webhook import WebhookChannelConfig
from actors.notify.errors import UnknownChannelError
from actors.notify.outbox import EntryState, Outbox
from actors.notify.testalert import run_test_alert, send_test_alert
from actors.store import Database
from tests.actors.notify.factories import channel_config, channel_context, make_notification
from tests.actors.web.guarded import guarded_app

LOG = logging.getLogger("test.notify.api")
TOKEN = "tok"


def _channels(status: int = 200) -> dict[str, Channel]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="x")

    clock = FixedClock()
    return {
        "console": ConsoleChannel(
            "console",
            channel_config(ConsoleChannelConfig, timeout="1s"),
            channel_context(clock=clock, logger=LOG),
        ),
        "hooks": WebhookChannel(
            "hooks",
            channel_config(WebhookChannelConfig, url="http://r.test/"),
            channel_context(clock=clock, logger=LOG, transport=httpx.MockTransport(handler)),
        ),
    }


@pytest.fixture
async def outbox() -> AsyncIterator[Outbox]:
    with Database(":memory:") as db:
        yield Outbox(database=db, clock=FixedClock())


def _app(outbox: Outbox, channels: dict[str, Channel]) -> QuartTrio:
    blueprint = create_blueprint(channels=channels, outbox=outbox, clock=FixedClock())
    return guarded_app(blueprint, api_token=SecretStr(TOKEN))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_test_alert_needs_token(outbox: Outbox) -> None:
    client = _app(outbox, _channels()).test_client()
    response = await client.post("/api/test-alert")
    assert response.status_code == 401


async def test_test_alert_all_channels_and_listing(outbox: Outbox) -> None:
    client = _app(outbox, _channels()).test_client()
    response = await client.post("/api/test-alert", headers=AUTH)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["ok"] is True
    assert [r["channel"] for r in body["results"]] == ["console", "hooks"]
    listing = await (await client.get("/api/v1/notifications")).get_json()
    assert len(listing["deliveries"]) == 2
    assert all(item["test"] for item in listing["deliveries"])


async def test_test_alert_one_channel_failure_is_reported(outbox: Outbox) -> None:
    client = _app(outbox, _channels(status=400)).test_client()
    response = await client.post("/api/test-alert?channel=hooks", headers=AUTH)
    assert response.status_code == 502
    body = await response.get_json()
    assert body["results"] == [{"channel": "hooks", "result": "rejected", "detail": "HTTP 400: x"}]
    listing = await (await client.get("/api/v1/notifications?channel=hooks")).get_json()
    assert listing["dead_letters"][0]["last_error"] == "HTTP 400: x"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"channel": "nope"}', 404),
        (b'{"channel": 3}', 400),
        (b"[1]", 400),
        (b"{not json", 400),
        (b"[" * 5000 + b"]" * 5000, 400),  # nested past the parser's recursion: was a 500
        (b'{"channel": "console"}', 200),
    ],
)
async def test_test_alert_body(outbox: Outbox, body: bytes, status: int) -> None:
    client = _app(outbox, _channels()).test_client()
    response = await client.post("/api/test-alert", data=body, headers=AUTH)
    assert response.status_code == status
    if status >= 400:
        assert "error" in await response.get_json()


async def test_listing_validates_limit_and_shows_pending(outbox: Outbox) -> None:
    client = _app(outbox, _channels()).test_client()
    await outbox.enqueue(make_notification("p1"))
    assert (await client.get("/api/v1/notifications?limit=0")).status_code == 400
    assert (await client.get("/api/v1/notifications?limit=x")).status_code == 400
    body = await (await client.get("/api/v1/notifications")).get_json()
    assert [p["key"] for p in body["pending"]] == ["p1"]
    assert body["counts"] == {"pending": 1, "delivered": 0, "dead": 0}


async def test_send_test_alert_function(outbox: Outbox) -> None:
    channels = _channels()
    results = await send_test_alert(channels, clock=FixedClock(), channel="console", outbox=outbox)
    assert results["console"].ok
    assert len(await outbox.recent(EntryState.DELIVERED)) == 1
    with pytest.raises(UnknownChannelError, match="enabled channels: console, hooks"):
        await send_test_alert(channels, clock=FixedClock(), channel="slack")


async def test_test_alert_from_config(caplog: pytest.LogCaptureFixture) -> None:
    configs: dict[str, ChannelConfig] = {
        "console": ConsoleChannelConfig(kind="console"),
        "slack": SlackChannelConfig(kind="slack"),
    }
    with caplog.at_level(logging.INFO):
        results = await run_test_alert(configs, logger=LOG, clock=FixedClock())
    assert list(results) == ["console"]
    assert "[TEST] [FIRING:1] TestAlert" in caplog.text
    with pytest.raises(UnknownChannelError):
        await run_test_alert(configs, channel="slack", logger=LOG)
