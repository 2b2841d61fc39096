"""Telemetry benchmarks: recording cost, event ingestion, memory per series.

Run: `.venv/bin/python bench/telemetry.py` (one process, one core; peers measured in the same run).

1. `record_agent_execution` / `record_api_request` vs raw prometheus_client doing the same
   metric updates (`Counter.labels(...).inc()` + `Histogram.labels(...).observe()`), the same label
   values rotating. Ratio = ours / peer (target <= 1.5).
2. `POST /api/v1/events` ingestion in batches of 500: through the ASGI app (Quart-Trio test
   client: routing, auth, body reading, JSON, validation, recording) and the ingest function alone.
   Target >= 50,000 events/s on one core.
3. Memory: bytes per series (tracemalloc) and process RSS after creating 100,000 series.
   Plus one series fed every second for 24 h under a 24 h retention (points fold into ~8.6 s
   slots so the default 10,000-point cap covers the day): points held and bytes, per kind.
4. The store full: a store at a tenth of the default budgets (10,000 series, 400,000 points),
   histogram series with three 256-character label values, offered 60 one-second slots per
   series (more than the point budget), one observation per slot (raw points) and then two
   (folded slots with bucket counts); tracemalloc bytes and RSS growth, scaled to the default
   budgets (`python bench/telemetry.py --worst` runs only this part).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import SecretStr

from actors.clock import SystemClock
from actors.state import HealthState
from actors.telemetry.agents import AgentRegistry
from actors.telemetry.anonymize import Anonymizer
from actors.telemetry.api import create_blueprint, ingest
from actors.telemetry.catalog import declare_catalog
from actors.telemetry.recording import Telemetry
from actors.telemetry.store import MetricStore
from actors.web.access import AccessGuard
from actors.web.app import create_app
from actors.web.config import SecurityConfig

AGENTS = ["esg-chief-of-staff", "carbon-hunter", "compliance-guardian", "supply-chain"]
ENDPOINTS = ["/api/v1/orchestrator", "/api/agents/status", "/api/ml/predict", "/api/health"]
N = 200_000


def _best(fn: Callable[[], None], repeat: int = 5) -> float:
    """Best wall time of `repeat` runs of `fn` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _telemetry(**store_kw: float) -> Telemetry:
    store = MetricStore(
        clock=SystemClock(),
        anonymizer=Anonymizer(["organization"], "k"),
        **store_kw,  # type: ignore[arg-type]
    )
    declare_catalog(store)
    return Telemetry(store=store, agents=AgentRegistry())


def bench_recording() -> None:
    print(f"== recording cost per call (best of 5, N={N})")
    registry = CollectorRegistry()
    execs = Counter("agent_executions", "x", ["agent", "status"], registry=registry)
    errors = Counter("agent_errors", "x", ["agent"], registry=registry)
    duration = Histogram("agent_execution_duration_seconds", "x", ["agent"], registry=registry)
    reqs = Counter("api_requests", "x", ["endpoint", "method", "status"], registry=registry)
    api_dur = Histogram(
        "api_request_duration_seconds", "x", ["endpoint", "method"], registry=registry
    )

    def peer_agent() -> None:
        for i in range(N):
            agent = AGENTS[i & 3]
            ok = i % 10 != 0
            execs.labels(agent, "success" if ok else "error").inc()
            duration.labels(agent).observe(0.25)
            if not ok:
                errors.labels(agent).inc()

    def peer_api() -> None:
        for i in range(N):
            endpoint = ENDPOINTS[i & 3]
            reqs.labels(endpoint, "GET", "200").inc()
            api_dur.labels(endpoint, "GET").observe(0.05)

    telemetry = _telemetry()
    # a listener like the rules actor's mailbox send_nowait (cheap, non-raising)
    telemetry.store.add_listener(lambda name, series: None)

    def ours_agent() -> None:
        record = telemetry.record_agent_execution
        for i in range(N):
            record(AGENTS[i & 3], 0.25, i % 10 != 0)

    def ours_api() -> None:
        record = telemetry.record_api_request
        for i in range(N):
            record(ENDPOINTS[i & 3], "GET", 200, 0.05)

    def loop_only() -> None:
        for i in range(N):
            _ = AGENTS[i & 3]

    base = _best(loop_only)
    rows = [
        ("record_agent_execution", ours_agent, peer_agent),
        ("record_api_request", ours_api, peer_api),
    ]
    for name, ours, peer in rows:
        t_ours = (_best(ours) - base) / N
        t_peer = (_best(peer) - base) / N
        print(
            f"{name:24s} ours {t_ours * 1e9:7.0f} ns  prometheus_client {t_peer * 1e9:7.0f} ns"
            f"  ratio {t_ours / t_peer:.2f}x (target <= 1.5x)"
        )


