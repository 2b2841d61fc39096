"""The HTTP plumbing every HTTP channel kind (all but console and email) shares.

HTTP channels share one `httpx.AsyncClient` per channel, built over an injectable transport
(`httpx.MockTransport` in tests); `aclose()` releases it. When `tracer_provider` is set (an
OpenTelemetry SDK provider: the composition root sets it when OTLP export is configured) the
client is instrumented: one client span per request, trace context propagated.

httpx is imported when an `HttpChannel` is built (and by the methods that use it), never at
module level: every channel kind's module, with its config model, is imported when the
configuration is parsed, and a process whose channels are only console and email never loads
httpx. The HTTP channel kinds name httpx only in annotations (under TYPE_CHECKING).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, TypeAlias

import trio

from actors.notify.channels.base import (
    MAX_RESPONSE_BYTES,
    ChannelContext,
    ConfigT,
    KindChannel,
    redact,
)
from actors.notify.outcome import Delivered, Outcome, Permanent, Retry, classify_http

if TYPE_CHECKING:
    import httpx
    from opentelemetry.trace import TracerProvider

__all__ = ["HttpChannel", "Judge"]

Judge: TypeAlias = Callable[[int, bytes, Outcome], Outcome]
"""A kind's reading of an answer: (status, body, the shared classification) -> the outcome.

For receivers that say more in the body than in the status line (Telegram's `{"ok": false}`,
a `retry_after` in Discord's or Telegram's JSON). The body is at most `MAX_RESPONSE_BYTES`; a
judge is pure and never raises (a reason it writes is redacted like the others)."""


class HttpChannel(KindChannel[ConfigT]):
    """A channel kind that POSTs JSON to a receiver through one httpx client.

    Takes the context's `transport` and `tracer_provider`; building one imports httpx.
    """

    def __init__(self, name: str, config: ConfigT, context: ChannelContext) -> None:
        import httpx  # noqa: F401  (the first HTTP channel built loads it, not the config)

        super().__init__(name, config, context)
        self.tracer_provider = context.tracer_provider
        self._transport = context.transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        import httpx

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
        judge: Judge | None = None,
    ) -> Outcome:
        """POST `body` (JSON unless `headers` say otherwise) to `url` and classify the answer.

        `accept_body`: when set, a status in `ok` is a success only if the body (stripped) equals
        it (Slack's "ok"); anything else is retried as an unexpected answer. `judge`: when set,
        it has the last word on an answer (not on a transport failure), given the status, the
        body read and the classification above.
        """
        import httpx

        merged = {"Content-Type": "application/json"}
        merged.update(headers or {})
        content = b""
        # Built before the clock starts: the timeout bounds the exchange with the receiver, not
        # the first use's construction of the client (its TLS context: 0.15 s of CPU, more than
        # 0.5 s of wall time on a loaded machine, which made a first attempt time out).
        client = self._http()
        try:
            with trio.move_on_after(self.timeout) as deadline:
                async with client.stream("POST", url, content=body, headers=merged) as response:
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
                outcome = Retry(f"unexpected answer HTTP {response.status_code}: {snippet}")
        if judge is not None:
            outcome = judge(response.status_code, content, outcome)
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
    import httpx

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
