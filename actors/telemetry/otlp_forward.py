"""Forwarding received spans to the configured OTLP traces endpoint (the monitor in front of a
collector).

`SpanForwarder.submit(request)` is what `otlp_traces.TracesIngest` calls for each request it
counted: it queues the protobuf body in a bounded `Mailbox` (the `POST /v1/traces` answer never
waits for the collector; the queue survives a restart of the forwarding actor, and when it is
full the oldest request is dropped and counted: spans are telemetry, never worth blocking the
application for). `run` is the actor: it posts each body to `endpoint` (protobuf, the
`[telemetry]` traces headers and timeout), once; a failure is logged and counted, not retried
(a collector that is down loses those spans, as the SDK's own exporter would after its retries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from supervisor.runtime import Mailbox, Overflow

if TYPE_CHECKING:
    import httpx
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = ["ForwarderStatistics", "SpanForwarder"]

_log = logging.getLogger("blipee_monitor.otlp.forward")


@dataclass(frozen=True, slots=True)
class ForwarderStatistics:
    """Requests `forwarded` (2xx), `failed` (an error answer or no answer), `dropped` (the queue
    was full), and `queued` now."""

    forwarded: int
    failed: int
    dropped: int
    queued: int


class SpanForwarder:
    """Posts received span batches to `endpoint` (a full `/v1/traces` URL). See the module
    docstring. `transport` is the httpx seam for tests."""

    def __init__(
        self,
        *,
        endpoint: str,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        capacity: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._headers = {**(headers or {}), "Content-Type": "application/x-protobuf"}
        self._timeout = timeout
        self._transport = transport
        self._log = logger or _log
        self._queue: Mailbox[bytes] = Mailbox(
            "otlp_forward", capacity, overflow=Overflow.DROP_OLDEST
        )
        self._forwarded = 0
        self._failed = 0

    def submit(self, request: ExportTraceServiceRequest) -> None:
        """Queue `request` for the endpoint (never waits; when full the oldest is dropped)."""
        # DROP_OLDEST never blocks; the queue is never closed.
        self._queue.send_nowait(request.SerializeToString())

    def statistics(self) -> ForwarderStatistics:
        """The counters (see `ForwarderStatistics`)."""
        queue = self._queue.statistics()
        return ForwarderStatistics(self._forwarded, self._failed, queue.dropped, queue.size)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Post each queued batch, in order, until cancelled."""
        import httpx  # here: a monitor that forwards nothing does not load it

        async with httpx.AsyncClient(transport=self._transport) as client:
            task_status.started()
            while True:
                body = await self._queue.receive()
                await self._post(client, body)

    async def _post(self, client: httpx.AsyncClient, body: bytes) -> None:
        import httpx

        with trio.move_on_after(self._timeout) as scope:
            try:
                response = await client.post(self.endpoint, content=body, headers=self._headers)
            except httpx.HTTPError as exc:
                self._failed += 1
                self._log.warning("forwarding spans to %s failed: %s", self.endpoint, exc)
                return
        if scope.cancelled_caught:
            self._failed += 1
            self._log.warning("forwarding spans to %s timed out", self.endpoint)
        elif response.is_success:
            self._forwarded += 1
        else:
            self._failed += 1
            self._log.warning(
                "forwarding spans to %s: answered %s", self.endpoint, response.status_code
            )
