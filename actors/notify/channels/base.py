"""The one small interface every channel implements, and the HTTP plumbing they share.

A channel turns a `Notification` into one request to its receiver and says how it went as an
`Outcome` (Delivered, Retry, Permanent): the notifier classifies its own failures. It never
raises for a delivery failure and never logs or returns its secrets (URLs with tokens, routing
keys, passwords): every reason passes through `redact()`.

HTTP channels share one `httpx.AsyncClient` per channel, built over an injectable transport
(`httpx.MockTransport` in tests); `aclose()` releases it. When `tracer_provider` is set (an
OpenTelemetry SDK provider: the composition root sets it when OTLP export is configured) the
client is instrumented: one client span per request, trace context propagated.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

import httpx
import trio

from actors.clock import Clock
from actors.models import Notification
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry, classify_http

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["MAX_RESPONSE_BYTES", "Channel", "HttpChannel", "redact", "send_bounded"]

MAX_RESPONSE_BYTES = 64 * 1024
"""At most this much of a receiver's answer is read (the reason needs a few hundred bytes)."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every non-empty secret in `text` with "***"."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class Channel:
    """Base of every channel.

    Attributes:
        name: the channel's name in the configuration ([channels.NAME]).
        kind: console, email, slack, pagerduty, webhook or alertmanager.
        send_resolved: whether resolved notifications are sent.
        timeout: seconds one attempt may take.
        rate: (tokens per second, burst) of the channel's rate limit.
    """

    kind = "channel"
    rate: tuple[float, int] = (5.0, 20)

    def __init__(
        self,
        name: str,
        *,
        send_resolved: bool,
        timeout: float,
        clock: Clock,
        logger: logging.Logger,
    ) -> None:
        self.name = name
        self.send_resolved = send_resolved
        self.timeout = timeout
        self.clock = clock
        self.logger = logger

    async def send(self, notification: Notification) -> Outcome:
        """Deliver one notification; never raises for a delivery failure."""
        raise NotImplementedError

    async def maintain(self) -> None:
        """Background work the channel needs while it runs (re-sending); none by default.

        Run by the channel's delivery actor next to its delivery loop; may return at once.
        """

    async def discard(self, notification: Notification) -> None:
        """`notification` will never be sent (skipped by `send_resolved = false`, or
        dead-lettered): drop whatever the channel keeps for it. Nothing by default.

        Never raises for a store failure (the channel logs it).
        """

    async def aclose(self) -> None:
        """Release the channel's resources (idempotent)."""

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs or reasons."""
        return ()

    def describe(self) -> str:
        """A log-safe description: kind and name only."""
        return f"{self.kind} channel {self.name!r}"


async def send_bounded(
    channel: Channel,
    notification: Notification,
    *,
    logger: logging.Logger | None = None,
    show_error: bool = False,
) -> Outcome:
    """`channel.send(notification)` bounded by the channel timeout; never raises but Cancelled.

    The cancel scope allows one second more than `channel.timeout` (a channel bounds its own
    requests by it; this catches one that does not). A timeout is a Retry; so is an exception
    from the channel (a bug in one channel must not stop deliveries or hide other channels'
    results): it is logged at ERROR on `logger` with secrets redacted, and the reason names its
    type, plus its redacted message when `show_error` (test-alert shows it to a person; the
    outbox keeps only the type).
    """
    timeout = channel.timeout
    outcome: Outcome = Retry(f"timeout after {timeout:g}s")
    with trio.move_on_after(timeout + 1.0):
        try:
            outcome = await channel.send(notification)
        except Exception as exc:
            message = redact(str(exc), channel.secrets())
            if logger is not None:
                logger.error(
                    "%s: unexpected error: %s: %s", channel.describe(), type(exc).__name__, message
                )
            reason = f"internal error: {type(exc).__name__}"
            outcome = Retry(f"{reason}: {message}" if show_error else reason)
    return outcome


class HttpChannel(Channel):
    """A channel that POSTs JSON to a receiver through one httpx client."""

    def __init__(
        self,
        name: str,
        *,
        send_resolved: bool,
        timeout: float,
        clock: Clock,
        logger: logging.Logger,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            name, send_resolved=send_resolved, timeout=timeout, clock=clock, logger=logger
        )
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.tracer_provider: TracerProvider | None = None
        """Instrument the client with this provider's tracer (None: no spans, no cost)."""

    def _http(self) -> httpx.AsyncClient:
        # Built on first use and again after aclose(), so a restarted delivery actor can reuse
        # the channel object.
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                headers={"User-Agent": "blipee-monitor", "Accept-Encoding": "identity"},
            )
            if self.tracer_provider is not None:
                _instrument(self._client, self.tracer_provider)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = range(200, 300),
        accept_body: str | None = None,
    ) -> Outcome:
        """POST `body` (JSON) to `url` and classify the answer.

        `accept_body`: when set, a status in `ok` is a success only if the body (stripped) equals
        it (Slack's "ok"); anything else is retried as an unexpected answer.
        """
        merged = {"Content-Type": "application/json"}
        merged.update(headers or {})
        content = b""
        try:
            with trio.move_on_after(self.timeout) as deadline:
                async with self._http().stream(
                    "POST", url, content=body, headers=merged
                ) as response:
                    content = await _read_capped(response, MAX_RESPONSE_BYTES)
        except httpx.TimeoutException as exc:
            return Retry(self._reason(f"timeout ({type(exc).__name__})"))
        except httpx.TransportError as exc:
            return Retry(self._reason(f"{type(exc).__name__}: {exc}"))
        except httpx.HTTPError as exc:  # bad URL and other request errors: not worth retrying
            return Permanent(self._reason(f"{type(exc).__name__}: {exc}"))
        if deadline.cancelled_caught:
            return Retry(f"timeout after {self.timeout:g}s")
        outcome = classify_http(
            response.status_code, response.headers, content, now=self.clock.now(), ok=ok
        )
        if isinstance(outcome, Delivered) and accept_body is not None:
            text = content.decode("utf-8", "replace")
            if text.strip() != accept_body:
                snippet = " ".join(text.split())[:100]
                return Retry(
                    self._reason(f"unexpected answer HTTP {response.status_code}: {snippet}")
                )
        if isinstance(outcome, Retry):
            return Retry(self._reason(outcome.reason), outcome.retry_after)
        if isinstance(outcome, Permanent):
            return Permanent(self._reason(outcome.reason))
        return outcome

    def _reason(self, text: str) -> str:
        return redact(text, self.secrets())


