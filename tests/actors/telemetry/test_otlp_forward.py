"""SpanForwarder against a real local HTTP server: order, headers, drops, failures."""

from __future__ import annotations

from collections.abc import Callable

import trio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from actors.telemetry.otlp_forward import SpanForwarder
from tests.actors.telemetry.otlp_requests import traces_request
from tests.e2e.harness import HttpPeer


async def _wait(condition: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.01)


async def test_batches_are_posted_in_order_with_the_headers() -> None:
    with HttpPeer() as collector:
        forwarder = SpanForwarder(
            endpoint=f"{collector.url}/v1/traces", headers={"api-key": "k1"}, timeout=5
        )
        forwarder.submit(traces_request([("a", 0.1, 0)]))
        forwarder.submit(traces_request([("b", 0.1, 0)]))
        async with trio.open_nursery() as nursery:
            await nursery.start(forwarder.run)
            await _wait(lambda: forwarder.statistics().forwarded == 2)
            nursery.cancel_scope.cancel()
        received = collector.received("/v1/traces")
        names = [
            ExportTraceServiceRequest.FromString(r.body)
            .resource_spans[0]
            .scope_spans[0]
            .spans[0]
            .name
            for r in received
        ]
        assert names == ["a", "b"]
        assert received[0].headers["api-key"] == "k1"
        assert received[0].headers["content-type"] == "application/x-protobuf"


async def test_a_full_queue_drops_the_oldest_and_failures_are_counted() -> None:
    with HttpPeer() as collector:
        collector.set_status(503)
        forwarder = SpanForwarder(endpoint=f"{collector.url}/v1/traces", capacity=1, timeout=5)
        for name in ("a", "b", "c"):
            forwarder.submit(traces_request([(name, 0.1, 0)]))
        assert forwarder.statistics().dropped == 2
        async with trio.open_nursery() as nursery:
            await nursery.start(forwarder.run)
            await _wait(lambda: forwarder.statistics().failed == 1)
            nursery.cancel_scope.cancel()
        (only,) = collector.received("/v1/traces")
        assert (
            ExportTraceServiceRequest.FromString(only.body)
            .resource_spans[0]
            .scope_spans[0]
            .spans[0]
            .name
            == "c"
        )
