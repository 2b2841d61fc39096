"""POST /v1/metrics and /v1/traces through the guarded app: encodings, gzip, limits, answers."""

from __future__ import annotations

import gzip
import json
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from pydantic import SecretStr
from quart_trio import QuartTrio

from actors.telemetry.otlp_api import create_otlp_blueprint
from actors.telemetry.otlp_ingest import MetricsIngest
from actors.telemetry.otlp_traces import TracesIngest
from actors.telemetry.store import MetricStore
from tests.actors.telemetry.otlp_requests import gauge, metrics_request, traces_request
from tests.actors.web.guarded import guarded_app

TOKEN = "otlp-token"
PB = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-protobuf"}
JS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _app(store: MetricStore, **security: Any) -> QuartTrio:
    security.setdefault("api_token", SecretStr(TOKEN))
    bp = create_otlp_blueprint(metrics=MetricsIngest(store), traces=TracesIngest(store))
    return guarded_app(bp, **security)


GOOD = metrics_request(gauge("queue.depth", [(3.0, {"queue": "a"})]))
BAD = metrics_request(gauge("queue.depth", [(3.0, {"queue": "a"})]), gauge("x", [(1.0, {})]))


async def test_protobuf_in_protobuf_out(store: MetricStore) -> None:
    client = _app(store).test_client()
    response = await client.post("/v1/metrics", data=GOOD.SerializeToString(), headers=PB)
    assert response.status_code == 200
    assert response.content_type == "application/x-protobuf"
    answer = ExportMetricsServiceResponse.FromString(await response.get_data())
    assert not answer.HasField("partial_success")
    assert store.aggregate("queue_depth", {}, "last", 60)


async def test_json_gzip_and_partial_success(store: MetricStore) -> None:
    store.declare("x", "gauge", "the monitor's own")
    client = _app(store).test_client()
    body = gzip.compress(json_format.MessageToJson(BAD).encode())
    response = await client.post(
        "/v1/metrics", data=body, headers={**JS, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    answer = await response.get_json()
    partial = answer["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1"
    assert "x: belongs to the monitor" in partial["errorMessage"]


async def test_json_with_hex_ids_and_traces_red_metrics(store: MetricStore) -> None:
    client = _app(store).test_client()
    document = json_format.MessageToDict(
        traces_request([("GET /api", 0.2, 2), ("GET /api", 0.1, 1), ("GET /api", 0.3, 2)])
    )
    for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["traceId"] = "5b8efff798038103d269b633813fc60c"  # OTLP/JSON: hex
        span["spanId"] = "eee19b7ec3c1b174"
    response = await client.post("/v1/traces", data=json.dumps(document), headers=JS)
    assert response.status_code == 200, await response.get_data()
    assert json_format.Parse(await response.get_data(), ExportTraceServiceResponse()) == (
        ExportTraceServiceResponse()
    )
    totals = store.aggregate("traces_spans_total", {}, "last", 60)
    assert totals == {
        (("service", "blipee-os"), ("span", "GET /api"), ("status", "error")): 2,
        (("service", "blipee-os"), ("span", "GET /api"), ("status", "ok")): 1,
    }
    counts = store.aggregate("traces_span_duration_seconds", {}, "count", 60)
    assert counts == {(("service", "blipee-os"), ("span", "GET /api")): 3}


async def test_bad_bodies_answer_a_status_in_the_request_encoding(store: MetricStore) -> None:
    client = _app(store).test_client()
    response = await client.post("/v1/metrics", data=b"\xff\xff\xff", headers=PB)
    assert response.status_code == 400
    status = status_pb2.Status.FromString(await response.get_data())
    assert "not a valid ExportMetricsServiceRequest" in status.message
    response = await client.post("/v1/metrics", data=b"[1]", headers=JS)
    assert response.status_code == 400
    assert "must be a JSON object" in (await response.get_json())["error"]
    response = await client.post(
        "/v1/metrics", data=b"not gzip", headers={**PB, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 400
    response = await client.post("/v1/metrics", data=b"", headers={**PB, "Content-Type": "a/b"})
    assert response.status_code == 415
    response = await client.post("/v1/metrics", data=b"", headers={**PB, "Content-Encoding": "br"})
    assert response.status_code == 415


async def test_the_body_limit_applies_once_decompressed(store: MetricStore) -> None:
    client = _app(store, max_body_bytes=4096).test_client()
    big = metrics_request(gauge("g", [(1.0, {"k": "v" * 8000})])).SerializeToString()
    response = await client.post(
        "/v1/metrics", data=gzip.compress(big), headers={**PB, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert (
        "once decompressed (security.max_body_bytes)"
        in status_pb2.Status.FromString(await response.get_data()).message
    )
    response = await client.post("/v1/metrics", data=big, headers=PB)
    assert response.status_code == 413


async def test_a_token_with_events_write_is_needed(store: MetricStore) -> None:
    client = _app(store).test_client()
    response = await client.post(
        "/v1/metrics",
        data=GOOD.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 401
