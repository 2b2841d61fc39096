"""Webhook signatures as a receiver sees them: verified with the example code of
docs/security.md against what a real local receiver got."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from pathlib import Path

import trio

from actors.clock import FixedClock
from actors.notify.channels import WebhookChannel
from actors.notify.channels.webhook import REPLAY_WINDOW, WebhookChannelConfig
from actors.notify.outcome import Delivered
from tests.actors.notify.factories import channel_config, channel_context, make_notification
from tests.actors.notify.servers import ScriptedReceiver, serve_receiver

DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"
SECRET = "whsec-0a1b2c3d"
SENT_AT = 1_767_225_600.0

Verify = Callable[..., bool]


def _documented_verifier() -> Verify:
    text = DOC.read_text()
    section = text[text.index("## Verifying a webhook signature") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "no Python example in the section"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    assert namespace["REPLAY_WINDOW"] == REPLAY_WINDOW
    verify = namespace["verify_signature"]
    assert callable(verify)
    return verify


async def test_the_documented_example_verifies_what_we_send(nursery: trio.Nursery) -> None:
    verify = _documented_verifier()
    receiver = ScriptedReceiver()
    url = await serve_receiver(nursery, receiver)
    config = channel_config(WebhookChannelConfig, url=f"{url}/hook", secret=SECRET, timeout="5s")
    channel = WebhookChannel(
        "hooks",
        config,
        channel_context(clock=FixedClock(SENT_AT), logger=logging.getLogger("t")),
    )
    try:
        assert isinstance(await channel.send(make_notification()), Delivered)
    finally:
        await channel.aclose()
    (got,) = receiver.received
    header = got.headers["x-signature"]
    assert header.startswith(f"t={int(SENT_AT)},sha256=")

    assert verify(got.body, header, SECRET, now=SENT_AT)
    assert verify(got.body, header, SECRET, now=SENT_AT + REPLAY_WINDOW)
    assert verify(got.body, header, SECRET, now=SENT_AT - REPLAY_WINDOW)
    # Replayed after the window, tampered, or signed with another secret: refused.
    assert not verify(got.body, header, SECRET, now=SENT_AT + REPLAY_WINDOW + 1)
    assert not verify(got.body + b" ", header, SECRET, now=SENT_AT)
    assert not verify(got.body, header, "another-secret", now=SENT_AT)
    # A captured signature moved to another time does not verify.
    moved = header.replace(f"t={int(SENT_AT)}", f"t={int(SENT_AT) + 600}")
    assert not verify(got.body, moved, SECRET, now=SENT_AT + 600)
    for garbage in ("", "sha256=abc", "t=x,sha256=abc", "t=1", "nonsense"):
        assert not verify(got.body, garbage, SECRET, now=SENT_AT)

    legacy = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-signature-legacy"] == f"sha256={legacy}"


async def test_each_attempt_is_signed_when_it_is_sent(nursery: trio.Nursery) -> None:
    verify = _documented_verifier()
    receiver = ScriptedReceiver()
    url = await serve_receiver(nursery, receiver)
    clock = FixedClock(SENT_AT)
    config = channel_config(WebhookChannelConfig, url=f"{url}/hook", secret=SECRET, timeout="5s")
    channel = WebhookChannel(
        "hooks", config, channel_context(clock=clock, logger=logging.getLogger("t"))
    )
    try:
        await channel.send(make_notification())
        clock.advance(3600)  # a retry an hour later
        await channel.send(make_notification())
    finally:
        await channel.aclose()
    first, retry = receiver.received
    assert first.body == retry.body
    assert verify(retry.body, retry.headers["x-signature"], SECRET, now=SENT_AT + 3600)
    assert not verify(first.body, first.headers["x-signature"], SECRET, now=SENT_AT + 3600)
