"""The email channel against a real SMTP server (aiosmtpd) started by the test:
plain, STARTTLS with AUTH, implicit TLS, and the server's 4xx/5xx answers."""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from actors.clock import SystemClock
from actors.notify.channels import EmailChannel
from actors.notify.channels.email import EmailChannelConfig
from actors.notify.outcome import Delivered, Permanent, Retry
from tests.actors.notify.factories import channel_config, channel_context, make_notification
from tests.actors.notify.servers import free_port

LOG = logging.getLogger("test.notify.email")
PASSWORD = "hunter2-secret"


@dataclass
class Handler:
    messages: list[Any] = field(default_factory=list)
    rcpt_answer: str | None = None
    data_answer: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_answer and address.startswith("bad"):
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answer:
            return self.data_answer
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.authenticated)
        )
        return "250 Message accepted"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"monitor"
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _start(handler: Handler, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def plain() -> Iterator[tuple[Handler, int]]:
    handler = Handler()
    for port in _start(handler):
        yield handler, port


def _channel(
    port: int,
    *,
    timeout: float = 5.0,
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


async def test_plain_smtp_delivers_multipart(plain: tuple[Handler, int]) -> None:
    handler, port = plain
    outcome = await _channel(port).send(make_notification("mail-1"))
    assert isinstance(outcome, Delivered)
    [(sender, rcpts, content, _)] = handler.messages
    assert sender == "monitor@example.test"
    assert rcpts == ["ops@example.test"]
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert message["Subject"] == "[FIRING:1] High API Latency"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


async def test_starttls_with_auth(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    handler = Handler()
    for port in _start(
        handler,
        tls_context=server_context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    ):
        ok = _channel(
            port, starttls=True, username="monitor", password=PASSWORD, ssl_context=client_context
        )
        assert isinstance(await ok.send(make_notification()), Delivered)
        assert handler.messages[0][3] is True  # authenticated session

        wrong = _channel(
            port, starttls=True, username="monitor", password="nope", ssl_context=client_context
        )
        outcome = await wrong.send(make_notification())
        assert isinstance(outcome, Permanent)
        assert outcome.reason.startswith("SMTP 535")

        untrusted = _channel(port, starttls=True, username="monitor", password=PASSWORD)
        outcome = await untrusted.send(make_notification())
        assert isinstance(outcome, Permanent)
        assert "certificate" in outcome.reason

        no_tls = _channel(port, username="monitor", password=PASSWORD)
        outcome = await no_tls.send(make_notification())  # server refuses AUTH before STARTTLS
        assert not isinstance(outcome, Delivered)
        assert PASSWORD not in repr(outcome)


# aiosmtpd only counts STARTTLS as TLS when deciding to offer AUTH; on an implicit-TLS port it
# must be told not to require it, and warns about that setting.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
    handler = Handler()
    for port in _start(
        handler,
        ssl_context=server_context,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=False,
    ):
        channel = _channel(
            port, tls=True, username="monitor", password=PASSWORD, ssl_context=client_context
        )
        assert isinstance(await channel.send(make_notification()), Delivered)
        assert len(handler.messages) == 1


@pytest.mark.parametrize(
    ("rcpt", "data", "recipients", "kind", "code"),
    [
        ("450 mailbox busy", None, ["bad@x.test"], Retry, "450"),
        ("550 no such user", None, ["bad@x.test"], Permanent, "550"),
        ("550 no such user", None, ["bad@x.test", "ok@x.test"], Delivered, "bad@x.test"),
        (None, "451 local error", ["ok@x.test"], Retry, "451"),
        (None, "554 rejected as spam", ["ok@x.test"], Permanent, "554"),
    ],
)
async def test_reply_codes(
    plain: tuple[Handler, int],
    rcpt: str | None,
    data: str | None,
    recipients: list[str],
    kind: type,
    code: str,
) -> None:
    handler, port = plain
    handler.rcpt_answer = rcpt
    handler.data_answer = data
    outcome = await _channel(port, to=recipients).send(make_notification())
    assert isinstance(outcome, kind)
    text = outcome.detail if isinstance(outcome, Delivered) else outcome.reason
    assert code in text


async def test_connection_refused_is_retried() -> None:
    outcome = await _channel(free_port()).send(make_notification())
    assert isinstance(outcome, Retry)
