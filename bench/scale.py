"""The checks curve of one process: N http checks every second against a local nginx.

For each N (default 100, 500, 1,000, 2,000), `python -m supervisor run` is started on a generated
configuration: N http checks (`critical = true`, interval 1 s, timeout 1 s) on distinct paths of
one nginx (the target, started here with an access log; its CPU is not counted), the API and
/metrics listeners on free 127.0.0.1 ports, logs at warning. Measured, in this order:

- start-up: from launching the process to `GET /api/health/ready` answering 200 (every critical
  check has run once and passes), polled every 100 ms, at most `READY_LIMIT` seconds, and the
  CPU the process had used by then (imports, configuration, tree, first round);
- over `DURATION` seconds after a `WARMUP`: CPU of the monitor (user + system, /proc), runs per
  second counted at the target (nginx's access log lines in the window) and CPU per run;
- RSS at the end of that window;
- `SCRAPES` scrapes of `/metrics` (OpenMetrics, gzip), wall time of each as the client sees it;
  the max check delay during a scrape is the longest gap between two consecutive requests that
  nginx logged while a scrape was in flight (the event loop blocked by a render shows as a gap;
  the same figure outside scrapes is printed for reference; a scrape not answered within 30 s
  shows as inf);
- stop: from SIGTERM to the process's exit, at most 30 s, and the CPU it used meanwhile.

`--interval S` runs the checks every S seconds instead of 1 (e.g. 5,000 checks every 10 s: the
start-up and stop of many checks at a pace one core keeps).

The peer of this curve is the issue's target (N checks kept up at 1 s: runs/s = N), not another
program: figures go to docs/benchmarks.md, before and after a change, from the same machine.

    .venv/bin/python bench/scale.py [--interval S] [N ...]
    .venv/bin/python bench/scale.py --workers W [--interval S] [N ...]
    .venv/bin/python bench/scale.py --render [N ...]

With --workers W, the monitor is `run --workers W` on a PostgreSQL database made for the run (the
local server, 127.0.0.1:5432, user postgres; dropped after): W sharded replicas on the one API
address. CPU and RSS are those of the parent and its workers together (the process tree by
parent id, each process counted over the window from its own samples: `bench.proctree`);
ready is the shared address answering 200 on 3 x W new connections in a row (each worker's own
checks have run); the scrapes go to worker 0's /metrics.

With --render, no process is started: for N checks (three results each recorded into a metric
store, as `HealthState` does), it prints the CPU a /metrics render costs on the event loop (the
snapshot) and in the worker thread (text, OpenMetrics + gzip), against prometheus_client's own
encoders over the same store (the peer, all of it on the loop before), best of 5.

With --rules, the rules curve: the CPU share of a core that alert rules add to the monitor
running N http checks at 1 s (default 200). For 10, 100 and 1,000 rules on `health_check_up`,
unfiltered (every rule reads every check's series) and filtered (rule i selects one check's
series, `labels = { check = "url<i mod N>" }`), the monitor's CPU over `DURATION` s after a
`WARMUP` (no scrapes) minus the same run with no rules. `--before DIR` runs the same points
from another tree (a copy of another revision, e.g. `git archive main`) in the same run,
alternating with this one. The peer: Prometheus scraping the monitor's /metrics (no rules of
ours) every second and evaluating the same rules, exported by `export-rules`, every second; its
CPU over the same window minus its CPU with no rules.

    .venv/bin/python bench/scale.py --rules [--before DIR] [N]

With --rules --in-process, the same points without processes or network: N checks' results
published every simulated second (a `FixedClock`) into a `HealthState` and its metric store,
each result followed by the rules actor's sample-driven round over its series
(`evaluate_changed`), and a full round (the tick) every second; the CPU time of the actor's
rounds (`time.process_time`) per simulated second is its share of a core. Less noisy on a
loaded machine (no other process of ours, CPU time of the rounds alone); `--before DIR` runs
each point in a child process importing DIR's tree.

The monitor is run from the tree this file is in (`-m supervisor` with that tree as working
directory), so a copy of another revision benchmarks that revision.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench import proctree
from bench.checks_support import (
    cpu_seconds,
    free_port,
    machine,
    start_nginx,
    start_prometheus,
    stop,
)

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 3.0
DURATION = 10.0
READY_LIMIT = 90.0
SCRAPES = 5
STOP_LIMIT = 30.0


@dataclass
class Point:
    """The figures of one N."""

    checks: int
    ready: float | None
    ready_cpu: float | None
    cpu_core: float
    runs_per_s: float
    cpu_per_run_us: float
    rss_mb: float
    scrape_ms: list[float]
    scrape_bytes: int
    gap_scrape_ms: float
    gap_idle_ms: float
    stop_s: float | None
    stop_cpu: float | None


def _config(
    tmp: Path,
    url: str,
    n: int,
    api: int,
    metrics: int,
    interval: float = 1.0,
    rules: tuple[int, bool] = (0, False),
    database: str | None = None,
) -> Path:
    storage = f'url = "{database}"' if database else f'path = "{tmp / "monitor.db"}"'
    lines = [
        f'[server]\nlisten = "127.0.0.1:{api}"\nmetrics_listen = "127.0.0.1:{metrics}"\n',
        f"[storage]\n{storage}\n",
        '[log]\nlevel = "warning"\n',
    ]
    for i in range(n):
        lines.append(
            f'[[checks]]\nname = "url{i}"\nkind = "http"\nurl = "{url}/u{i}"\n'
            f'interval = "{interval:g}s"\ntimeout = "1s"\ncritical = true\n'
        )
    count, filtered = rules
    for i in range(count):
        labels = f'{{ check = "url{i % n}" }}' if filtered else "{}"
        lines.append(
            f'[[rules]]\nid = "r{i}"\nname = "rule {i}"\n[rules.condition]\n'
            f'metric = "health_check_up"\nlabels = {labels}\naggregate = "last"\n'
            'window = "1m"\noperator = "<"\nthreshold = 1\n'
        )
    path = tmp / "monitor.toml"
    path.write_text("\n".join(lines))
    return path


def _stamps(log: Path) -> list[float]:
    try:
        text = log.read_text()
    except FileNotFoundError:
        return []
    return [float(line) for line in text.split()]


def _max_gap(stamps: list[float], windows: list[tuple[float, float]]) -> float:
    """The longest gap between consecutive requests that overlaps one of `windows`."""
    worst = 0.0
    for a, b in itertools.pairwise(stamps):
        if any(b >= start and a <= end for start, end in windows):
            worst = max(worst, b - a)
    return worst


def _wait_ready(
    api: int, started: float, pid: int, in_a_row: int = 1
) -> tuple[float, float] | None:
    """(Seconds from `started` until `in_a_row` new connections in a row answer ready (each may
    reach another worker), CPU seconds of `pid` and its workers by then), or None past
    `READY_LIMIT`."""
    client = httpx.Client(timeout=5.0, headers={"Connection": "close"})
    deadline = started + READY_LIMIT
    row = 0
    try:
        while time.monotonic() < deadline:
            try:
                ready = client.get(f"http://127.0.0.1:{api}/api/health/ready").status_code == 200
            except httpx.HTTPError:
                ready = False
            row = row + 1 if ready else 0
            if row >= in_a_row:
                return time.monotonic() - started, _cpu(pid)
            if not ready:
                time.sleep(0.1)
    finally:
        client.close()
    return None


def _wait_exit(process: subprocess.Popen[bytes], limit: float) -> float | None:
    """Wait at most `limit` s for `process` to exit; the CPU seconds it used in all (None: still
    running)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.01)
    return None


