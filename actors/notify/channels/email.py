"""email channel: SMTP with STARTTLS or implicit TLS, AUTH, multipart plain text + HTML.

Sent with the standard library's `smtplib` in a worker thread (`trio.to_thread.run_sync`). The
channel timeout bounds the whole conversation, not only each socket operation: a server that
drips its replies (one byte at a time, each within the socket timeout) would otherwise hold the
channel, and its graceful stop, for as long as it likes. When the deadline passes, or the
delivery is cancelled from outside (stop), the trio side abandons the thread and shuts the
connection down (a duplicate of the socket's descriptor, held until the thread is done, so the
descriptor can never be a reused one); the blocked thread then fails at once and ends.

Reply codes: 4xx retried, 5xx dead-lettered (including authentication refusals, 535); a reply
smtplib cannot parse (garbage, code -1), connection errors and timeouts retried. A refused EHLO
(5xx) falls back to HELO (RFC 5321 4.1.4); a 4xx or garbled EHLO answer is retried. If some
recipients are
refused and others accepted, the message counts as delivered (re-sending would double it for the
accepted ones) and the refusals are reported in the detail. The `Message-ID` is derived from the
notification key, so a retried message can be recognised as the same. The password is never
logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import smtplib
import socket
import ssl
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

import trio
from pydantic import Field, SecretStr, field_validator, model_validator

from actors.configtypes import Secret
from actors.models import AlertStatus, Notification
from actors.notify.channels.base import ChannelContext, KindChannel, redact
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title
from actors.notify.config import ChannelBase
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry, classify_smtp_code

__all__ = ["EmailChannel", "EmailChannelConfig", "build_email"]


class EmailChannelConfig(ChannelBase):
    """kind = "email": SMTP, plain text + HTML."""

    kind: Literal["email"]
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    username: str = ""
    password: Secret = SecretStr("")
    starttls: bool = False
    tls: bool = False
    from_: str = Field(default="blipee-monitor@localhost", alias="from")
    to: tuple[str, ...] = ()

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if address and "@" not in address:
                raise ValueError(f"not an email address: {address!r}")
        return value

    @model_validator(mode="after")
    def _tls_modes(self) -> EmailChannelConfig:
        if self.tls and self.starttls:
            raise ValueError("choose one of tls (implicit TLS) and starttls")
        return self

    def disabled_reason(self) -> str | None:
        if not self.smtp_host.strip():
            return "smtp_host is empty"
        if not any(address.strip() for address in self.to):
            return "no recipient in 'to'"
        return None


class _Conversation:
    """One delivery's connection, shared by the worker thread and the trio side.

    The thread registers the TCP socket as soon as it is connected (`track`); the trio side may
    `abort` at any time after that (or before: the thread then stops at `track`). The duplicate
    descriptor is closed by the thread when it is done (`close`), never while `abort` uses it.
    """

    __slots__ = ("_dup", "_lock", "aborted")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dup: socket.socket | None = None
        self.aborted = False

    def track(self, sock: socket.socket) -> None:
        """Keep a duplicate of `sock` to shut it down from the trio side (worker thread).

        Raises:
            OSError: the delivery was abandoned already.
        """
        with self._lock:
            if self.aborted:
                raise OSError("SMTP delivery abandoned (deadline or stop)")
            self._dup = sock.dup()

    def abort(self) -> None:
        """Shut the connection down so the blocked thread fails now (trio side, never blocks)."""
        with self._lock:
            self.aborted = True
            if self._dup is not None:
                with contextlib.suppress(OSError):  # already closed by the peer
                    self._dup.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release the duplicate descriptor (worker thread, at the end of the conversation)."""
        with self._lock:
            if self._dup is not None:
                self._dup.close()
                self._dup = None


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP whose TCP socket is registered with a `_Conversation` once connected."""

    def __init__(self, conversation: _Conversation, host: str, port: int, timeout: float) -> None:
        self.conversation = conversation
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        try:
            self.conversation.track(sock)
        except OSError:
            sock.close()
            raise
        return sock


class _SMTPSSL(smtplib.SMTP_SSL, _SMTP):
    """Implicit TLS: the TCP socket is registered before the handshake (it may drip too)."""

    def __init__(
        self,
        conversation: _Conversation,
        host: str,
        port: int,
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        self.conversation = conversation
        smtplib.SMTP_SSL.__init__(self, host, port, timeout=timeout, context=context)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _header(text: str) -> str:
    return " ".join(text.split())


def build_email(
    notification: Notification,
    *,
    sender: str,
    recipients: Sequence[str],
    now: float,
    external_url: str = "",
) -> EmailMessage:
    """The multipart/alternative message (plain text + HTML) for `notification` (pure)."""
    message = EmailMessage()
    message["Subject"] = _header(title(notification))
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(now, usegmt=True)
    digest = hashlib.sha256(notification.key.encode("utf-8")).hexdigest()[:40]
    message["Message-ID"] = f"<{digest}@blipee-monitor>"
    message["X-Blipee-Group"] = _header(notification.group_key)[:200]

    plain = [title(notification), ""]
    rows = []
    for alert in notification.alerts:
        state = "FIRING" if alert.status is AlertStatus.FIRING else "RESOLVED"
        labels = ", ".join(f"{k}={v}" for k, v in alert.labels)
        plain += [f"[{state}] {alert_summary(alert)}", f"  labels: {labels}"]
        if alert.value is not None:
            plain.append(f"  value: {alert.value:g}")
        plain.append("")
        colour = "#c0392b" if alert.status is AlertStatus.FIRING else "#27ae60"
        rows.append(
            "<tr>"
            f'<td style="color:{colour};font-weight:bold">{state}</td>'
            f"<td>{html.escape(alert_summary(alert))}</td>"
            f"<td><code>{html.escape(labels)}</code></td>"
            "</tr>"
        )
    held = held_alerts(notification)
    held_html = ""
    if held:
        plain.append(f"Held, blocked by a failing dependency ({len(held)}):")
        plain += [f"  - {held_line(entry)}" for entry in held]
        plain.append("")
        held_html = (
            f"<h3>Held, blocked by a failing dependency ({len(held)})</h3><ul>"
            + "".join(f"<li>{html.escape(held_line(entry))}</li>" for entry in held)
            + "</ul>"
        )
    if external_url:
        plain.append(f"blipee-monitor: {external_url}")
    link = (
        f'<p><a href="{html.escape(external_url, quote=True)}">blipee-monitor</a></p>'
        if external_url
        else ""
    )
    body_html = (
        "<html><body>"
        f"<h2>{html.escape(title(notification))}</h2>"
        '<table border="1" cellpadding="4" cellspacing="0">'
        "<tr><th>state</th><th>summary</th><th>labels</th></tr>"
        + "".join(rows)
        + f"</table>{held_html}{link}</body></html>"
    )
    message.set_content("\n".join(plain))
    message.add_alternative(body_html, subtype="html")
    return message


class EmailChannel(KindChannel[EmailChannelConfig]):
    """Sends notifications by SMTP (TLS with the context's `ssl_context`, None: the system trust
    store)."""

    kind = "email"
    rate = (2.0, 10)

    def __init__(self, name: str, config: EmailChannelConfig, context: ChannelContext) -> None:
        super().__init__(name, config, context)
        self._recipients = [r for r in config.to if r.strip()]

    def secrets(self) -> tuple[str, ...]:
        return (self.config.password.get_secret_value(),)

    async def send(self, notification: Notification) -> Outcome:
        message = build_email(
            notification,
            sender=self.config.from_,
            recipients=self._recipients,
            now=self.clock.now(),
            external_url=self.context.external_url,
        )
        conversation = _Conversation()
        outcome: Outcome = Retry(f"timeout after {self.timeout:g}s (SMTP conversation)")
        done = False
        try:
            with trio.move_on_after(self.timeout):
                outcome = await trio.to_thread.run_sync(
                    self._deliver, message, conversation, abandon_on_cancel=True
                )
                done = True
        finally:
            if not done:  # deadline or an outer cancel: free the thread now
                conversation.abort()
        if isinstance(outcome, Retry):
            return Retry(redact(outcome.reason, self.secrets()), outcome.retry_after)
        if isinstance(outcome, Permanent):
            return Permanent(redact(outcome.reason, self.secrets()))
        return outcome

    def _context(self) -> ssl.SSLContext:
        return self.context.ssl_context or ssl.create_default_context()

    def _deliver(self, message: EmailMessage, conversation: _Conversation) -> Outcome:
        """Blocking SMTP conversation (runs in a worker thread)."""
        try:
            return self._converse(message, conversation)
        finally:
            conversation.close()

    def _converse(self, message: EmailMessage, conversation: _Conversation) -> Outcome:
        config = self.config
        host, port = config.smtp_host, config.smtp_port
        try:
            smtp: _SMTP
            if config.tls:
                smtp = _SMTPSSL(conversation, host, port, self.timeout, self._context())
            else:
                smtp = _SMTP(conversation, host, port, self.timeout)
            with smtp:
                refusal = _greet(smtp)
                if refusal is None and config.starttls:
                    smtp.starttls(context=self._context())
                    refusal = _greet(smtp)
                if refusal is not None:
                    return refusal
                if config.username:
                    smtp.login(config.username, config.password.get_secret_value())
                refused = smtp.send_message(message, config.from_, self._recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            reason = "all recipients refused: " + "; ".join(
                f"{rcpt} {code} {_text(text)}" for rcpt, (code, text) in exc.recipients.items()
            )
            if codes and all(400 <= code <= 499 for code in codes):
                return Retry(reason)
            return Permanent(reason)
        except smtplib.SMTPResponseException as exc:
            return classify_smtp_code(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError as exc:
            return Permanent(f"SMTP server does not support it: {exc}")
        except ssl.SSLCertVerificationError as exc:
            return Permanent(f"TLS certificate not trusted: {exc.verify_message}")
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused
            return Retry(f"{type(exc).__name__}: {exc}")
        if refused:
            return Delivered(f"accepted; refused recipients: {', '.join(sorted(refused))}")
        return Delivered("SMTP 250")


def _greet(smtp: smtplib.SMTP) -> Outcome | None:
    """EHLO, falling back to HELO when refused (5xx); None when greeted, else the outcome.

    smtplib's `ehlo()` returns a refusal instead of raising, and a later `sendmail` would then
    carry on without the server's extensions: check the answer here.
    """
    code, text = smtp.ehlo()
    if code == 250:
        return None
    if 500 <= code <= 599:
        code, text = smtp.helo()
        if code == 250:
            return None
    outcome = classify_smtp_code(code, text)
    if isinstance(outcome, Delivered):  # a 2xx that is not 250: not a greeting
        return Retry(f"unexpected greeting answer {outcome.detail}")
    return Retry(f"EHLO refused: {outcome.reason}") if isinstance(outcome, Retry) else outcome
