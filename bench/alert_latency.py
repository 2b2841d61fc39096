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
    group_wait 0. Also reports each side's pipeline: from the moment the target answered that
    side's probe with the failure to the POST (the end-to-end figure less the wait for the next
    probe, which is uniform over the interval whatever the monitor).

python bench/alert_latency.py latency --kill [--outages 20] [--interval 1]
    The same comparison when the target's process dies: the target is a separate process serving
    HTTP/1.1 (keep-alive), SIGKILLed at a random moment and started again on the same port once
    every side has paged; measures kill -> firing POST. Three sides watch it in the same run: ours
    (the http check's connection watch on, its default), ours with `watch = false` (the next
    probe finds the outage: the probe-only floor) and the Prometheus stack.

python bench/alert_latency.py defaults [--outages 20] [--spread 120] [--max-seconds 900]
    The same comparison with each side at its documented defaults: the Prometheus stack with
    every timing left unset (scrape and evaluation every 1 m, group_wait 30 s, group_interval
    5 m, rule `for` 0 s) and blipee-monitor with its packaged defaults (check interval 10 s,
    timeout 2 s, group_wait 0 s, group_interval 1 m). One outage of the stack takes minutes, so
    the N outages run concurrently: N targets, both sides watch every one, each target flips to
    failing once at a random moment within `--spread` seconds, and back to healthy once both
    sides have paged (grouping is per target on both sides, so outages do not share a group).
    Measures flip -> firing POST and healthy again -> resolved POST. The run stops waiting at
    `--max-seconds` and stops every process it started.
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import trio

