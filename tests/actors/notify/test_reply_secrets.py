"""A receiver's reply never carries a channel's secret into a reason (the outbox's last_error,
the test-alert answer, the log): against a real local receiver that echoes what it was sent."""

from __future__ import annotations

import json
import logging

import pytest
import trio

from actors.clock import FixedClock
from actors.notify.channels import WebhookChannel
from actors.notify.channels.base import send_bounded
from actors.notify.channels.webhook import WebhookChannelConfig
from actors.notify.outcome import Delivered
from tests.actors.notify.factories import channel_config, channel_context, make_notification
from tests.actors.notify.servers import Answer, ScriptedReceiver, serve_receiver

TOKEN = "rcv-SECRET-45ab9"


def _echoes(body: bytes) -> list[Answer]:
    return [Answer(401, body, (("Content-Type", "application/json"),))]


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps({"message": f"token Bearer {TOKEN} refused"}).encode(),
        json.dumps({"error": f"header {f'Bearer {TOKEN}'.encode()!r}"}).encode(),
        f"rejected Authorization: Bearer {TOKEN}".encode(),
        json.dumps({"message": f"key {TOKEN}\n"}).encode(),
        json.dumps({"message": "sig " + "hmac-key-0042"}).encode(),
    ],
    ids=["json", "repr", "text", "escaped", "signing-secret"],
)
async def test_a_reply_echoing_a_secret_is_redacted(nursery: trio.Nursery, reply: bytes) -> None:
    receiver = ScriptedReceiver(script=_echoes(reply))
    url = await serve_receiver(nursery, receiver)
    config = channel_config(
        WebhookChannelConfig,
        url=f"{url}/hook",
        headers={"Authorization": f"Bearer {TOKEN}"},
        secret="hmac-key-0042",
        timeout="5s",
    )
    channel = WebhookChannel(
        "hooks", config, channel_context(clock=FixedClock(), logger=logging.getLogger("t"))
    )
    try:
        outcome = await send_bounded(channel, make_notification(), show_error=True)
    finally:
        await channel.aclose()
    assert not isinstance(outcome, Delivered)
    assert receiver.received[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in outcome.reason
    assert "hmac-key-0042" not in outcome.reason
    assert "***" in outcome.reason
