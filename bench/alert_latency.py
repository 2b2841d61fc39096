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
import http.server
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

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


# --- end to end: failing check -> webhook POST ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Target(http.server.BaseHTTPRequestHandler):
    failing = False

    def do_GET(self) -> None:
        code = 500 if _Target.failing else 200
        body = b"down" if code == 500 else b"ok"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Receiver(http.server.BaseHTTPRequestHandler):
    lock = threading.Lock()
    arrivals: ClassVar[list[tuple[str, str, float]]] = []  # (path, status, perf_counter)

    def do_POST(self) -> None:
        at = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            status = str(json.loads(raw).get("status", ""))
        except ValueError:
            status = "?"
        with _Receiver.lock:
            _Receiver.arrivals.append((self.path, status, at))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[int, Any]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1]), server


def _wait_for(path: str, status: str, since: float, timeout: float) -> float | None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with _Receiver.lock:
            for p, st, at in _Receiver.arrivals:
                if p == path and st == status and at >= since:
                    return at
        time.sleep(0.005)
    return None


def _ours_config(tmp: Path, target: int, receiver: int, interval: float) -> Path:
    api, metrics = _free_port(), _free_port()
    text = f"""
[server]
listen = "127.0.0.1:{api}"
metrics_listen = "127.0.0.1:{metrics}"

[storage]
path = "{tmp / "monitor.db"}"

[log]
level = "warning"

[[checks]]
name = "target"
kind = "http"
url = "http://127.0.0.1:{target}/"
interval = "{round(interval * 1000)}ms"
timeout = "800ms"

[[rules]]
id = "target-down"
name = "Target Down"
severity = "critical"
channels = ["hooks"]
summary = "target is down"
[rules.condition]
metric = "health_check_up"
labels = {{ check = "target" }}
aggregate = "last"
window = "1m"
operator = "<"
threshold = 1

[routing]
group_by = ["alertname"]
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"

[channels.hooks]
kind = "webhook"
url = "http://127.0.0.1:{receiver}/ours"
"""
    path = tmp / "blipee.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _prometheus_stack(
    tmp: Path, target: int, receiver: int, interval: float
) -> list[subprocess.Popen[bytes]]:
    bb, prom, am = _free_port(), _free_port(), _free_port()
    ms = round(interval * 1000)
    (tmp / "blackbox.yml").write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 800ms\n", encoding="utf-8"
    )
    (tmp / "rules.yml").write_text(
        "groups:\n- name: bench\n  rules:\n  - alert: TargetDown\n"
        "    expr: probe_success == 0\n    for: 0s\n",
        encoding="utf-8",
    )
    (tmp / "prometheus.yml").write_text(
        f"""global:
  scrape_interval: {ms}ms
  scrape_timeout: {int(ms * 0.9)}ms
  evaluation_interval: {ms}ms
rule_files: ["{tmp / "rules.yml"}"]
alerting:
  alertmanagers:
  - static_configs:
    - targets: ["127.0.0.1:{am}"]
scrape_configs:
- job_name: blackbox
  metrics_path: /probe
  params: {{module: [http_2xx]}}
  static_configs:
  - targets: ["http://127.0.0.1:{target}/"]
  relabel_configs:
  - source_labels: [__address__]
    target_label: __param_target
  - target_label: __address__
    replacement: 127.0.0.1:{bb}
""",
        encoding="utf-8",
    )
    (tmp / "alertmanager.yml").write_text(
        f"""route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: {ms}ms
  repeat_interval: 1h
receivers:
- name: hook
  webhook_configs:
  - url: http://127.0.0.1:{receiver}/am
""",
        encoding="utf-8",
    )
    quiet = subprocess.DEVNULL
    return [
        subprocess.Popen(
            [
                "/usr/bin/prometheus-blackbox-exporter",
                f"--config.file={tmp / 'blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{bb}",
            ],
            stdout=quiet,
            stderr=quiet,
        ),
        subprocess.Popen(
            [
                "/usr/bin/prometheus-alertmanager",
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am'}",
                f"--web.listen-address=127.0.0.1:{am}",
                "--cluster.listen-address=",
            ],
            stdout=quiet,
            stderr=quiet,
        ),
        subprocess.Popen(
            [
                "/usr/bin/prometheus",
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom'}",
                f"--web.listen-address=127.0.0.1:{prom}",
            ],
            stdout=quiet,
            stderr=quiet,
        ),
    ]


def _summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"median {statistics.median(values):.3f} s, p95 {_percentile(values, 0.95):.3f} s, "
        f"min {min(values):.3f} s, max {max(values):.3f} s (n={len(values)})"
    )


