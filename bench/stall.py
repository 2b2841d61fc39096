"""Does anything a client asks stall the event loop? /api/health/live latency under load.

Ours: one `python -m supervisor run` process. A thread asks `GET /api/health/live` every 10 ms
on a kept-alive connection for the whole run and records each latency; the worst and the p99
of the answers that overlap each phase are printed:

(a) scrape: 40,000 series pushed through `POST /api/v1/events` (`business_metric`
    `network_connections` for 40,000 organisations), then `GET /metrics` SCRAPES times with
    Prometheus's Accept headers, half gzip-compressed, half not;
(b) regex: `GET /api/v1/alerts?filter=alertname=~.{10}(.|.)*Z` and the same on
    `/api/v2/silences` (both spellings: unquoted as in the issue, quoted as Alertmanager's
    clients send it), REGEX times each, with 100 firing alerts and 200 silences whose label
    values are 60 characters long (a backtracking engine takes exponential time on them).

Theirs, in the same run and measured the same way: (a) Prometheus's `GET /-/healthy` while it
serves `GET /federate?match[]={job="stall"}`, the same 40,000 series (it scraped our /metrics
text, served by a static server here); (b) Alertmanager's `GET /-/healthy` while it answers
the same filters on `/api/v2/alerts` and `/api/v2/silences`, holding the same 100 alerts and
200 silences. Ratios are ours / theirs (worst and p99). Target: ours never above 100 ms.
An `idle` row (3 s of probing with nothing else asked, each process) shows what the machine's
scheduler alone adds.

    .venv/bin/python bench/stall.py [SCRAPES] [REGEX]

The wall-clock latencies depend on the machine's load (a process busy rendering waits for its
turn at the CPU behind every other busy one); the monitor also reports, whatever the load, the
longest step of its event loop in CPU time during each phase (`stall_steps/sitecustomize.py`,
put on the monitor's PYTHONPATH): how long the loop was held, and so how long /live could wait
on a machine with a free core.

Every request of a phase is made by curl (another process), so that the probe thread never
waits for this process's interpreter lock. Wall-clock latencies: say the load average with the
figures (printed first and last).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks_support import (
    free_port,
    machine,
    start_alertmanager,
    start_prometheus,
    stop,
    wait_http,
)

ROOT = Path(__file__).resolve().parent.parent
CURL = shutil.which("curl") or "/usr/bin/curl"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
SERIES = 40_000
BATCH = 2_000
ALERTS = 100
SILENCES = 200
TOKEN = "stall-bench-token"
ALERTNAME = "StallBenchmarkModelAccuracyFarTooLow"
HOSTILE = ".{10}(.|.)*Z"
IDLE = 3.0  # seconds of probing with nothing else asked, before each peer's phases
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
)


def _model(i: int) -> str:
    """A 60-character label value without a Z (the hostile pattern's worst case)."""
    return f"model-{i:04d}-" + "x" * 49


def _steps(path: Path, windows: list[tuple[float, float]]) -> list[float]:
    """CPU ms of the monitor's loop steps (over 1 ms; `stall_steps/sitecustomize.py`) that ended
    within `windows` (wall-clock `time.time()` bounds)."""
    held = []
    for line in path.read_text().splitlines():
        end, cpu, _, _ = line.split(" ", 3)
        if any(begin <= float(end) <= stop for begin, stop in windows):
            held.append(float(cpu))
    return held


class Probe:
    """Asks `url` every 10 ms from a thread; keeps (start, latency) of every answer."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.samples: list[tuple[float, float]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    status = client.get(self._url).status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.samples.append((start, time.perf_counter() - start))
                if status != 200:
                    self.failures.append(f"status {status}")
                self._stop.wait(0.01)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=70)

    def during(self, windows: list[tuple[float, float]]) -> list[float]:
        """Latencies (s) of the answers that overlap any of `windows`."""
        return [
            latency
            for start, latency in self.samples
            if any(start <= end and start + latency >= begin for begin, end in windows)
        ]


def _stats(latencies: list[float]) -> tuple[float, float, int]:
    """Worst and p99 in ms, and the count."""
    if not latencies:
        return float("nan"), float("nan"), 0
    ranked = sorted(latencies)
    return (
        ranked[-1] * 1000,
        ranked[min(len(ranked) - 1, len(ranked) * 99 // 100)] * 1000,
        len(ranked),
    )


def _idle(seconds: float = IDLE) -> tuple[float, float]:
    """A window of `seconds` with nothing asked but the probe: the machine's own noise."""
    start = time.perf_counter()
    time.sleep(seconds)
    return start, time.perf_counter()


def _curl(url: str, headers: dict[str, str]) -> tuple[int, int]:
    """GET `url` with curl (status, bytes as sent): the request's client is another process,
    so this one's interpreter lock never delays the probe thread."""
    command = [CURL, "-s", "-g", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    status, size = out.split()
    return int(status), int(size)


def _timed(
    windows: list[tuple[float, float]],
    url: str,
    headers: dict[str, str],
    walls: list[tuple[float, float]] | None = None,
) -> int:
    """`_curl`, its time span added to `windows` (and in `time.time()` to `walls`); the
    status."""
    start, wall = time.perf_counter(), time.time()
    status, _ = _curl(url, headers)
    windows.append((start, time.perf_counter()))
    if walls is not None:
        walls.append((wall, time.time()))
    return status


@contextmanager
def _monitor(tmp: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    api, metrics = free_port(), free_port()
    config = tmp / "monitor.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:{api}"
metrics_listen = "127.0.0.1:{metrics}"

[security]
api_token = "{TOKEN}"

[storage]
path = "{tmp / "monitor.db"}"

[log]
level = "warning"

[limits]
max_series_per_metric = {SERIES + 1000}

[[checks]]
name = "self"
kind = "self"
interval = "5s"
timeout = "1s"
critical = false

[[rules]]
id = "stall-bench"
name = "{ALERTNAME}"
channels = ["console"]
[rules.condition]
metric = "ml_model_accuracy"
operator = "<"
threshold = 0.5

[channels.console]
kind = "console"
"""
    )
    process = subprocess.Popen(
        [PYTHON, "-m", "supervisor", "run", "-c", str(config)],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'bench' / 'stall_steps'}:{ROOT}",
            "STALL_STEPS_FILE": str(tmp / "steps.txt"),
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "monitor.log").open("wb"),
    )
    try:
        wait_http(f"http://127.0.0.1:{api}/api/health/live", timeout=60)
        wait_http(f"http://127.0.0.1:{metrics}/metrics", timeout=60)
        yield f"http://127.0.0.1:{api}", f"http://127.0.0.1:{metrics}", process
    finally:
        stop(process)


def _feed_ours(api: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=api, headers=auth, timeout=120) as client:
        for first in range(0, SERIES, BATCH):
            events = [
                {
                    "type": "business_metric",
                    "name": "network_connections",
                    "value": i,
                    "labels": {"organization": f"org-{i}"},
                }
                for i in range(first, first + BATCH)
            ]
            answer = client.post("/api/v1/events", json={"events": events})
            if answer.status_code != 202 or answer.json()["rejected"]:
                raise SystemExit(f"events refused: {answer.text[:500]}")
        accuracy = [
            {"type": "ml_accuracy", "model": _model(i), "accuracy": 0.1} for i in range(ALERTS)
        ]
        assert client.post("/api/v1/events", json={"events": accuracy}).status_code == 202
        for i in range(SILENCES):
            silence = {
                "matchers": [{"name": "model", "value": _model(i), "isRegex": False}],
                "endsAt": _in(hours=1),
                "createdBy": "bench",
                "comment": "stall",
            }
            answer = client.post("/api/v2/silences", json=silence)
            assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 120
        while len(client.get("/api/v1/alerts").json()["alerts"]) < ALERTS:
            if time.monotonic() > deadline:
                raise SystemExit("the rule did not fire for every model within 120 s")
            time.sleep(0.5)


def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _feed_alertmanager(base: str) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        alerts = [
            {
                "labels": {"alertname": ALERTNAME, "model": _model(i), "severity": "warning"},
                "startsAt": _in(hours=0),
                "endsAt": _in(hours=1),
            }
            for i in range(ALERTS)
        ]
        assert client.post("/api/v2/alerts", json=alerts).status_code == 200
        for i in range(SILENCES):
            silence = {
                "matchers": [
                    {"name": "model", "value": _model(i), "isRegex": False, "isEqual": True}
                ],
                "startsAt": _in(hours=0),
                "endsAt": _in(hours=1),
                "createdBy": "bench",
                "comment": "stall",
            }
            answer = client.post("/api/v2/silences", json=silence)
            assert answer.status_code == 200, answer.text


def _regex_requests(base: str, v1: bool) -> list[str]:
    paths = []
    for value in (HOSTILE, f'"{HOSTILE}"'):
        filter_ = quote(f"alertname=~{value}")
        paths.append(f"{base}/api/{'v1' if v1 else 'v2'}/alerts?filter={filter_}")
        paths.append(f"{base}/api/v2/silences?filter={filter_}")
    return paths


class _Static(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        return


def _row(name: str, ours: list[float], theirs: list[float], peer: str) -> None:
    worst, p99, count = _stats(ours)
    t_worst, t_p99, t_count = _stats(theirs)
    print(
        f"{name:8s} ours /live: worst {worst:7.1f} ms  p99 {p99:7.1f} ms  ({count} answers) | "
        f"{peer}: worst {t_worst:7.1f} ms  p99 {t_p99:7.1f} ms  ({t_count}) | "
        f"ratio worst {worst / t_worst:5.2f}x  p99 {p99 / t_p99:5.2f}x"
    )


def main() -> None:
    scrapes = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    regex = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(f"machine: {machine()}; load average {os.getloadavg()}")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with _monitor(tmp) as (api, metrics, _):
            _feed_ours(api)
            scrape_windows: list[tuple[float, float]] = []
            regex_windows: list[tuple[float, float]] = []
            sizes = []
            scrape_walls: list[tuple[float, float]] = []
            regex_walls: list[tuple[float, float]] = []
            with Probe(f"{api}/api/health/live") as ours:
                idle_windows = [_idle()]
                for n in range(scrapes):
                    headers = {
                        "Accept": PROMETHEUS_ACCEPT,
                        "Accept-Encoding": "gzip" if n % 2 == 0 else "identity",
                    }
                    start, wall = time.perf_counter(), time.time()
                    _, size = _curl(f"{metrics}/metrics", headers)
                    scrape_windows.append((start, time.perf_counter()))
                    scrape_walls.append((wall, time.time()))
                    sizes.append((headers["Accept-Encoding"], size))
                for _ in range(regex):
                    for url in _regex_requests(api, v1=True):
                        status = _timed(regex_windows, url, auth, regex_walls)
                        if status >= 500:
                            raise SystemExit(f"{url}: {status}")
            exposition = httpx.get(
                f"{metrics}/metrics", headers={"Accept": "text/plain"}, timeout=120
            ).content
        series = sum(1 for line in exposition.splitlines() if line.startswith(b"network_conn"))
        print(f"ours: {series} network_connections_active series; /metrics bytes {sizes[:2]}")
        if ours.failures:
            print(f"ours: probe failures {ours.failures[:5]}")
        our_scrape, our_regex = ours.during(scrape_windows), ours.during(regex_windows)
        our_idle = ours.during(idle_windows)
        held_scrape = _steps(tmp / "steps.txt", scrape_walls)
        held_regex = _steps(tmp / "steps.txt", regex_walls)

        # Prometheus: the same 40,000 series, scraped from a static copy of our text.
        _Static.body = exposition
        static = ThreadingHTTPServer(("127.0.0.1", 0), _Static)
        threading.Thread(target=static.serve_forever, daemon=True).start()
        prom_port = free_port()
        prometheus = start_prometheus(
            tmp,
            prom_port,
            "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\nscrape_configs:\n"
            f"  - job_name: stall\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{static.server_address[1]}']\n",
        )
        prom = f"http://127.0.0.1:{prom_port}"
        try:
            deadline = time.monotonic() + 120
            query = {"query": 'count({job="stall",__name__="network_connections_active"})'}
            while True:
                result = httpx.get(f"{prom}/api/v1/query", params=query, timeout=30).json()
                found = result["data"]["result"]
                if found and int(found[0]["value"][1]) >= SERIES:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("Prometheus did not ingest the series within 120 s")
                time.sleep(0.5)
            federate_windows: list[tuple[float, float]] = []
            federate = f"{prom}/federate?match[]=" + quote('{job="stall"}')
            with Probe(f"{prom}/-/healthy") as theirs:
                prom_idle = [_idle()]
                for n in range(scrapes):
                    headers = {"Accept-Encoding": "gzip" if n % 2 == 0 else "identity"}
                    _timed(federate_windows, federate, headers)
            their_scrape = theirs.during(federate_windows)
            their_idle = theirs.during(prom_idle)
        finally:
            stop(prometheus)
            static.shutdown()

        am_port = free_port()
        alertmanager = start_alertmanager(tmp, am_port)
        am = f"http://127.0.0.1:{am_port}"
        try:
            _feed_alertmanager(am)
            am_windows: list[tuple[float, float]] = []
            with Probe(f"{am}/-/healthy") as theirs_am:
                for _ in range(regex):
                    for url in _regex_requests(am, v1=False):
                        _timed(am_windows, url, {})
            their_regex = theirs_am.during(am_windows)
        finally:
            stop(alertmanager)

    print(f"scrape: {scrapes} x GET /metrics ({SERIES} series) vs Prometheus GET /federate")
    print(f"regex: {regex} x 4 hostile filters vs Alertmanager the same")
    _row("idle", our_idle, their_idle, "Prometheus /-/healthy")
    _row("scrape", our_scrape, their_scrape, "Prometheus /-/healthy")
    _row("regex", our_regex, their_regex, "Alertmanager /-/healthy")
    for name, held in (("scrape", held_scrape), ("regex", held_regex)):
        print(
            f"{name:8s} ours: longest loop step {max(held, default=0.0):6.1f} ms CPU"
            f" ({len(held)} steps over 1 ms)"
        )
    verdict = max(_stats(our_scrape)[0], _stats(our_regex)[0]) <= 100
    print(f"target /live never above 100 ms: {'met' if verdict else 'NOT met'}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
