"""Hostile and broken receivers: bounded reads, whole-request deadlines, garbage headers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio.testing

from actors.clock import FixedClock
from actors.notify.channels import SlackChannel, WebhookChannel
from actors.notify.channels.base import MAX_RESPONSE_BYTES
from actors.notify.channels.slack import SlackChannelConfig
from actors.notify.channels.webhook import WebhookChannelConfig
from actors.notify.outcome import Permanent, Retry, parse_retry_after
from tests.actors.notify.factories import channel_config, channel_context, make_notification

LOG = logging.getLogger("test.notify.hardening")
NOW = 1_700_000_000.0


def _webhook(handler: object, *, timeout: float = 10.0) -> WebhookChannel:
    return WebhookChannel(
        "hooks",
        channel_config(
            WebhookChannelConfig, url="http://r.test/hook/SECRET", timeout=f"{timeout:g}s"
        ),
        channel_context(
            clock=FixedClock(),
            logger=LOG,
            transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        ),
    )


async def test_a_huge_answer_is_never_read_whole() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"x" * 65536
        for _ in range(2000):  # 128 MiB if anyone read it all
            await trio.lowlevel.checkpoint()  # as every socket read does
            sent += len(chunk)
            yield chunk

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=endless())

    channel = _webhook(handler)
    outcome = await channel.send(make_notification())
    await channel.aclose()
    assert isinstance(outcome, Retry)
    assert outcome.reason.startswith("HTTP 500: xxx")
    assert sent <= 4 * MAX_RESPONSE_BYTES


async def test_a_dripping_receiver_is_cut_at_the_channel_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def drip() -> AsyncIterator[bytes]:
        while True:
            await trio.sleep(1)  # each read is quick, the whole answer never ends
            yield b"o"

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=drip())

    config = channel_config(
        SlackChannelConfig, webhook_url="https://hooks.slack.test/services/T/B/SECRET", timeout="5s"
    )
    channel = SlackChannel(
        "slack", config, channel_context(logger=LOG, transport=httpx.MockTransport(handler))
    )
    started = trio.current_time()
    outcome = await channel.send(make_notification(channel="slack"))
    await channel.aclose()
    assert isinstance(outcome, Retry)
    assert "timeout" in outcome.reason
    assert trio.current_time() - started == pytest.approx(5.0)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_not_followed_and_dead_lettered(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Location": "http://elsewhere.test/"})

    outcome = await _webhook(handler).send(make_notification())
    assert isinstance(outcome, Permanent)
    assert "redirect not followed" in outcome.reason


@pytest.mark.parametrize(
    "error", [httpx.ReadError("connection reset by peer"), httpx.RemoteProtocolError("eof")]
)
async def test_resets_mid_answer_are_retried(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    outcome = await _webhook(handler).send(make_notification())
    assert isinstance(outcome, Retry)
    assert "SECRET" not in outcome.reason


async def test_a_non_json_error_page_gives_a_short_reason() -> None:
    page = b"<html><body>" + b"Bad gateway " * 500 + b"</body></html>"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, content=page, headers={"Content-Type": "text/html"})

    outcome = await _webhook(handler).send(make_notification())
    assert isinstance(outcome, Retry)
    assert outcome.reason.startswith("HTTP 502: <html>")
    assert len(outcome.reason) < 400


@pytest.mark.parametrize(
    "value",
    ["nan", "inf", "-5", "1e3", "0x10", "1_0", "\u0663", "soon", "\x00", "Mon, 01 Jan 99999 00:00"],
)
def test_garbage_retry_after_is_ignored(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_an_absurd_retry_after_is_infinite_not_an_error() -> None:
    assert parse_retry_after("9" * 5000, now=NOW) == float("inf")
    assert parse_retry_after(" 120 ", now=NOW) == 120.0