@contextmanager
def _database() -> Iterator[str]:
    """A PostgreSQL database on the local server for one run, dropped after."""
    import psycopg

    server = "postgresql://postgres@127.0.0.1:5432"
    name = f"bench_scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _cpu(pid: int) -> float:
    """CPU seconds `pid` and its descendants (a parent of workers and its workers) used in
    all."""
    return proctree.sample(pid).seconds


def _free_ports(count: int, taken: set[int]) -> int:
    """The first of `count` consecutive ports free a moment ago on 127.0.0.1, none in `taken`
    (worker i serves /metrics on the configured port + i)."""
    while True:
        first = free_port()
        ports = range(first, first + count)
        if ports[-1] > 65535 or taken.intersection(ports):
            continue
        try:
            with ExitStack() as stack:
                for each in ports[1:]:
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", each))
        except OSError:
            continue
        return first


def measure(
    tmp: Path, n: int, interval: float = 1.0, workers: int = 0, database: str | None = None
) -> Point:
    """Start nginx and the monitor with `n` checks (`workers` processes on `database`, 0: one
    process on SQLite), measure, stop both."""
    log = tmp / "access.log"
    port, api = free_port(), free_port()
    metrics = _free_ports(max(workers, 1), taken={port, api})
    nginx = start_nginx(tmp, port, access_log=log)
    config = _config(tmp, f"http://127.0.0.1:{port}", n, api, metrics, interval, database=database)
    started = time.monotonic()
    extra = ["--workers", str(workers)] if workers else []
    with (tmp / "monitor.log").open("wb") as errors:  # the child keeps its own descriptor
        monitor = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "-c", str(config), *extra],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    stop_s: float | None = None
    stop_cpu: float | None = None
    try:
        ready = _wait_ready(api, started, monitor.pid, 3 * workers if workers else 1)
        time.sleep(WARMUP)
        first = proctree.sample(monitor.pid)
        window_start = time.time()
        time.sleep(DURATION)
        window_end = time.time()
        last = proctree.sample(monitor.pid)
        cpu = proctree.window_cpu(first, last)
        elapsed = proctree.window_seconds(first, last)
        rss = last.rss_pages * proctree.PAGE
        scrapes: list[float] = []
        windows: list[tuple[float, float]] = []
        size = 0
        with httpx.Client(timeout=30.0) as client:
            for _ in range(SCRAPES):
                time.sleep(0.5)
                wall_start = time.time()
                begin = time.perf_counter()
                try:
                    response = client.get(
                        f"http://127.0.0.1:{metrics}/metrics",
                        headers={
                            "Accept": "application/openmetrics-text; version=1.0.0",
                            "Accept-Encoding": "gzip",
                        },
                    )
                    size = len(response.content)
                except httpx.HTTPError:  # no answer within 30 s: shown as such
                    scrapes.append(math.inf)
                else:
                    scrapes.append((time.perf_counter() - begin) * 1000)
                windows.append((wall_start, time.time()))
        time.sleep(0.5)  # nginx flushes its log every 100 ms
        stamps = _stamps(log)
        runs = sum(1 for t in stamps if window_start <= t < window_end)
        idle = [(window_start, window_end)]
        cpu_running = _cpu(monitor.pid)
        term = time.monotonic()
        if monitor.poll() is not None:  # it did not live until asked to stop: say why
            tail = (tmp / "monitor.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"the monitor exited early with {monitor.returncode}:\n{tail}")
        monitor.send_signal(signal.SIGTERM)
        total_cpu = _wait_exit(monitor, STOP_LIMIT)
        if total_cpu is not None:
            stop_s = time.monotonic() - term
            stop_cpu = total_cpu - cpu_running
        return Point(
            checks=n,
            ready=ready[0] if ready is not None else None,
            ready_cpu=ready[1] if ready is not None else None,
            cpu_core=cpu / elapsed,
            runs_per_s=runs / (window_end - window_start),
            cpu_per_run_us=cpu / runs * 1e6 if runs else float("nan"),
            rss_mb=rss / 1e6,
            scrape_ms=scrapes,
            scrape_bytes=size,
            gap_scrape_ms=_max_gap(stamps, windows) * 1000,
            gap_idle_ms=_max_gap(stamps, idle) * 1000,
            stop_s=stop_s,
            stop_cpu=stop_cpu,
        )
    finally:
        stop(monitor)
        stop(nginx)


RULE_POINTS = [(0, False), (10, False), (10, True), (100, False), (100, True), (1000, False)]
RULE_POINTS += [(1000, True)]


def _rules_cpu(tree: Path, tmp: Path, n: int, rules: tuple[int, bool], peer: bool) -> float:
    """CPU share of a core over `DURATION`: of the monitor from `tree` with `rules`, or (`peer`)
    of Prometheus evaluating them (exported) over the monitor's /metrics, the monitor without
    rules."""
    port, api, metrics = free_port(), free_port(), free_port()
    nginx = start_nginx(tmp, port)
    config = _config(
        tmp, f"http://127.0.0.1:{port}", n, api, metrics, rules=(0, False) if peer else rules
    )
    processes = [nginx]
    try:
        monitor = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "-c", str(config)],
            cwd=tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(monitor)
        if _wait_ready(api, time.monotonic(), monitor.pid) is None:
            return math.nan
        measured = monitor
        if peer:
            exported = tmp / "rules.yml"
            source = _config(tmp, "http://127.0.0.1:1", n, api, metrics, rules=rules)
            subprocess.run(
                [sys.executable, "-m", "supervisor", "export-rules", "-c", str(source)],
                cwd=ROOT,
                stdout=exported.open("w"),
                stderr=subprocess.DEVNULL,
                check=True,
            )
            files = f"rule_files:\n  - {exported}\n" if rules[0] else ""
            measured = start_prometheus(
                tmp,
                free_port(),
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                f"  evaluation_interval: 1s\n{files}scrape_configs:\n"
                f"  - job_name: monitor\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{metrics}']\n",
            )
            processes.append(measured)
        time.sleep(WARMUP)
        before = cpu_seconds(measured.pid)
        time.sleep(DURATION)
        return (cpu_seconds(measured.pid) - before) / DURATION
    finally:
        for process in reversed(processes):
            stop(process)


