"""Delivery outcomes and their classification (the notifier says whether a failure is retryable).

HTTP receivers: 2xx delivered (each channel may demand more, e.g. Slack's body "ok"); 408, 429
and 5xx are retried, honouring `Retry-After` (seconds or an HTTP date; a garbage value is ignored
and the computed backoff applies); a redirect is not followed (the signed body must not go
elsewhere) and, like any other 4xx, is permanent and goes to the dead-letter list with the
reason. Transport errors (connect, read, timeouts) are retried. SMTP: 4xx replies retried, 5xx
permanent.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = [
    "Delivered",
    "Outcome",
    "Permanent",
    "Retry",
    "body_reason",
    "classify_http",
    "classify_smtp_code",
    "parse_retry_after",
]

_REASON_MAX = 300
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Delivered:
    """The receiver accepted the notification."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: try again later (`retry_after` seconds if the receiver said so)."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Permanent:
    """The receiver refused the notification for good; it goes to the dead-letter list."""

    reason: str


Outcome = Delivered | Retry | Permanent


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header value (delta seconds or HTTP date).

    RFC 9110: delta-seconds is one or more ASCII digits (a decimal fraction is tolerated);
    anything else must be an HTTP date with a zone. Returns None for a missing or unparsable
    value (negative numbers, "nan", "1e3", non-ASCII digits...), so a garbage header never means
    "retry at once"; never negative; may be `inf` for an absurdly long number (callers cap it).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)  # float, not int: a 5000-digit value is inf, not a ValueError
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    try:
        return max(0.0, when.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None


def body_reason(body: bytes | str, limit: int = _REASON_MAX) -> str:
    """A short, printable reason from a response body (JSON `message`/`errors` when present)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("message", "error", "status") if data.get(k)]
        errors = data.get("errors")
        if isinstance(errors, list):
            parts.extend(str(e) for e in errors)
        if parts:
            text = "; ".join(parts)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def classify_http(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float,
    ok: Collection[int] = range(200, 300),
) -> Outcome:
    """Classify an HTTP answer of a receiver.

    `headers` must be case-insensitive for `Retry-After` (httpx.Headers is).
    """
    if status in ok:
        return Delivered(f"HTTP {status}")
    reason = f"HTTP {status}"
    detail = body_reason(body)
    if detail:
        reason = f"{reason}: {detail}"
    if status in (408, 429) or 500 <= status <= 599:
        return Retry(reason, parse_retry_after(headers.get("retry-after"), now=now))
    if 300 <= status <= 399:
        return Permanent(f"{reason} (redirect not followed: configure the final URL)")
    if 200 <= status <= 299:
        # A 2xx that the channel does not count as success (e.g. Slack 200 without "ok").
        return Retry(f"unexpected answer {reason}")
    return Permanent(reason)


def classify_smtp_code(code: int, message: bytes | str) -> Outcome:
    """SMTP reply classes: 2xx ok, 4xx transient (retry), 5xx (and other codes) permanent.

    -1 is smtplib's code for a reply it could not parse (garbage, a line without a code): a
    garbled answer says nothing about the message, so it is retried like a broken connection.
    """
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    if code == -1:
        shown = " ".join(text.split())[:_REASON_MAX]
        return Retry(f"SMTP reply not understood: {shown!r}"[:_REASON_MAX])
    reason = f"SMTP {code}: {' '.join(text.split())}"[:_REASON_MAX]
    if 200 <= code <= 299:
        return Delivered(reason)
    if 400 <= code <= 499:
        return Retry(reason)
    return Permanent(reason)