def _batch(size: int) -> bytes:
    events: list[dict[str, object]] = []
    for i in range(size):
        kind = i % 5
        if kind == 0:
            events.append(
                {
                    "type": "agent_execution",
                    "agent": AGENTS[i & 3],
                    "duration_seconds": 0.5,
                    "success": i % 7 != 0,
                }
            )
        elif kind == 1:
            events.append(
                {
                    "type": "api_request",
                    "endpoint": ENDPOINTS[i & 3],
                    "method": "POST",
                    "status": 200,
                    "duration_seconds": 0.1,
                }
            )
        elif kind == 2:
            events.append(
                {
                    "type": "ml_prediction",
                    "model": "emissions-predictor",
                    "latency_seconds": 0.05,
                    "confidence": 0.9,
                }
            )
        elif kind == 3:
            events.append(
                {"type": "user_message", "intent": "esg_analysis", "organization": f"org-{i % 50}"}
            )
        else:
            events.append(
                {
                    "type": "business_metric",
                    "name": "emissions",
                    "value": 12.5,
                    "labels": {"organization": f"org-{i % 50}", "scope": "scope1"},
                }
            )
    return json.dumps({"events": events}).encode()


def bench_ingestion() -> None:
    print("== POST /api/v1/events ingestion, batches of 500 (one core)")
    body = _batch(500)
    batches = 200
    telemetry = _telemetry()

    def direct() -> None:
        for _ in range(batches):
            ingest(telemetry, body)

    t = _best(direct, 3)
    print(f"ingest() alone            {batches * 500 / t:10,.0f} events/s")

    security = SecurityConfig(api_token=SecretStr("tok"))
    access = AccessGuard(security, listen="127.0.0.1:0")
    app = create_app(
        health=HealthState(), blueprints=[create_blueprint(telemetry=telemetry)], access=access
    )
    headers = {"Authorization": "Bearer tok", "Content-Type": "application/json"}

    async def through_asgi() -> float:
        client = app.test_client()
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(batches):
                response = await client.post("/api/v1/events", data=body, headers=headers)
                assert response.status_code == 202
            best = min(best, time.perf_counter() - start)
        return best

    t = trio.run(through_asgi)
    print(f"through the ASGI app      {batches * 500 / t:10,.0f} events/s (target >= 50,000)")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory() -> None:
    print("== memory per series (tracemalloc, 20,000 series) and RSS with 100,000 series")
    tracemalloc.start()
    store = MetricStore(clock=SystemClock(), max_series=200_000, max_total_series=200_000)
    store.declare("series_total", "counter", "x", ("id",))
    store.declare("series_gauge", "gauge", "x", ("id",))
    handle = store.handle("series_total")
    gauge = store.handle("series_gauge")
    n = 20_000
    ids = [(f"id-{i:06d}",) for i in range(n)]
    now = time.time()
    before = tracemalloc.get_traced_memory()[0]
    for key in ids:
        handle.record(key, 1.0, now)
    after = tracemalloc.get_traced_memory()[0]
    for key in ids:
        gauge.record(key, 1.0, now)
    after_gauge = tracemalloc.get_traced_memory()[0]
    for step in range(1, 100):
        for key in ids:
            gauge.record(key, float(step), now + step)
    after_100 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"counter series, 1 point   {(after - before) / n:8.0f} B/series")
    print(f"gauge series, 1 point     {(after_gauge - after) / n:8.0f} B/series")
    print(f"gauge series, 100 points  {(after_100 - after) / n:8.0f} B/series")
    bench_day()
    # RSS in a fresh process, so earlier parts do not blur it
    subprocess.run([sys.executable, __file__, "--rss"], check=True)


