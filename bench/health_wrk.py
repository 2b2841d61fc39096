"""Probe routes under wrk while 1,000 checks run: latency at 2,000 req/s and peak throughput.

A server process (this script with --serve, pinned to CPU 0) runs 1,000 http checks against a
local nginx (10 s interval: 100 runs/s, the contract's default interval) and serves, on the same
Hypercorn server actor, our API app and a bare Quart-Trio app with one "hello" route. wrk (CPU 1,
with nginx) then measures for each route:
- paced at 2,000 req/s (20 connections, a 10 ms delay per request: wrk's Lua `delay()`), the
  latency percentiles (target p99 < 20 ms);
- unpaced (50 connections), the peak throughput, compared with the bare hello route on the same
  server in the same process (target >= 0.9x).

    .venv/bin/python bench/health_wrk.py [--delay-ms=10] [--gc-freeze] [SECONDS_PER_RUN]

--delay-ms sets the pacing delay (20 connections; 20 ms paces at ~1,000 req/s). --gc-freeze
freezes the server's objects out of the garbage collector once the first round of checks ran.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
from quart_trio import QuartTrio

from actors.checks.actor import CheckActor
from actors.checks.http import HttpCheckConfig, HttpProbe
from actors.checks.probe import CheckContext
from actors.clock import SystemClock
from actors.state import HealthState
from actors.telemetry.store import MetricStore
from actors.web.app import create_app
from actors.web.server import HttpServer
from bench.checks_support import free_port, machine, start_nginx, stop, wait_http

CHECKS = 1000
GC_FREEZE = "--gc-freeze" in sys.argv
DELAY_MS = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--delay-ms=")), 10)


async def serve(api_port: int, hello_port: int, target: str) -> None:
    """The server side: 1,000 checks, our API app and a bare hello app."""
    store = MetricStore(clock=SystemClock())
    names = [f"url{i}" for i in range(CHECKS)]
    health = HealthState(checks=dict.fromkeys(names, False), recorder=store)
    hello = QuartTrio("hello")

    @hello.get("/hello")
    async def hello_route() -> str:
        return "hello"

    async with trio.open_nursery() as nursery:
        for name in names:
            config = HttpCheckConfig.model_validate(
                {"name": name, "kind": "http", "url": target, "interval": "10s"}
            )
            actor = CheckActor(
                config=config, probe=HttpProbe(config, CheckContext()), health=health
            )
            nursery.start_soon(actor.run)
        api = HttpServer(app=create_app(health=health, store=store), listen=f"127.0.0.1:{api_port}")
        bare = HttpServer(app=hello, listen=f"127.0.0.1:{hello_port}", name="hello")
        await nursery.start(api.run)
        await nursery.start(bare.run)
        if GC_FREEZE:
            await trio.sleep(10.5)  # the first round of checks is done: histories exist
            gc.collect()
            gc.freeze()


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_PCT = re.compile(r"^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: int, *, paced: bool, tmp: Path) -> tuple[float, dict[str, float]]:
    """Requests/s and latency percentiles (ms) of one wrk run."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (make system-deps)")
    args = [binary, "-t1", f"-d{seconds}s", "--latency"]
    if paced:
        script = tmp / "pace.lua"
        script.write_text(f"function delay()\n  return {DELAY_MS}\nend\n")
        args += ["-c20", "-s", str(script)]
    else:
        args += ["-c50"]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True, preexec_fn=_on_cpu1
    ).stdout
    rps_match = _RPS.search(out)
    rps = float(rps_match.group(1)) if rps_match else 0.0
    pct = {f"p{m.group(1)}": float(m.group(2)) * _UNIT[m.group(3)] for m in _PCT.finditer(out)}
    return rps, pct


def _on_cpu1() -> None:
    os.sched_setaffinity(0, {1})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        os.sched_setaffinity(0, {0})
        trio.run(serve, int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    seconds = int(numbers[0]) if numbers else 10
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        nginx_port, api_port, hello_port = free_port(), free_port(), free_port()
        nginx = start_nginx(tmp, nginx_port, cpus={1})
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(api_port),
                str(hello_port),
                f"http://127.0.0.1:{nginx_port}/",
                *(["--gc-freeze"] if GC_FREEZE else []),
            ]
        )
        try:
            wait_http(f"http://127.0.0.1:{api_port}/api/health/live", timeout=60)
            wait_http(f"http://127.0.0.1:{hello_port}/hello", timeout=60)
            trio.run(trio.sleep, 11)  # every check has run once
            routes = {
                "hello (bare Quart-Trio)": f"http://127.0.0.1:{hello_port}/hello",
                "/api/health/live": f"http://127.0.0.1:{api_port}/api/health/live",
                "/api/health": f"http://127.0.0.1:{api_port}/api/health",
            }
            print(f"machine: {machine()}; server on CPU 0, wrk and nginx on CPU 1")
            print(f"{CHECKS} http checks running (10 s interval) in the server process")
            peak: dict[str, float] = {}
            for name, url in routes.items():
                rps, pct = wrk(url, seconds, paced=True, tmp=tmp)
                peak[name], _ = wrk(url, seconds, paced=False, tmp=tmp)
                print(
                    f"  {name:26s} paced {rps:7.0f} req/s: p50 {pct.get('p50', 0):6.2f} ms"
                    f"  p90 {pct.get('p90', 0):6.2f} ms  p99 {pct.get('p99', 0):6.2f} ms"
                    f" | peak {peak[name]:7.0f} req/s"
                )
            base = peak["hello (bare Quart-Trio)"]
            for name in ("/api/health/live", "/api/health"):
                ratio = peak[name] / base
                print(f"  {name} peak throughput / hello: {ratio:.2f}x (target >= 0.9x)")
        finally:
            server.terminate()
            server.wait(10)
            stop(nginx)


if __name__ == "__main__":
    main()
