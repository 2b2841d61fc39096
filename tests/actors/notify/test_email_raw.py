"""The email channel against raw fake SMTP servers (trio TCP): a server that drips its replies
one byte per second, a silent TLS peer, garbage replies and refused EHLO."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from actors.clock import SystemClock
from actors.notify.channels import EmailChannel
from actors.notify.channels.email import EmailChannelConfig
from actors.notify.outcome import Delivered, Permanent, Retry
from tests.actors.notify.factories import channel_config, channel_context, make_notification

LOG = logging.getLogger("test.notify.email.raw")


@dataclass
class FakeSMTP:
    """Answers one connection at a time from a script: `greeting`, then per command verb."""

    greeting: bytes = b"220 fake.test ESMTP\r\n"
    replies: Mapping[str, bytes] = field(default_factory=dict)
    drip: str = ""  # "greeting" or a verb: that reply goes out one byte per second
    commands: list[str] = field(default_factory=list)
    closed: trio.Event = field(default_factory=trio.Event)

    def reply(self, verb: str) -> bytes:
        default = {
            "EHLO": b"250-fake.test\r\n250 8BITMIME\r\n",
            "HELO": b"250 fake.test\r\n",
            "MAIL": b"250 ok\r\n",
            "RCPT": b"250 ok\r\n",
            "DATA": b"354 go on\r\n",
            "QUIT": b"221 bye\r\n",
            "RSET": b"250 ok\r\n",
        }
        return self.replies.get(verb, default.get(verb, b"502 unknown\r\n"))

    async def _send(self, stream: trio.SocketStream, data: bytes, drip: bool) -> None:
        if not drip:
            await stream.send_all(data)
            return
        for byte in data:
            await stream.send_all(bytes([byte]))
            await trio.sleep(1.0)

    async def handle(self, stream: trio.SocketStream) -> None:
        buffer = b""
        in_data = False
        try:
            await self._send(stream, self.greeting, self.drip == "greeting")
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    if in_data:
                        if line == b".":
                            in_data = False
                            await stream.send_all(self.replies.get("END", b"250 queued\r\n"))
                        continue
                    verb = line.split(b" ", 1)[0].decode("ascii", "replace").upper()
                    self.commands.append(verb)
                    await self._send(stream, self.reply(verb), self.drip == verb)
                    if verb == "DATA" and self.reply(verb).startswith(b"354"):
                        in_data = True
                    if verb == "QUIT":
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            self.closed.set()
            await stream.aclose()


async def _serve(nursery: trio.Nursery, server: FakeSMTP) -> int:
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1")
    )
    port: int = listeners[0].socket.getsockname()[1]
    return port


def _channel(
    port: int,
    *,
    timeout: float = 1.0,
    ssl_context: ssl.SSLContext | None = None,
    to: Sequence[str] = ("ops@example.test",),
    **keys: Any,
) -> EmailChannel:
    """An email channel to 127.0.0.1:`port`; `keys` are more keys of its [channels.NAME] table."""
    config = channel_config(
        EmailChannelConfig,
        smtp_host="127.0.0.1",
        smtp_port=port,
        to=list(to),
        timeout=f"{timeout:g}s",
        **{"from": "monitor@example.test"},
        **keys,
    )
    context = channel_context(clock=SystemClock(), logger=LOG, ssl_context=ssl_context)
    return EmailChannel("email", config, context)


@pytest.mark.parametrize("drip", ["greeting", "EHLO", "MAIL"])
async def test_a_dripping_server_cannot_hold_the_channel_past_its_timeout(drip: str) -> None:
    server = FakeSMTP(drip=drip)
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, server)
        with trio.fail_after(5):  # each dripped reply alone would take 10+ s
            outcome = await _channel(port, timeout=1.0).send(make_notification())
        assert isinstance(outcome, Retry)
        assert "timeout" in outcome.reason
        # the abandoned worker thread's connection is shut down, not left dripping
        with trio.fail_after(3):
            await server.closed.wait()
        nursery.cancel_scope.cancel()


async def test_stop_cancels_a_dripping_delivery_at_once() -> None:
    server = FakeSMTP(drip="greeting")
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, server)
        channel = _channel(port, timeout=60.0)  # the channel's own deadline is far away
        with trio.fail_after(5):
            with trio.move_on_after(0.5) as stop:  # the delivery actor's graceful stop
                await channel.send(make_notification())
        assert stop.cancelled_caught
        with trio.fail_after(3):
            await server.closed.wait()
        nursery.cancel_scope.cancel()


async def test_a_silent_implicit_tls_peer_is_abandoned_at_the_deadline() -> None:
    server = FakeSMTP(greeting=b"", drip="never")  # accepts TCP, never answers the handshake
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, server)
        with trio.fail_after(5):
            outcome = await _channel(port, tls=True, timeout=1.0).send(make_notification())
        assert isinstance(outcome, Retry)
        with trio.fail_after(3):
            await server.closed.wait()
        nursery.cancel_scope.cancel()


async def _send_to(server: FakeSMTP, **kwargs: Any) -> Any:
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, server)
        with trio.fail_after(10):
            outcome = await _channel(port, timeout=5.0, **kwargs).send(make_notification())
        nursery.cancel_scope.cancel()
    return outcome


Case = tuple[FakeSMTP, Callable[[Any], bool]]


@pytest.mark.parametrize(
    ("server", "check"),
    [
        # no reply code at all: smtplib reports -1; retried, never dead-lettered
        (
            FakeSMTP(greeting=b"hello there\r\n"),
            lambda o: isinstance(o, Retry) and "not understood" in o.reason,
        ),
        (
            FakeSMTP(replies={"MAIL": b"\xff\xfe garbage\r\n"}),
            lambda o: isinstance(o, Retry),
        ),
        (FakeSMTP(replies={"EHLO": b"ok?\r\n"}), lambda o: isinstance(o, Retry)),
        (
            FakeSMTP(replies={"END": b"25x what\r\n"}),
            lambda o: isinstance(o, Retry) and "not understood" in o.reason,
        ),
    ],
    ids=["greeting", "mail", "ehlo", "end-of-data"],
)
async def test_garbage_replies_are_retried(server: FakeSMTP, check: Callable[[Any], bool]) -> None:
    outcome = await _send_to(server)
    assert check(outcome), outcome


async def test_a_busy_ehlo_is_retried() -> None:
    server = FakeSMTP(replies={"EHLO": b"421 too busy, try later\r\n"})
    outcome = await _send_to(server)
    assert isinstance(outcome, Retry)
    assert "EHLO refused: SMTP 421" in outcome.reason
    assert "MAIL" not in server.commands


async def test_a_refused_ehlo_falls_back_to_helo() -> None:
    server = FakeSMTP(replies={"EHLO": b"502 EHLO not implemented\r\n"})
    outcome = await _send_to(server)
    assert isinstance(outcome, Delivered)
    assert server.commands[:3] == ["EHLO", "HELO", "MAIL"]


async def test_refused_ehlo_and_helo_is_permanent() -> None:
    server = FakeSMTP(replies={"EHLO": b"550 go away\r\n", "HELO": b"550 really, go away\r\n"})
    outcome = await _send_to(server)
    assert isinstance(outcome, Permanent)
    assert "550" in outcome.reason
    assert "MAIL" not in server.commands


async def test_starttls_needs_ehlo() -> None:
    server = FakeSMTP(replies={"EHLO": b"502 no ESMTP here\r\n"})
    outcome = await _send_to(server, starttls=True)
    assert isinstance(outcome, Permanent)
    assert "STARTTLS" in outcome.reason.upper() or "support" in outcome.reason