from actors.checks.http import HttpCheckConfig
from actors.clock import SystemClock
from actors.configtypes import format_duration
from actors.models import AlertEvent, AlertStatus
from actors.routing.config import RoutingConfig
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
        actor._evaluate_rules(list(actor._rules), None)
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
    failing_paths: ClassVar[set[str]] = set()
    # (User-Agent, perf_counter) of every failing answer: when each side's probe saw the outage
    failed: ClassVar[list[tuple[str, float]]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        code = 500 if _Target.failing or self.path in _Target.failing_paths else 200
        if code == 500:
            with _Target.lock:
                _Target.failed.append((self.headers.get("User-Agent", ""), time.perf_counter()))
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
    # One row per alert of a payload: (path, its `check` label, its status, perf_counter).
    alerts: ClassVar[list[tuple[str, str, str, float]]] = []

    def do_POST(self) -> None:
        at = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        status = "?"
        rows: list[tuple[str, str, str, float]] = []
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            status = str(data.get("status", ""))
            for alert in data.get("alerts") or ():
                labels = alert.get("labels") if isinstance(alert, dict) else None
                if isinstance(labels, dict):
                    check = str(labels.get("check", ""))
                    rows.append((self.path, check, str(alert.get("status", "")), at))
        with _Receiver.lock:
            _Receiver.arrivals.append((self.path, status, at))
            _Receiver.alerts.extend(rows)
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


def _collect(
    paths: Iterable[str],
    status: str,
    since: float,
    timeout: float,
    into: dict[str, list[float]],
    missed: dict[str, int] | None = None,
) -> None:
    """Wait for each path's POST of `status` at or after `since`, in turn; append its delay to
    `into[path]`, or count it in `missed` when it did not come within `timeout`."""
    for path in paths:
        at = _wait_for(path, status, since, timeout)
        if at is not None:
            into[path].append(at - since)
        elif missed is not None:
            missed[path] += 1


def _first_failing_probe(path: str, since: float) -> float | None:
    """When the target first answered the side `path`'s probe with a failure, at or after `since`
    (ours sends User-Agent blipee-monitor; blackbox_exporter its own)."""
    with _Target.lock:
        for agent, at in _Target.failed:
            if at >= since and agent.startswith("blipee-monitor") == (path == "/ours"):
                return at
    return None


def _ours_config(
    tmp: Path, target: int, receiver: int, interval: float, *, path: str = "/ours", keys: str = ""
) -> Path:
    """Ours watching the target every `interval`, paging `path` on the receiver; `keys` are
    extra lines of the check's table."""
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
{keys}

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
url = "http://127.0.0.1:{receiver}{path}"
"""
    config = tmp / "blipee.toml"
    config.write_text(text, encoding="utf-8")
    return config


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
    return _start_stack(tmp, bb, prom, am)


def _summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"median {statistics.median(values):.3f} s, p95 {_percentile(values, 0.95):.3f} s, "
        f"min {min(values):.3f} s, max {max(values):.3f} s (n={len(values)})"
    )


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
        # from the probe that saw the outage to the POST: the pipeline, without the wait for
        # the next probe (uniform over the interval whatever the monitor)
        pipeline: dict[str, list[float]] = {"/ours": [], "/am": []}
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
                        probed = _first_failing_probe(path, t0)
                        if probed is not None:
                            pipeline[path].append(at - probed)
                _Target.failing = False
                _collect(results, "resolved", time.perf_counter(), 20 * interval + 10, resolutions)
                print(
                    f"  outage {n + 1:2d}: ours {results['/ours'][-1:]}, "
                    f"prometheus stack {results['/am'][-1:]}",
                    flush=True,
                )
        finally:
            _stop(procs)
            target_server.shutdown()
            receiver_server.shutdown()
            if ours.returncode not in (0, -15):
                sys.stderr.write((tmp / "blipee.log").read_text(errors="replace")[-3000:])
    ours_v, am_v = results["/ours"], results["/am"]
    print(f"end to end at a {interval:g} s interval, group_wait 0, {outages} outages:")
    print(f"  blipee-monitor:                                  {_summary(ours_v)}")
    print(f"  prometheus + blackbox_exporter + alertmanager:   {_summary(am_v)}")
    print(f"  missed: {missed}")
    print("pipeline (target answers a probe with the failure -> firing POST):")
    print(f"  blipee-monitor:                                  {_summary(pipeline['/ours'])}")
    print(f"  prometheus + blackbox_exporter + alertmanager:   {_summary(pipeline['/am'])}")
    if ours_v:
        mean = statistics.fmean(ours_v)
        spread = statistics.stdev(ours_v) / len(ours_v) ** 0.5 if len(ours_v) > 1 else math.nan
        # the median of n waits uniform over the interval: standard error ~ interval / 2 / sqrt(n)
        noise = interval / 2 / len(ours_v) ** 0.5
        print(
            f"  ours, mean end to end {mean:.3f} s +- {spread:.3f} (standard error); the wait "
            f"for the next probe is uniform over the interval (mean {interval / 2:g} s), so the "
            f"median of {len(ours_v)} outages moves by about +-{noise:.2f} s between runs"
        )
    print("resolution (target healthy again -> resolved POST, group_interval = interval):")
    print(f"  blipee-monitor:                                  {_summary(resolutions['/ours'])}")
    print(f"  prometheus + blackbox_exporter + alertmanager:   {_summary(resolutions['/am'])}")
    if ours_v and am_v:
        print(
            "  ratio (prometheus stack / ours): median "
            f"{statistics.median(am_v) / statistics.median(ours_v):.2f}x, p95 "
            f"{_percentile(am_v, 0.95) / _percentile(ours_v, 0.95):.2f}x"
        )
        target_ok = (
            statistics.median(ours_v) <= 0.55 * interval
            and _percentile(ours_v, 0.95) <= 1.1 * interval
        )
        print(
            f"  target (median <= 0.55 s, p95 <= 1.1 s at 1 s): {'met' if target_ok else 'NOT met'}"
        )
    print("(each side at its documented defaults: `bench/alert_latency.py defaults`)")
    return 0


# --- end to end when the target's process is killed --------------------------------------------

# A service as it runs: HTTP/1.1 with keep-alive, in its own process (argv[1] = port).
_KILLABLE = """
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
"""

KILL_SIDES = {
    "/ours": "blipee-monitor (watch on, the default)",
    "/nowatch": "blipee-monitor, watch = false",
    "/am": "prometheus + blackbox_exporter + alertmanager",
}


def _start_killable(port: int) -> subprocess.Popen[bytes]:
    """The target process listening on `port` (retried while the port is still being freed)."""
    for _ in range(100):
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLABLE, str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        if proc.stdout.readline().strip() == b"ready":
            return proc
        proc.wait()
        time.sleep(0.1)
    raise RuntimeError(f"the target could not listen on 127.0.0.1:{port}")


def _start_ours(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor", "run", "-c", str(config)],
        env={**os.environ, "BLIPEE_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def kill_latency(outages: int, interval: float) -> int:
    """Run the comparison with the target's process SIGKILLed; prints the figures. Returns a
    process exit status."""
    rng = random.Random()
    target = _free_port()
    receiver, receiver_server = _serve(_Receiver)
    fired: dict[str, list[float]] = {side: [] for side in KILL_SIDES}
    resolved: dict[str, list[float]] = {side: [] for side in KILL_SIDES}
    missed = dict.fromkeys(KILL_SIDES, 0)
    procs: list[subprocess.Popen[bytes]] = []
    victim: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ours: dict[str, Path] = {}
        try:
            victim = _start_killable(target)  # first: no side sees it down at start
            for side, keys in (("/ours", ""), ("/nowatch", "watch = false")):
                home = tmp / side.strip("/")
                home.mkdir()
                config = _ours_config(home, target, receiver, interval, path=side, keys=keys)
                ours[side] = home / "blipee.log"
                procs.append(_start_ours(config, ours[side]))
            procs.extend(_prometheus_stack(tmp, target, receiver, interval))
            time.sleep(5)  # every side starts and sees the target healthy
            for n in range(outages):
                time.sleep(rng.uniform(1.0, 1.0 + 2 * interval))
                t0 = time.perf_counter()
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                _collect(KILL_SIDES, "firing", t0, 20 * interval + 10, fired, missed)
                victim = _start_killable(target)
                _collect(KILL_SIDES, "resolved", time.perf_counter(), 20 * interval + 10, resolved)
                print(
                    f"  outage {n + 1:2d}: "
                    + ", ".join(
                        f"{side[1:]} {fired[side][-1]:.3f} s" if fired[side] else f"{side[1:]} -"
                        for side in KILL_SIDES
                    ),
                    flush=True,
                )
        finally:
            if victim is not None:
                victim.kill()
                victim.wait()
            _stop(procs)
            receiver_server.shutdown()
            for side, log in ours.items():
                text = log.read_text(errors="replace") if log.exists() else ""
                if text.strip():
                    sys.stderr.write(f"{side} log:\n{text[-3000:]}\n")
    width = max(len(name) for name in KILL_SIDES.values()) + 1
    print(f"target process SIGKILLed -> firing POST, {interval:g} s interval, {outages} outages:")
    for side, name in KILL_SIDES.items():
        print(f"  {name + ':':<{width}} {_summary(fired[side])}")
    print(f"  missed: {missed}")
    for other in ("/nowatch", "/am"):
        print(
            f"  ratio ({KILL_SIDES[other]} / ours): median "
            f"{_ratio(fired[other], fired['/ours'], 0.5)}, "
            f"p95 {_ratio(fired[other], fired['/ours'], 0.95)}"
        )
    print("resolution (target process started again -> resolved POST):")
    for side, name in KILL_SIDES.items():
        print(f"  {name + ':':<{width}} {_summary(resolved[side])}")
    ok = bool(fired["/ours"]) and statistics.median(fired["/ours"]) <= 0.1
    print(f"  target (ours, median <= 0.1 s): {'met' if ok else 'NOT met'}")
    return 0 if all(count == 0 for count in missed.values()) else 1


# --- end to end at each side's documented defaults ---------------------------------------------

SIDES = {"/ours": "blipee-monitor", "/am": "prometheus stack"}


@dataclass
class _Outage:
    """One target's outage: when it flips, and when each side's POSTs arrive (perf_counter)."""

    check: str
    start_at: float
    flipped: float | None = None
    back: float | None = None
    fired: dict[str, float] = field(default_factory=dict)
    resolved: dict[str, float] = field(default_factory=dict)


def _first_alert(path: str, check: str, status: str, since: float) -> float | None:
    with _Receiver.lock:
        for p, c, st, at in _Receiver.alerts:
            if p == path and c == check and st == status and at >= since:
                return at
    return None


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except OSError:
        return 0, b""


def _ours_defaults_config(tmp: Path, target: int, receiver: int, checks: list[str]) -> Path:
    """Ours with every timing at its packaged default: no interval, timeout, group_* keys."""
    api, metrics = _free_port(), _free_port()
    check_text = "".join(
        f'[[checks]]\nname = "{c}"\nkind = "http"\nurl = "http://127.0.0.1:{target}/{c}"\n\n'
        for c in checks
    )
    text = f"""
[server]
listen = "127.0.0.1:{api}"
metrics_listen = "127.0.0.1:{metrics}"

[storage]
path = "{tmp / "monitor.db"}"

[log]
level = "warning"

{check_text}
# The shape of the packaged "Database Connection Issues" rule, for every check.
[[rules]]
id = "target-down"
name = "Target Down"
severity = "critical"
channels = ["hooks"]
summary = "{{{{ labels.check }}}} is down"
[rules.condition]
metric = "health_check_up"
aggregate = "last"
window = "5m"
operator = "=="
threshold = 0

# One group per target (the outages overlap in time); every timing at its default.
[routing]
group_by = ["alertname", "check"]

[channels.hooks]
kind = "webhook"
url = "http://127.0.0.1:{receiver}/ours"
"""
    path = tmp / "blipee.toml"
    path.write_text(text, encoding="utf-8")
    (tmp / "ours.port").write_text(str(api), encoding="utf-8")
    return path


def _stack_defaults(
    tmp: Path, target: int, receiver: int, checks: list[str]
) -> tuple[list[subprocess.Popen[bytes]], int, int]:
    """The Prometheus stack with every timing unset; returns (processes, prometheus, am ports)."""
    bb, prom, am = _free_port(), _free_port(), _free_port()
    (tmp / "blackbox.yml").write_text("modules:\n  http_2xx:\n    prober: http\n", "utf-8")
    (tmp / "rules.yml").write_text(
        "groups:\n- name: bench\n  rules:\n  - alert: TargetDown\n    expr: probe_success == 0\n",
        encoding="utf-8",
    )
    static = "".join(
        f'  - targets: ["http://127.0.0.1:{target}/{c}"]\n    labels: {{check: {c}}}\n'
        for c in checks
    )
    (tmp / "prometheus.yml").write_text(
        f"""# No `global:` section: scrape and evaluation timings at their defaults.
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
{static}  relabel_configs:
  - source_labels: [__address__]
    target_label: __param_target
  - source_labels: [__param_target]
    target_label: instance
  - target_label: __address__
    replacement: 127.0.0.1:{bb}
""",
        encoding="utf-8",
    )
    (tmp / "alertmanager.yml").write_text(
        f"""# group_wait, group_interval, repeat_interval at their defaults; one group per target.
route:
  receiver: hook
  group_by: [alertname, check]
receivers:
- name: hook
  webhook_configs:
  - url: http://127.0.0.1:{receiver}/am
""",
        encoding="utf-8",
    )
    return _start_stack(tmp, bb, prom, am), prom, am


def _start_stack(tmp: Path, bb: int, prom: int, am: int) -> list[subprocess.Popen[bytes]]:
    """Start blackbox_exporter, Alertmanager and Prometheus on their generated configs."""
    commands = [
        [
            "/usr/bin/prometheus-blackbox-exporter",
            f"--config.file={tmp / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{bb}",
        ],
        [
            "/usr/bin/prometheus-alertmanager",
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{am}",
            "--cluster.listen-address=",
        ],
        [
            "/usr/bin/prometheus",
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prom'}",
            f"--web.listen-address=127.0.0.1:{prom}",
        ],
    ]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            quiet = subprocess.DEVNULL
            procs.append(subprocess.Popen(command, stdout=quiet, stderr=quiet))
    except BaseException:
        _stop(procs)
        raise
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Alertmanager's documented route defaults; its status API does not show unset route timings.
_AM_DEFAULTS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


def _effective_timings(prom: int, am: int) -> str:
    """The stack's timings: Prometheus's loaded configuration (defaults filled in) and the
    Alertmanager route's keys (unset ones at their documented defaults)."""
    found: list[str] = []
    _, body = _get(f"http://127.0.0.1:{prom}/api/v1/status/config")
    try:
        yaml_text = str(json.loads(body)["data"]["yaml"])
    except (ValueError, KeyError, TypeError):
        yaml_text = ""
    _, body = _get(f"http://127.0.0.1:{am}/api/v2/status")
    try:
        am_text = str(json.loads(body)["config"]["original"])
    except (ValueError, KeyError, TypeError):
        am_text = ""
    keys = [
        (k, yaml_text, "?") for k in ("scrape_interval", "scrape_timeout", "evaluation_interval")
    ]
    keys += [(k, am_text, f"unset (default {v})") for k, v in _AM_DEFAULTS.items()]
    for key, text, missing in keys:
        for line in text.splitlines():
            if line.strip().startswith(f"{key}:"):
                found.append(line.strip())
                break
        else:
            found.append(f"{key}: {missing}")
    return ", ".join(found)


def _ours_timings() -> str:
    """Our packaged defaults, read from the configuration models."""
    check = HttpCheckConfig.model_fields
    routing = RoutingConfig.model_fields
    return ", ".join(
        f"{name}: {format_duration(float(fields[key].default))}"
        for name, fields, key in (
            ("check interval", check, "interval"),
            ("check timeout", check, "timeout"),
            ("group_wait", routing, "group_wait"),
            ("group_interval", routing, "group_interval"),
            ("repeat_interval", routing, "repeat_interval"),
        )
    )


def _ratio(stack: list[float], ours: list[float], q: float) -> str:
    if not stack or not ours:
        return "n/a"
    a, b = _percentile(stack, q), _percentile(ours, q)
    if q == 0.5:
        a, b = statistics.median(stack), statistics.median(ours)
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def defaults(outages: int, spread: float, max_seconds: float) -> int:
    """Run the comparison at documented defaults; prints the figures. Returns an exit status."""
    began = time.perf_counter()
    deadline = began + max_seconds - 20  # leave time to stop the processes
    rng = random.Random()
    checks = [f"t{n}" for n in range(outages)]
    target, target_server = _serve(_Target)
    receiver, receiver_server = _serve(_Receiver)
    procs: list[subprocess.Popen[bytes]] = []
    plan: list[_Outage] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        config = _ours_defaults_config(tmp, target, receiver, checks)
        api = int((tmp / "ours.port").read_text(encoding="utf-8"))
        log = (tmp / "blipee.log").open("wb")
        try:
            stack, prom, am = _stack_defaults(tmp, target, receiver, checks)
            procs.extend(stack)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "supervisor", "run", "-c", str(config)],
                    env={**os.environ, "BLIPEE_LOG_LEVEL": "warning"},
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
            # Warm up: the stack has probed every target once (its first scrape comes at a
            # per-target offset within the 1 m interval) and ours answers its readiness probe.
            ready = False
            while time.perf_counter() < min(deadline, began + 150):
                if any(p.poll() is not None for p in procs):
                    break
                _, body = _get(f"http://127.0.0.1:{prom}/api/v1/targets")
                try:
                    active = json.loads(body)["data"]["activeTargets"]
                    up = sum(1 for t in active if t.get("health") == "up")
                except (ValueError, KeyError, TypeError):
                    up = 0
                status, _ = _get(f"http://127.0.0.1:{api}/api/health/ready")
                if up == outages and status == 200:
                    ready = True
                    break
                time.sleep(0.5)
            if not ready:
                print("the stacks did not start (or see every target up) in time", flush=True)
                return 1
            print(f"stack timings in effect: {_effective_timings(prom, am)}", flush=True)
            print(f"blipee-monitor timings in effect: {_ours_timings()}", flush=True)
            print(
                f"warm-up {time.perf_counter() - began:.0f} s; {outages} outages at random moments"
                f" within {spread:g} s",
                flush=True,
            )
            start = time.perf_counter()
            plan = [_Outage(c, start + rng.uniform(0, spread)) for c in checks]
            fire_timeout = 60 + 60 + 30 + 60.0  # scrape + evaluation + group_wait + margin
            while time.perf_counter() < deadline:
                now = time.perf_counter()
                pending = False
                for o in plan:
                    path = f"/{o.check}"
                    if o.flipped is None:
                        pending = True
                        if now >= o.start_at:
                            _Target.failing_paths.add(path)
                            o.flipped = time.perf_counter()
                        continue
                    if o.back is None:
                        pending = True
                        for side in SIDES:
                            if side not in o.fired:
                                at = _first_alert(side, o.check, "firing", o.flipped)
                                if at is not None:
                                    o.fired[side] = at - o.flipped
                        if len(o.fired) == len(SIDES) or now - o.flipped > fire_timeout:
                            _Target.failing_paths.discard(path)
                            o.back = time.perf_counter()
                            print(
                                f"  {o.check:>3}: firing after "
                                + ", ".join(
                                    f"{name} {o.fired[s]:.3f} s" if s in o.fired else f"{name} -"
                                    for s, name in SIDES.items()
                                ),
                                flush=True,
                            )
                        continue
                    for side in o.fired:
                        if side not in o.resolved:
                            at = _first_alert(side, o.check, "resolved", o.back)
                            if at is not None:
                                o.resolved[side] = at - o.back
                    if len(o.resolved) < len(o.fired):
                        pending = True
                if not pending:
                    break
                time.sleep(0.05)
        finally:
            _stop(procs)
            log.close()
            target_server.shutdown()
            receiver_server.shutdown()
            ours = procs[-1] if procs else None
            if ours is not None and ours.returncode not in (0, -15):
                sys.stderr.write((tmp / "blipee.log").read_text(errors="replace")[-3000:])
    fired = {s: [o.fired[s] for o in plan if s in o.fired] for s in SIDES}
    resolved = {s: [o.resolved[s] for o in plan if s in o.resolved] for s in SIDES}
    width = max(len(n) for n in SIDES.values()) + 1
    took = time.perf_counter() - began
    print(f"end to end at documented defaults, {outages} outages, {took:.0f} s in all:")
    print("firing (target fails -> firing POST):")
    for side, name in SIDES.items():
        print(f"  {name + ':':<{width}} {_summary(fired[side])}")
    print(
        f"  ratio (prometheus stack / ours): median {_ratio(fired['/am'], fired['/ours'], 0.5)}, "
        f"p95 {_ratio(fired['/am'], fired['/ours'], 0.95)}"
    )
    print("resolution (target healthy again -> resolved POST):")
    for side, name in SIDES.items():
        print(f"  {name + ':':<{width}} {_summary(resolved[side])}")
    missed = {name: outages - len(fired[s]) for s, name in SIDES.items()}
    unresolved = {name: len(fired[s]) - len(resolved[s]) for s, name in SIDES.items()}
    print(f"  missed firing: {missed}; resolution not seen by the deadline: {unresolved}")
    return 0 if all(len(v) == outages for v in fired.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="mode")
    t = sub.add_parser("throughput")
    t.add_argument("--seconds", type=float, default=10.0)
    t.add_argument("--rate", type=int, default=100_000)
    lat = sub.add_parser("latency")
    lat.add_argument("--outages", type=int, default=20)
    lat.add_argument("--interval", type=float, default=1.0)
    lat.add_argument("--kill", action="store_true", help="SIGKILL the target's process")
    d = sub.add_parser("defaults")
    d.add_argument("--outages", type=int, default=20)
    d.add_argument("--spread", type=float, default=120.0)
    d.add_argument("--max-seconds", type=float, default=900.0)
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
        if args.kill:
            return kill_latency(args.outages, args.interval)
        return latency(args.outages, args.interval)
    if mode == "defaults":
        return defaults(args.outages, args.spread, args.max_seconds)
    return 2


if __name__ == "__main__":
    sys.exit(main())
