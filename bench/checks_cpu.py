"""CPU seconds per HTTP check against a local nginx: blipee-monitor vs blackbox_exporter.

Both probe the same URL on nginx (one worker, started here on a free port), sequentially, N times
after a warm-up. Ours: a `CheckActor` with the http probe publishing into a `HealthState` wired to
a `MetricStore` (the full path of a real check run), CPU of this process (user + system). Theirs:
`GET /probe?module=http_2xx&target=URL` on prometheus-blackbox-exporter, CPU of its process (the
client's CPU is not counted). Prints both and the ratio (target: ours <= 1.0x).

    .venv/bin/python bench/checks_cpu.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import trio

from actors.checks.actor import CheckActor
from actors.checks.http import HttpCheckConfig, HttpProbe
from actors.checks.probe import CheckContext
from actors.clock import SystemClock
from actors.state import HealthState
from actors.telemetry.store import MetricStore
from bench.checks_support import (
    cpu_seconds,
    free_port,
    machine,
    start_blackbox,
    start_nginx,
    stop,
)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def ours(url: str, n: int) -> float:
    """CPU seconds per check run of our http check."""
    store = MetricStore(clock=SystemClock())
    health = HealthState(checks={"nginx": True}, recorder=store)
    config = HttpCheckConfig.model_validate({"name": "nginx", "kind": "http", "url": url})
    probe = HttpProbe(config, CheckContext())
    actor = CheckActor(config=config, probe=probe, health=health)
    try:
        for _ in range(200):
            await actor.run_once()
        start = _cpu()
        for _ in range(n):
            result = await actor.run_once()
        spent = _cpu() - start
    finally:
        await probe.aclose()
    assert result.status.value == "pass", result.message
    return spent / n


def theirs(blackbox_port: int, url: str, n: int, pid: int) -> float:
    """CPU seconds of blackbox_exporter per probe."""
    params = {"module": "http_2xx", "target": url}
    endpoint = f"http://127.0.0.1:{blackbox_port}/probe"
    with httpx.Client() as client:
        for _ in range(200):
            client.get(endpoint, params=params)
        start = cpu_seconds(pid)
        for _ in range(n):
            answer = client.get(endpoint, params=params)
        spent = cpu_seconds(pid) - start
    assert "probe_success 1" in answer.text
    return spent / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        nginx_port, blackbox_port = free_port(), free_port()
        nginx = start_nginx(tmp, nginx_port)
        blackbox = start_blackbox(tmp, blackbox_port)
        url = f"http://127.0.0.1:{nginx_port}/"
        try:
            our_cpu = trio.run(ours, url, n)
            their_cpu = theirs(blackbox_port, url, n, blackbox.pid)
        finally:
            stop(blackbox)
            stop(nginx)
    print(f"machine: {machine()}")
    print(f"HTTP check against nginx, {n} runs each")
    print(f"  blipee-monitor      {our_cpu * 1e6:8.0f} us CPU per check")
    print(f"  blackbox_exporter   {their_cpu * 1e6:8.0f} us CPU per probe")
    print(f"  ratio ours/theirs   {our_cpu / their_cpu:8.2f}x  (target <= 1.0x)")


if __name__ == "__main__":
    main()