def rules_curve(n: int, before: Path | None) -> None:
    """Print the rules curve over `n` checks: ours (and `before`'s) and the peer's."""
    trees = [("after", ROOT)] + ([("before", before)] if before is not None else [])
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{n} http checks at 1 s; CPU share of a core over {DURATION:.0f} s, rules on")
    print("health_check_up ('filtered': one check each), added = minus the run without rules")
    cpu: dict[tuple[str, int, bool], float] = {}
    for point in RULE_POINTS:
        for name, tree in [*trees, ("prometheus", ROOT)]:
            with tempfile.TemporaryDirectory() as tmp_name:
                cpu[(name, *point)] = _rules_cpu(
                    tree, Path(tmp_name), n, point, peer=name == "prometheus"
                )
    names = [name for name, _ in trees] + ["prometheus"]
    print("rules  filtered  " + "  ".join(f"{name:>10} (added)" for name in names), end="")
    print("  after/peer (added)" + ("  before/after (added)" if before is not None else ""))
    for count, filtered in RULE_POINTS:
        added = {name: cpu[(name, count, filtered)] - cpu[(name, 0, False)] for name in names}
        row = "  ".join(
            f"{cpu[(name, count, filtered)]:10.3f} ({added[name]:+.3f})" for name in names
        )
        ratios = f"{_ratio(added['after'], added['prometheus']):>19}"
        if before is not None:
            ratios += f"  {_ratio(added['before'], added['after']):>20}"
        print(f"{count:5d}  {'yes' if filtered else 'no':>8}  {row}  {ratios}", flush=True)