def bench_day() -> None:
    """One sample per second for 24 h under a 24 h retention, a few series per kind."""
    day = 86_400
    n = 5
    for kind, name in (("counter", "day_total"), ("gauge", "day"), ("histogram", "day_seconds")):
        store = MetricStore(clock=SystemClock(), retention=float(day))
        store.declare(name, kind, "x", ("id",))
        handle = store.handle(name)
        keys = [(f"id-{i}",) for i in range(n)]
        start = float(int(time.time()))
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for step in range(day):
            for key in keys:
                handle.record(key, float(step % 97), start + step)
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        ring = handle.series[keys[0]].points
        points = len(ring)
        covered = (ring[-1][0] - ring[0][0]) / 3600
        print(
            f"{kind} series, 1 sample/s for 24 h: {points:,} points over {covered:.2f} h, "
            f"{used / n / 1024:6.0f} KiB/series ({used / n / points:.0f} B per point)"
        )


def bench_rss() -> None:
    rss0 = _rss()
    store = MetricStore(clock=SystemClock(), max_series=200_000, max_total_series=200_000)
    declare_catalog(store)
    store.declare("series_total", "counter", "x", ("id",))
    counter = store.handle("series_total")
    now = time.time()
    for i in range(100_000):
        counter.record((f"id-{i:06d}",), 1.0, now)
    rss1 = _rss()
    print(
        f"RSS with 100,000 counter series: {rss1 / 2**20:.0f} MiB total "
        f"(+{(rss1 - rss0) / 2**20:.0f} MiB for the series; process with everything imported "
        f"before: {rss0 / 2**20:.0f} MiB)"
    )


def bench_worst() -> None:
    """The store at its budgets, at a tenth of the defaults, scaled back up."""
    scale = 10
    defaults = MetricStore(clock=SystemClock())
    series = defaults.max_total_series // scale
    budget = defaults.max_total_points // scale
    print(
        f"== the store full: {series:,} histogram series x 3 labels of 256 characters, "
        f"point budget {budget:,}, 60 one-second slots offered per series"
    )

    def fill(per_slot: int) -> MetricStore:
        store = MetricStore(
            clock=SystemClock(),
            # 1 s slots: a histogram's slot is retention / (max_points - 1)
            retention=float(defaults.max_points - 1),
            counter_resolution=0.0,
            max_series=series,
            max_total_series=series,
            max_total_points=budget,
        )
        store.declare("worst_seconds", "histogram", "x", ("a", "b", "c"))
        handle = store.handle("worst_seconds")
        keys = [
            tuple((f"{i}-{label}-" + "x" * 256)[:256] for label in "abc") for i in range(series)
        ]
        start = float(int(time.time()))
        for step in range(60):
            for j in range(per_slot):
                for key in keys:
                    handle.record(key, 0.1 * step + 0.01 * j, start + step + 0.25 + 0.5 * j)
        return store

    for per_slot, what in ((1, "raw points"), (2, "folded slots")):
        gc.collect()
        rss0 = _rss()
        store = fill(per_slot)
        rss = _rss() - rss0
        stats = store.statistics()
        del store
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = fill(per_slot)
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        del kept
        gc.collect()
        print(
            f"{what}: series {stats.series:,}, points {stats.points:,} "
            f"(evicted {stats.points_evicted:,}): {used / 2**20:.0f} MiB traced, "
            f"RSS +{rss / 2**20:.0f} MiB; scaled to the defaults "
            f"({defaults.max_total_series:,} series, {defaults.max_total_points:,} points): "
            f"~{used * scale / 2**30:.2f} GiB traced, ~{rss * scale / 2**30:.2f} GiB RSS"
        )


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    bench_recording()
    bench_ingestion()
    bench_memory()
    subprocess.run([sys.executable, __file__, "--worst"], check=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--rss"]:
        bench_rss()
    elif sys.argv[1:] == ["--worst"]:
        bench_worst()
    else:
        main()
