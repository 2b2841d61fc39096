"""Alerting benchmarks (not tests). Results go to docs/benchmarks.md, section "Alerting".

python bench/alert_latency.py throughput [--seconds 10] [--rate 100000]
    1,000 rules over 10,000 series fed 100,000 samples/s, all on one core (one process, one
    thread): recording, rule evaluation and alert emission share the CPU. Reports the
    achieved sample rate, evaluation rounds, and the detection latency of injected threshold
    crossings (sample recorded -> AlertEvent emitted).

python bench/alert_latency.py latency [--outages 20] [--interval 1]
    End to end: a local HTTP check target flips to failing at a random moment; the time until
    a local webhook receiver gets the POST is measured over N outages, for blipee-monitor
    (`blipee-monitor run` with a generated config) and, side by side in the same run, for
    Prometheus + blackbox_exporter + Alertmanager (Debian binaries) at the same interval and
    group_wait 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time

import trio

from actors.clock import SystemClock
from actors.models import AlertEvent, AlertStatus
from actors.rules.actor import RulesActor
from actors.rules.config import RuleConfig
from actors.telemetry.store import MetricStore

METRICS = 10
GROUPS = 100  # per metric
INSTANCES = 10  # per group


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def machine() -> str:
    """One line describing where the benchmark ran."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


async def throughput(seconds: float, rate: int) -> dict[str, float]:
    """Run the throughput benchmark; returns its figures."""
    clock = SystemClock()
    store = MetricStore(clock=clock, retention=120.0, max_points=2000, max_series=2000)
    names = [f"bench_value_{m}" for m in range(METRICS)]
    for name in names:
        store.declare(name, "gauge", "Benchmark series.", ("group", "instance"))
    rules = [
        RuleConfig.model_validate(
            {
                "id": f"r{r}",
                "name": f"Rule {r}",
                "severity": "warning",
                "channels": ["hooks"],
                "condition": {
                    "metric": names[r % METRICS],
                    "labels": {"group": f"g{r // METRICS}"},
                    "aggregate": "last",
                    "window": "5s",
                    "operator": ">",
                    "threshold": 90,
                },
            }
        )
        for r in range(METRICS * GROUPS)
    ]
    series = [
        (name, {"group": f"g{g}", "instance": f"i{i}"})
        for name in names
        for g in range(GROUPS)
        for i in range(INSTANCES)
    ]
    send, receive = trio.open_memory_channel[AlertEvent](10_000)
    actor = RulesActor(rules=rules, store=store, sink=send, clock=clock)
    injected: dict[tuple[str, str, str], float] = {}
    latencies: list[float] = []
    recorded = 0
    rng = random.Random(1)
    hot: set[int] = set()

    async def consume() -> None:
        async for event in receive:
            labels = dict(event.alert.labels)
            key = (labels.get("rule", ""), labels["group"], labels["instance"])
            if event.alert.status is AlertStatus.FIRING and key in injected:
                latencies.append(time.perf_counter() - injected.pop(key))

    async def produce(deadline: float) -> None:
        nonlocal recorded
        batch = rate // 100  # every 10 ms
        cursor = 0
        next_at = time.perf_counter()
        next_inject = next_at + 0.5
        while time.perf_counter() < deadline:
            for _ in range(batch):
                index = cursor % len(series)
                cursor += 1
                name, labels = series[index]
                value = 95.0 if index in hot else rng.random() * 80
                store.record(name, value, labels)
            recorded += batch
            now = time.perf_counter()
            if now >= next_inject:
                next_inject = now + 0.5
                # Resolve the previous crossing, start a new one, timed from this sample.
                for index in list(hot):
                    hot.discard(index)
                index = rng.randrange(len(series))
                name, labels = series[index]
                rule = f"r{names.index(name) + METRICS * int(labels['group'][1:])}"
                hot.add(index)
                store.record(name, 95.0, labels)
                injected[(rule, labels["group"], labels["instance"])] = time.perf_counter()
            next_at += 0.01
            delay = next_at - time.perf_counter()
            await trio.sleep(max(delay, 0))
            if delay < -1:  # hopelessly behind: do not try to catch up
                next_at = time.perf_counter()

    # Capacity, in CPU time (independent of other load on the machine): the cost of one
    # recorded sample, and of one full evaluation round of every rule over 5 s of data.
    fill_cpu = time.process_time()
    fill_wall = time.perf_counter()
    for step in range(50):
        stamp = clock.now() - 5.0 + step * 0.1
        for name, labels in series:
            store.record(name, rng.random() * 80, labels, timestamp=stamp)
    record_us = (time.process_time() - fill_cpu) / (50 * len(series)) * 1e6
    del fill_wall
    round_cpu = time.process_time()
    rounds = 5
    for _ in range(rounds):
        actor._evaluate_rules(list(actor._rules))
    round_ms = (time.process_time() - round_cpu) / rounds * 1000

    cpu0 = time.process_time()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        nursery.start_soon(consume)
        await produce(start + seconds)
        nursery.cancel_scope.cancel()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    record_share = rate * record_us / 1e6
    return {
        "record_cpu_us_per_sample": record_us,
        "full_round_cpu_ms": round_ms,
        "core_share_recording_at_rate": record_share,
        "full_rounds_per_s_in_rest_of_core": (1 - record_share) / (round_ms / 1000),
        "samples_per_second": recorded / wall,
        "rule_evaluations_per_second": actor.evaluations / wall,
        "cpu_share_of_wall": cpu / wall,
        "samples_per_cpu_second": recorded / cpu if cpu else float("nan"),
        "detections": len(latencies),
        "detection_p50_ms": _percentile(latencies, 0.5) * 1000,
        "detection_p95_ms": _percentile(latencies, 0.95) * 1000,
        "detection_max_ms": max(latencies, default=float("nan")) * 1000,
        "wall_seconds": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="mode")
    t = sub.add_parser("throughput")
    t.add_argument("--seconds", type=float, default=10.0)
    t.add_argument("--rate", type=int, default=100_000)
    args = parser.parse_args(argv)
    mode = args.mode or "throughput"
    print(f"machine: {machine()}")
    if mode == "throughput":
        seconds = getattr(args, "seconds", 10.0)
        rate = getattr(args, "rate", 100_000)
        result = trio.run(throughput, seconds, rate)
        print(
            f"throughput: {METRICS * GROUPS} rules over {len(range(METRICS * GROUPS * INSTANCES))}"
            f" series, target {rate} samples/s for {seconds:g} s on one core"
        )
        for key, value in result.items():
            print(f"  {key}: {value:,.3f}")
        if result["samples_per_second"] < 0.95 * rate:
            print("  RESULT: did not keep up with the target rate")
        else:
            print("  RESULT: kept up")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