IN_PROCESS_SECONDS = 20


def rules_in_process(n: int, count: int, filtered: bool) -> float:
    """The rules actor's CPU share of a core over `n` checks (see the module docstring)."""
    import trio

    from actors.clock import FixedClock
    from actors.models import AlertEvent, CheckResult, CheckStatus
    from actors.rules.actor import RulesActor
    from actors.rules.config import RuleConfig
    from actors.state import HealthState
    from actors.telemetry.store import MetricStore

    rules = [
        RuleConfig.model_validate(
            {
                "id": f"r{i}",
                "name": f"rule {i}",
                "condition": {
                    "metric": "health_check_up",
                    "labels": {"check": f"url{i % n}"} if filtered else {},
                    "window": "1m",
                    "operator": "<",
                    "threshold": 1,
                },
            }
        )
        for i in range(count)
    ]

    async def run() -> float:
        clock = FixedClock()
        store = MetricStore(clock=clock)
        health = HealthState(
            checks={f"url{i}": True for i in range(n)}, recorder=store, clock=clock
        )
        send, receive = trio.open_memory_channel[AlertEvent](math.inf)
        actor = RulesActor(rules=rules, store=store, sink=send, clock=clock, listen=False)
        cpu = 0.0
        for second in range(IN_PROCESS_SECONDS):
            for i in range(n):
                clock.advance(1.0 / n)
                failing = (i + second) % 50 == 0  # 2 % of the results fail, in turn
                health.publish(
                    CheckResult(
                        check=f"url{i}",
                        status=CheckStatus.FAIL if failing else CheckStatus.PASS,
                        message="ok",
                        latency_seconds=0.003,
                        timestamp=clock.now(),
                        observed=CheckStatus.FAIL if failing else CheckStatus.PASS,
                        critical=True,
                    )
                )
                start = time.process_time()
                await actor.evaluate_changed({"health_check_up": {(f"url{i}",)}})
                cpu += time.process_time() - start
            start = time.process_time()
            await actor.evaluate(None)
            cpu += time.process_time() - start
            while True:
                try:
                    receive.receive_nowait()
                except trio.WouldBlock:
                    break
        return cpu / IN_PROCESS_SECONDS

    return trio.run(run)


