"""The whole job side by side: 200 URLs on a local nginx checked every second.

Ours: `blipee-monitor run` on a generated configuration (200 http checks at 1 s, an alert rule on
health_check_up, the API and /metrics listeners), one process. Theirs: Prometheus (scrape and
evaluation every 1 s, the same alert rule on probe_success) + blackbox_exporter probing the 200
URLs + Alertmanager receiving the alerts. Everything is started here on free 127.0.0.1 ports;
nginx (the target) is not counted. After a warm-up, CPU seconds (user + system, from /proc) are
measured over DURATION seconds and RSS is summed at the end. Prints totals and ratios (targets:
ours <= 0.5x the stack's CPU and <= 0.5x its RSS).

    .venv/bin/python bench/health_stack.py [--without-rule] [--without-watch] [DURATION_SECONDS]

--without-rule replaces our alert rule on health_check_up by one on a metric nobody records, to
show how much of our CPU the rule evaluator spends (the stack keeps its rule). --without-watch
turns our checks' connection watch off (`watch = false`), to show what waiting on the kept
connections between runs costs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks_support import (
    cpu_seconds,
    free_port,
    machine,
    rss_bytes,
    start_alertmanager,
    start_blackbox,
    start_nginx,
    start_prometheus,
    stop,
    wait_http,
)

URLS = 200
WITHOUT_RULE = "--without-rule" in sys.argv
WITHOUT_WATCH = "--without-watch" in sys.argv
WARMUP = 5.0


def _measure(pids: list[int], duration: float) -> tuple[float, int]:
    time.sleep(WARMUP)
    before = sum(cpu_seconds(pid) for pid in pids)
    time.sleep(duration)
    spent = sum(cpu_seconds(pid) for pid in pids) - before
    rss = sum(rss_bytes(pid) for pid in pids)
    return spent, rss


def ours(tmp: Path, urls: list[str], duration: float) -> tuple[float, int]:
    """CPU seconds and RSS of blipee-monitor doing the job."""
    api, metrics = free_port(), free_port()
    lines = [
        f'[server]\nlisten = "127.0.0.1:{api}"\nmetrics_listen = "127.0.0.1:{metrics}"\n',
        f'[storage]\npath = "{tmp / "monitor.db"}"\n',
        '[log]\nlevel = "warning"\n',
    ]
    for i, url in enumerate(urls):
        lines.append(
            f'[[checks]]\nname = "url{i}"\nkind = "http"\nurl = "{url}"\n'
            'interval = "1s"\ntimeout = "1s"\n' + ("watch = false\n" if WITHOUT_WATCH else "")
        )
    if WITHOUT_RULE:
        lines.append(
            '[[rules]]\nid = "never"\nname = "Never"\nchannels = ["console"]\n'
            '[rules.condition]\nmetric = "organizations_active"\n'
            '[channels.console]\nkind = "console"\n'
        )
    else:
        lines.append(
            '[[rules]]\nid = "url-down"\nname = "URL Down"\nseverity = "critical"\n'
            'channels = ["console"]\n[rules.condition]\nmetric = "health_check_up"\n'
            'aggregate = "last"\nwindow = "1m"\noperator = "=="\nthreshold = 0\n'
            '[channels.console]\nkind = "console"\n'
        )
    config = tmp / "monitor.toml"
    config.write_text("\n".join(lines))
    binary = shutil.which("blipee-monitor") or str(Path(sys.executable).parent / "blipee-monitor")
    process = subprocess.Popen(
        [binary, "run", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{api}/api/health/live")
        result = _measure([process.pid], duration)
        up = __import__("httpx").get(f"http://127.0.0.1:{api}/api/health").json()
        passing = sum(1 for c in up["checks"].values() if c["status"] == "pass")
        print(f"  ours: {passing}/{len(urls)} checks passing at the end")
        return result
    finally:
        stop(process)


def theirs(tmp: Path, urls: list[str], duration: float) -> tuple[float, int]:
    """CPU seconds and RSS of Prometheus + blackbox_exporter + Alertmanager doing the job."""
    blackbox_port, am_port, prom_port = free_port(), free_port(), free_port()
    blackbox = start_blackbox(tmp, blackbox_port)
    alertmanager = start_alertmanager(tmp, am_port)
    (tmp / "rules.yml").write_text(
        "groups:\n  - name: urls\n    rules:\n      - alert: URLDown\n"
        "        expr: probe_success == 0\n        labels:\n          severity: critical\n"
    )
    targets = "".join(f"          - {url}\n" for url in urls)
    config = (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {tmp / 'rules.yml'}\n"
        "alerting:\n  alertmanagers:\n    - static_configs:\n"
        f"        - targets: ['127.0.0.1:{am_port}']\n"
        "scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n"
        "    params:\n      module: [http_2xx]\n    static_configs:\n      - targets:\n"
        f"{targets}"
        "    relabel_configs:\n"
        "      - source_labels: [__address__]\n        target_label: __param_target\n"
        "      - source_labels: [__param_target]\n        target_label: instance\n"
        f"      - target_label: __address__\n        replacement: 127.0.0.1:{blackbox_port}\n"
    )
    prometheus = start_prometheus(tmp, prom_port, config)
    processes = [prometheus, blackbox, alertmanager]
    try:
        return _measure([p.pid for p in processes], duration)
    finally:
        for process in processes:
            stop(process)


def main() -> None:
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    duration = float(numbers[0]) if numbers else 60.0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        nginx = start_nginx(tmp, port)
        urls = [f"http://127.0.0.1:{port}/u{i}" for i in range(URLS)]
        try:
            (tmp / "ours").mkdir()
            (tmp / "theirs").mkdir()
            our_cpu, our_rss = ours(tmp / "ours", urls, duration)
            their_cpu, their_rss = theirs(tmp / "theirs", urls, duration)
        finally:
            stop(nginx)
    print(f"machine: {machine()}")
    print(f"{URLS} URLs every 1 s for {duration:.0f} s (after {WARMUP:.0f} s warm-up)")
    print(
        f"  blipee-monitor:                     CPU {our_cpu:7.2f} s"
        f" ({our_cpu / duration:5.1%} of a core), RSS {our_rss / 1e6:6.1f} MB"
    )
    print(
        f"  Prometheus+blackbox+Alertmanager:   CPU {their_cpu:7.2f} s"
        f" ({their_cpu / duration:5.1%} of a core), RSS {their_rss / 1e6:6.1f} MB"
    )
    print(
        f"  ratio ours/stack: CPU {our_cpu / their_cpu:.2f}x, RSS {our_rss / their_rss:.2f}x"
        "  (targets <= 0.5x each)"
    )


if __name__ == "__main__":
    main()