def _defaults_estimate(
    rng: random.Random, scrape: float, evaluation: float, group_wait: float, overhead: float
) -> list[float]:
    """Latency samples of a scrape -> evaluate -> group_wait pipeline with random phases.

    The outage starts at a uniformly random moment: it waits for the next probe (scrape), then
    for the next rule evaluation, then group_wait, plus the pipeline's measured own overhead.
    """
    out = []
    for _ in range(10_000):
        to_probe = rng.uniform(0, scrape)
        to_eval = rng.uniform(0, evaluation) if evaluation else 0.0
        out.append(to_probe + to_eval + group_wait + overhead)
    return out


def latency(outages: int, interval: float) -> int:
    """Run the end-to-end comparison; prints the figures. Returns a process exit status."""
    rng = random.Random()
    target, target_server = _serve(_Target)
    receiver, receiver_server = _serve(_Receiver)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        config = _ours_config(tmp, target, receiver, interval)
        env = {**os.environ, "BLIPEE_LOG_LEVEL": "warning"}
        procs = _prometheus_stack(tmp, target, receiver, interval)
        ours = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "-c", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "blipee.log").open("wb"),
        )
        procs.append(ours)
        results: dict[str, list[float]] = {"/ours": [], "/am": []}
        missed = {"/ours": 0, "/am": 0}
        resolutions: dict[str, list[float]] = {"/ours": [], "/am": []}
        try:
            time.sleep(5)  # both stacks start and see the target healthy
            for n in range(outages):
                time.sleep(rng.uniform(1.0, 1.0 + 2 * interval))
                _Target.failing = True
                t0 = time.perf_counter()
                for path in results:
                    at = _wait_for(path, "firing", t0, timeout=20 * interval + 10)
                    if at is None:
                        missed[path] += 1
                    else:
                        results[path].append(at - t0)
                _Target.failing = False
                t1 = time.perf_counter()
                for path in results:
                    at = _wait_for(path, "resolved", t1, timeout=20 * interval + 10)
                    if at is not None:
                        resolutions[path].append(at - t1)
                print(
                    f"  outage {n + 1:2d}: ours {results['/ours'][-1:]}, "
                    f"prometheus stack {results['/am'][-1:]}",
                    flush=True,
                )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            target_server.shutdown()
            receiver_server.shutdown()
            if ours.returncode not in (0, -15):
                sys.stderr.write((tmp / "blipee.log").read_text(errors="replace")[-3000:])
    ours_v, am_v = results["/ours"], results["/am"]
    print(f"end to end at a {interval:g} s interval, group_wait 0, {outages} outages:")
    print(f"  blipee-monitor:                                  {_summary(ours_v)}")
    print(f"  prometheus + blackbox_exporter + alertmanager:   {_summary(am_v)}")
    print(f"  missed: {missed}")
    print("resolution (target healthy again -> resolved POST, group_interval = interval):")
    print(f"  blipee-monitor:                                  {_summary(resolutions['/ours'])}")
    print(f"  prometheus + blackbox_exporter + alertmanager:   {_summary(resolutions['/am'])}")
    if ours_v and am_v:
        print(
            "  ratio (prometheus stack / ours): median "
            f"{statistics.median(am_v) / statistics.median(ours_v):.2f}x, p95 "
            f"{_percentile(am_v, 0.95) / _percentile(ours_v, 0.95):.2f}x"
        )
        # Own overhead beyond waiting for the next probe (the floor is U(0, interval)).
        ours_over = max(statistics.median(ours_v) - interval / 2, 0.0)
        am_over = max(statistics.median(am_v) - interval, 0.0)
        stack = _defaults_estimate(rng, 60.0, 60.0, 30.0, am_over)
        mine = _defaults_estimate(rng, 10.0, 0.0, 0.0, ours_over)
        print("at documented defaults (estimated: random outage phase + overhead measured above):")
        print(f"  prometheus stack (1m scrape, 1m evaluation, 30s group_wait): {_summary(stack)}")
        print(f"  blipee-monitor (10s check interval, group_wait 0s):          {_summary(mine)}")
        target_ok = (
            statistics.median(ours_v) <= 0.55 * interval
            and _percentile(ours_v, 0.95) <= 1.1 * interval
        )
        print(
            f"  target (median <= 0.55 s, p95 <= 1.1 s at 1 s): {'met' if target_ok else 'NOT met'}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="mode")
    t = sub.add_parser("throughput")
    t.add_argument("--seconds", type=float, default=10.0)
    t.add_argument("--rate", type=int, default=100_000)
    lat = sub.add_parser("latency")
    lat.add_argument("--outages", type=int, default=20)
    lat.add_argument("--interval", type=float, default=1.0)
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
    if mode == "latency":
        return latency(args.outages, args.interval)
    return 2


if __name__ == "__main__":
    sys.exit(main())