def rules_curve_in_process(n: int, before: Path | None) -> None:
    """Print the in-process rules curve over `n` checks, this tree's (and `before`'s)."""
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{n} checks at 1 s (simulated, {IN_PROCESS_SECONDS} s); CPU share of a core of the")
    print("rules actor's rounds ('filtered': one check each)")
    print("rules  filtered     after" + ("    before  before/after" if before else ""))
    for count, filtered in RULE_POINTS[1:]:
        after = rules_in_process(n, count, filtered)
        row = f"{count:5d}  {'yes' if filtered else 'no':>8}  {after:8.4f}"
        if before is not None:
            child = subprocess.run(
                [sys.executable, __file__, "--rules-point", str(before), str(n), str(count)]
                + (["filtered"] if filtered else []),
                capture_output=True,
                text=True,
                check=True,
            )
            earlier = float(child.stdout.split()[-1])
            row += f"  {earlier:8.4f}  {_ratio(earlier, after, 0.0001):>12}"
        print(row, flush=True)


def _ratio(a: float, b: float, floor: float = 0.005) -> str:
    """`a / b`, or n/a where `b` is within the noise (`floor`, a share of a core)."""
    return f"{a / b:.2f}x" if b > floor else "n/a (~0)"


def _best(fn: Callable[[], object]) -> float:
    """Best CPU seconds of 5 calls of `fn`."""
    best = math.inf
    for _ in range(5):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def render_cost(n: int) -> None:
    """Print the CPU of one /metrics render of `n` checks: ours (loop + thread) and the peer's."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    from actors.clock import SystemClock
    from actors.models import CheckResult, CheckStatus
    from actors.state import HealthState
    from actors.telemetry.exposition import freeze, render
    from actors.telemetry.store import MetricStore
    from actors.web.metrics import _encode

    store = MetricStore(clock=SystemClock())
    health = HealthState(checks={f"c{i}": True for i in range(n)}, recorder=store)
    for _ in range(3):
        for i in range(n):
            health.publish(
                CheckResult(
                    check=f"c{i}",
                    status=CheckStatus.PASS,
                    message="ok",
                    latency_seconds=0.003 * (i % 7),
                    timestamp=time.time(),
                    observed=CheckStatus.PASS,
                    critical=True,
                )
            )
    registry = CollectorRegistry(auto_describe=True)
    registry.register(store.collector())
    frames = freeze(store)
    loop = _best(lambda: freeze(store))
    text = _best(lambda: _encode(render(frames), [], False, False))
    om = _best(lambda: _encode(render(frames, openmetrics=True), [], True, True))
    peer_text = _best(lambda: generate_latest(registry))
    peer_om = _best(lambda: gzip.compress(generate_openmetrics(registry), compresslevel=5))  # type: ignore[no-untyped-call]
    lines = _encode(render(frames), [], False, False).count(b"\n")
    print(
        f"{n:6d}  {lines:7d}  {loop * 1000:9.1f}  {text * 1000:8.1f}  {om * 1000:11.1f}  "
        f"{peer_text * 1000:9.1f}  {peer_om * 1000:12.1f}  "
        f"{(loop + om) / peer_om:5.2f}x  {loop / peer_om:5.3f}x",
        flush=True,
    )


def main() -> None:
    if sys.argv[1:2] == ["--rules-point"]:  # a child of --in-process --before: another tree
        sys.path.insert(0, sys.argv[2])
        n, count = int(sys.argv[3]), int(sys.argv[4])
        print(rules_in_process(n, count, sys.argv[5:6] == ["filtered"]))
        return
    if "--rules" in sys.argv and "--in-process" in sys.argv:
        given = [int(a) for a in sys.argv[1:] if a.isdigit()]
        before = Path(sys.argv[sys.argv.index("--before") + 1]) if "--before" in sys.argv else None
        rules_curve_in_process(given[0] if given else 200, before)
        return
    if "--rules" in sys.argv:
        given = [int(a) for a in sys.argv[1:] if a.isdigit()]
        before = Path(sys.argv[sys.argv.index("--before") + 1]) if "--before" in sys.argv else None
        rules_curve(given[0] if given else 200, before)
        return
    parser = argparse.ArgumentParser(description="The checks curve (see the module docstring).")
    parser.add_argument("counts", nargs="*", type=int, metavar="N")
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S")
    parser.add_argument("--workers", type=int, default=0, metavar="W")
    args = parser.parse_args()
    counts = args.counts or [100, 500, 1000, 2000]
    interval = args.interval
    if args.render:
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; CPU ms, best of 5")
        print(
            "checks    lines  ours:loop  thread:text  thread:om+gz  peer:text  peer:om+gz  "
            "ours/peer  loop/peer (om+gz)"
        )
        for n in counts:
            render_cost(n)
        return
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    shape = f"run --workers {args.workers} on PostgreSQL" if args.workers else "one process"
    print(
        f"tree: {ROOT}; {shape}; N http checks at {interval:g} s, all critical;"
        f" window {DURATION:.0f} s"
    )
    print(
        "checks  ready(s) / CPU(s)  CPU(core)  runs/s  CPU/run(us)  RSS(MB)  scrape ms (min/max)  "
        "gap in scrape / idle (ms)  stop(s) / CPU(s)  load"
    )
    for n in counts:
        with tempfile.TemporaryDirectory() as tmp_name:
            if args.workers:
                with _database() as url:
                    p = measure(Path(tmp_name), n, interval, args.workers, url)
            else:
                p = measure(Path(tmp_name), n, interval)
        ready = f"{p.ready:8.1f}" if p.ready is not None else f">{READY_LIMIT:6.0f}s"
        ready += f" / {p.ready_cpu:6.2f}" if p.ready_cpu is not None else " /      -"
        stopped = f"{p.stop_s:6.2f}" if p.stop_s is not None else f">{STOP_LIMIT:.0f}"
        stopped += f" / {p.stop_cpu:5.2f}" if p.stop_cpu is not None else " /     -"
        print(
            f"{p.checks:6d}  {ready}  {p.cpu_core:9.2f}  {p.runs_per_s:6.0f}  "
            f"{p.cpu_per_run_us:11.0f}  {p.rss_mb:7.0f}  "
            f"{min(p.scrape_ms):7.0f} / {max(p.scrape_ms):7.0f}     "
            f"{p.gap_scrape_ms:10.0f} / {p.gap_idle_ms:5.0f}            {stopped}"
            f"  {os.getloadavg()[0]:4.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
