"""Sustained HTTP checks per second on one core, with the p99 lateness of scheduled runs.

This process is pinned to CPU 0 and nginx (one worker) to CPU 1. For each target rate R, R check
actors with a 1 s interval (the product's own `CheckActor` + http probe + `HealthState` +
`MetricStore`, as in production) run for `DURATION` seconds; the first `WARMUP` seconds are not
measured. Lateness = how long after its scheduled time a run started. A rate is sustained when
the runs completed reach 95 % of R and the p99 lateness is under 100 ms. The peer is
blackbox_exporter + Prometheus's scheduler in the whole-job benchmark (bench/health_stack.py);
here the figure is compared with the target (>= 2,000 checks/s).

    .venv/bin/python bench/checks_throughput.py [--gc-freeze] [RATE ...]

With --gc-freeze the objects built at start-up are moved out of the garbage collector's reach
(`gc.freeze()`), as a composition root can do once the tree is built: full collections then no
longer walk thousands of long-lived actors, which removes the lateness spikes above ~2,500/s.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio

from actors.checks.actor import CheckActor
from actors.checks.http import HttpCheckConfig, HttpProbe
from actors.checks.probe import CheckContext
from actors.clock import SystemClock
from actors.state import HealthState
from actors.telemetry.store import MetricStore
from bench.checks_support import free_port, machine, start_nginx, stop

FREEZE = "--gc-freeze" in sys.argv
DURATION = 12.0
WARMUP = 3.0


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_rate(url: str, rate: int) -> dict[str, float]:
    """Run `rate` checks at 1 s intervals; measure completed runs, lateness and CPU."""
    store = MetricStore(clock=SystemClock())
    names = [f"c{i}" for i in range(rate)]
    health = HealthState(checks=dict.fromkeys(names, False), recorder=store)
    lateness: list[float] = []
    measuring = False

    def observe(late: float) -> None:
        if measuring:
            lateness.append(late)

    actors = []
    for name in names:
        config = HttpCheckConfig.model_validate(
            {"name": name, "kind": "http", "url": url, "interval": "1s", "timeout": "1s"}
        )
        actors.append(
            CheckActor(
                config=config,
                probe=HttpProbe(config, CheckContext()),
                health=health,
                on_lateness=observe,
            )
        )
    if FREEZE:
        gc.collect()
        gc.freeze()
    async with trio.open_nursery() as nursery:
        for actor in actors:
            nursery.start_soon(actor.run)
        await trio.sleep(WARMUP)
        runs_before = sum(a.statistics().runs for a in actors)
        cpu_before = _cpu()
        measuring = True
        await trio.sleep(DURATION - WARMUP)
        measuring = False
        runs = sum(a.statistics().runs for a in actors) - runs_before
        cpu = _cpu() - cpu_before
        failures = sum(1 for n in names if (r := health.current(n)) and r.status.value == "fail")
        nursery.cancel_scope.cancel()
    window = DURATION - WARMUP
    return {
        "rate": rate,
        "achieved": runs / window,
        "p50": _quantile(lateness, 0.50),
        "p99": _quantile(lateness, 0.99),
        "max": max(lateness, default=float("nan")),
        "cpu": cpu / window,
        "failing": failures,
    }


def main() -> None:
    rates = [int(a) for a in sys.argv[1:] if a.isdigit()] or [1000, 2000, 3000, 4000]
    os.sched_setaffinity(0, {0})
    best = 0.0
    with tempfile.TemporaryDirectory() as tmp_name:
        port = free_port()
        nginx = start_nginx(Path(tmp_name), port, cpus={1})
        try:
            print(
                f"machine: {machine()}; this process on CPU 0, nginx on CPU 1; gc.freeze: {FREEZE}"
            )
            print("target/s  achieved/s  lateness p50    p99     max   CPU(core)  failing")
            for rate in rates:
                r = trio.run(run_rate, f"http://127.0.0.1:{port}/", rate)
                ok = r["achieved"] >= 0.95 * rate and r["p99"] < 0.1
                if ok:
                    best = max(best, r["achieved"])
                print(
                    f"{rate:8d}  {r['achieved']:10.0f}  {r['p50'] * 1000:10.1f}ms"
                    f" {r['p99'] * 1000:6.1f}ms {r['max'] * 1000:6.1f}ms"
                    f"  {r['cpu']:8.2f}  {int(r['failing']):7d}  {'ok' if ok else 'NOT sustained'}"
                )
        finally:
            stop(nginx)
    print(
        f"sustained: {best:.0f} checks/s on one core with p99 lateness < 100 ms "
        f"(target >= 2000; ratio {best / 2000:.2f}x)"
    )


if __name__ == "__main__":
    main()
