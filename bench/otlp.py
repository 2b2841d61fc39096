"""OTLP metrics ingestion against our own events API, measured in the same run.

Run: `.venv/bin/python bench/otlp.py` (one process for the server; the HTTP client is another).

1. Through the ASGI app (Quart-Trio test client: routing, token, body read, decoding,
   translation, recording): `POST /v1/metrics` with protobuf requests of 500 data points of the
   seed's metrics (cumulative counters, gauges and explicit-bucket histograms, 500 distinct
   series), against `POST /api/v1/events` with batches of 500 events of the seed's mix. Wall
   time and CPU time (`time.process_time`) per data point and per event. Targets: >= 100,000
   points/s; CPU per point <= 1.5x CPU per event.
2. The same over real HTTP: the app served by Hypercorn (`HttpServer`) on 127.0.0.1, a client
   process posting the same bodies back to back over one keep-alive connection; points (events)
   per second and the server process's CPU per point (event).

Each point of a request is one sample recorded (a histogram point: one batch of bucket counts);
an event of the mix records two to three samples. Two bodies alternate whose totals differ, so
every cumulative point records a change (a lower total counts as a reset).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import trio
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.clock import SystemClock
from actors.state import HealthState
from actors.telemetry.agents import AgentRegistry
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.api import create_blueprint
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.otlp_api import create_otlp_blueprint
from actors.telemetry.otlp_ingest import MetricsIngest
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from actors.web.access import AccessGuard
from actors.web.app import create_app
from actors.web.config import SecurityConfig
from actors.web.server import HttpServer
from bench.telemetry import _batch

PER_REQUEST = 500
REQUESTS = 200
HEADERS_PB = {"Authorization": "Bearer tok", "Content-Type": "application/x-protobuf"}
HEADERS_JSON = {"Authorization": "Bearer tok", "Content-Type": "application/json"}
_LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]


def _kv(values: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]


def otlp_body(step: int) -> bytes:
    """500 data points: 200 counter, 100 gauge, 100 histogram and 100 counter series."""
    execs = m.Sum(is_monotonic=True, aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE)
    requests = m.Sum(
        is_monotonic=True, aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    accuracy = m.Gauge()
    duration = m.Histogram(aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE)
    for i in range(200):
        point = requests.data_points.add(as_int=100 + step + i)
        point.attributes.extend(
            _kv({"endpoint": f"/api/e{i % 50}", "method": "POST", "status": str(200 + i // 50)})
        )
    for i in range(100):
        point = execs.data_points.add(as_int=10 + step)
        point.attributes.extend(_kv({"agent": f"agent-{i}", "status": "success"}))
        accuracy.data_points.add(as_double=0.9 - step / 100).attributes.extend(
            _kv({"model": f"model-{i}"})
        )
        counts = [step + 1, 2, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0]
        point_h = duration.data_points.add(
            count=sum(counts), sum=1.5 + step, bucket_counts=counts, explicit_bounds=_LATENCY
        )
        point_h.attributes.extend(_kv({"endpoint": f"/api/h{i}", "method": "GET"}))
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            m.ResourceMetrics(
                resource=Resource(attributes=_kv({"service.name": "blipee-os"})),
                scope_metrics=[
                    m.ScopeMetrics(
                        metrics=[
                            m.Metric(name="api.requests", sum=requests),
                            m.Metric(name="agent.executions", sum=execs),
                            m.Metric(name="ml.model.accuracy", gauge=accuracy),
                            m.Metric(name="api.request.duration", unit="s", histogram=duration),
                        ]
                    )
                ],
            )
        ]
    )
    return bytes(request.SerializeToString())


def _app() -> object:
    store = MetricStore(clock=SystemClock(), anonymizer=Anonymizer(["organization"], "k"))
    declare_catalog(store)
    telemetry = Telemetry(store=store, agents=AgentRegistry())
    access = AccessGuard(SecurityConfig(api_token=SecretStr("tok")), listen="127.0.0.1:0")
    blueprints = [
        create_blueprint(telemetry=telemetry),
        create_otlp_blueprint(metrics=MetricsIngest(store)),
    ]
    return create_app(health=HealthState(), blueprints=blueprints, access=access)


def _asgi(
    path: str, bodies: list[bytes], headers: dict[str, str], status: int
) -> tuple[float, float]:
    """Best (wall, cpu) seconds of REQUESTS posts through the test client, of three runs."""
    app = _app()

    async def run() -> tuple[float, float]:
        client = app.test_client()  # type: ignore[attr-defined]
        best = (float("inf"), float("inf"))
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(REQUESTS):
                response = await client.post(path, data=bodies[i & 1], headers=headers)
                assert response.status_code == status, await response.get_data()
            best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
        return best

    return trio.run(run)


_CLIENT = """
import sys, time, httpx
url, count, ctype = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bodies = [open(p, "rb").read() for p in sys.argv[4:]]
headers = {"Authorization": "Bearer tok", "Content-Type": ctype}
with httpx.Client(timeout=30) as c:
    c.post(url, content=bodies[0], headers=headers).raise_for_status()
    start = time.perf_counter()
    for i in range(count):
        c.post(url, content=bodies[i & 1], headers=headers).raise_for_status()
    print(time.perf_counter() - start)