def _instrument(client: httpx.AsyncClient, tracer_provider: TracerProvider) -> None:
    # Imported here: the instrumentation costs an import only when tracing is configured. No
    # global provider is read or set (metrics of the instrumentation go to a no-op provider).
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    HTTPXClientInstrumentor.instrument_client(
        client, tracer_provider=tracer_provider, meter_provider=NoOpMeterProvider()
    )


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """Up to `limit` bytes of `response`'s body; the rest is never read.

    Raw bytes: requests ask for `Accept-Encoding: identity`, so there is no decompression bomb to
    defuse (a receiver that compresses anyway gives a garbled reason, nothing worse). Reading
    stops by cancelling a scope rather than by `break`: the cancellation is raised inside the
    transport's read and unwinds httpx's chain of stream generators, which a `break` would leave
    unfinished.
    """
    try:
        return response.content[:limit]  # already in memory (a transport that reads eagerly)
    except httpx.ResponseNotRead:
        pass
    chunks: list[bytes] = []
    size = 0
    with trio.CancelScope() as enough:
        async for chunk in response.aiter_raw():
            if size < limit:
                chunks.append(chunk[: limit - size])
                size += len(chunks[-1])
            if size >= limit:
                enough.cancel()  # delivered at the transport's next read (a checkpoint)
    return b"".join(chunks)
