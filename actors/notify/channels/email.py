"""email channel: SMTP with STARTTLS or implicit TLS, AUTH, multipart plain text + HTML.

Sent with the standard library's `smtplib` in a worker thread (`trio.to_thread.run_sync`), with
the channel timeout on the socket. Reply codes: 4xx retried, 5xx dead-lettered (including
authentication refusals, 535); connection errors and timeouts retried. If some recipients are
refused and others accepted, the message counts as delivered (re-sending would double it for the
accepted ones) and the refusals are reported in the detail. The `Message-ID` is derived from the
notification key, so a retried message can be recognised as the same. The password is never
logged.
"""

from __future__ import annotations

import hashlib
import html
import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

import trio

from actors.clock import Clock
from actors.models import AlertStatus, Notification
from actors.notify.channels.base import Channel, redact
from actors.notify.channels.render import alert_summary, held_alerts, held_line, title
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry, classify_smtp_code

__all__ = ["EmailChannel", "build_email"]


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


class EmailChannel(Channel):
    """Sends notifications by SMTP."""

    kind = "email"
    rate = (2.0, 10)

    def __init__(
        self,
        name: str,
        *,
        smtp_host: str,
        smtp_port: int = 25,
        sender: str,
        recipients: Sequence[str],
        username: str = "",
        password: str = "",
        starttls: bool = False,
        tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        external_url: str = "",
        send_resolved: bool = True,
        timeout: float = 10.0,
        clock: Clock,
        logger: logging.Logger,
    ) -> None:
        super().__init__(
            name, send_resolved=send_resolved, timeout=timeout, clock=clock, logger=logger
        )
        self._host = smtp_host
        self._port = smtp_port
        self._sender = sender
        self._recipients = [r for r in recipients if r.strip()]
        self._username = username
        self._password = password
        self._starttls = starttls
        self._tls = tls
        self._ssl_context = ssl_context
        self._external_url = external_url

    def secrets(self) -> tuple[str, ...]:
        return (self._password,)

    async def send(self, notification: Notification) -> Outcome:
        message = build_email(
            notification,
            sender=self._sender,
            recipients=self._recipients,
            now=self.clock.now(),
            external_url=self._external_url,
        )
        outcome = await trio.to_thread.run_sync(self._deliver, message)
        if isinstance(outcome, Retry):
            return Retry(redact(outcome.reason, self.secrets()), outcome.retry_after)
        if isinstance(outcome, Permanent):
            return Permanent(redact(outcome.reason, self.secrets()))
        return outcome

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _deliver(self, message: EmailMessage) -> Outcome:
        """Blocking SMTP conversation (runs in a worker thread)."""
        try:
            smtp: smtplib.SMTP
            if self._tls:
                smtp = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self.timeout)
            with smtp:
                smtp.ehlo()
                if self._starttls:
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if self._username:
                    smtp.login(self._username, self._password)
                refused = smtp.send_message(message, self._sender, self._recipients)
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