"""


def _http(path: str, files: list[Path], ctype: str) -> tuple[float, float]:
    """(wall, server cpu) seconds of REQUESTS posts over real HTTP from a client process."""
    app = _app()
    server = HttpServer(app=app, listen="127.0.0.1:0", name="bench")

    async def run() -> tuple[float, float]:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            url = f"http://127.0.0.1:{server.port}{path}"
            cpu = time.process_time()
            done = await trio.run_process(
                [sys.executable, "-c", _CLIENT, url, str(REQUESTS), ctype, *map(str, files)],
                capture_stdout=True,
            )
            used = time.process_time() - cpu
            nursery.cancel_scope.cancel()
        return float(done.stdout.decode().strip()), used

    return trio.run(run)


def _line(label: str, n: int, wall: float, cpu: float, unit: str, cpu_unit: str) -> None:
    print(f"{label:22}{n / wall:10,.0f} {unit}/s  {cpu / n * 1e6:6.2f} µs {cpu_unit}")


def main() -> None:
    machine = platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    otlp = [otlp_body(0), otlp_body(1)]
    events = [_batch(PER_REQUEST), _batch(PER_REQUEST)]
    n = REQUESTS * PER_REQUEST
    print(f"== through the ASGI app, {REQUESTS} requests of {PER_REQUEST} (best of 3)")
    o_wall, o_cpu = _asgi("/v1/metrics", otlp, HEADERS_PB, 200)
    e_wall, e_cpu = _asgi("/api/v1/events", events, HEADERS_JSON, 202)
    _line("OTLP /v1/metrics", n, o_wall, o_cpu, "points", "CPU/point (target >= 100,000/s)")
    _line("events /api/v1/events", n, e_wall, e_cpu, "events", "CPU/event")
    print(f"CPU per point / CPU per event: {o_cpu / e_cpu:.2f}x (target <= 1.5x)")

    print("== over real HTTP (Hypercorn, one keep-alive client process)")
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, body in enumerate([*otlp, *events]):
            paths.append(Path(folder) / str(i))
            paths[-1].write_bytes(body)
        o_wall, o_cpu = _http("/v1/metrics", paths[:2], "application/x-protobuf")
        e_wall, e_cpu = _http("/api/v1/events", paths[2:], "application/json")
    _line("OTLP /v1/metrics", n, o_wall, o_cpu, "points", "server CPU/point")
    _line("events /api/v1/events", n, e_wall, e_cpu, "events", "server CPU/event")
    print(f"server CPU per point / per event: {o_cpu / e_cpu:.2f}x")
    print(f"request sizes: OTLP {len(otlp[0]):,} B protobuf, events {len(events[0]):,} B JSON")


if __name__ == "__main__":
    main()
