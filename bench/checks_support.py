"""Peers for the health benchmarks: nginx, blackbox_exporter, Prometheus, Alertmanager.

Each `start_*` launches the Debian binary on 127.0.0.1 with a temporary configuration and returns
the `subprocess.Popen`; `stop()` terminates it. `cpu_seconds(pid)` and `rss_bytes(pid)` read
/proc. Run on its own, this module does nothing (`make bench` runs every file in bench/).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

__all__ = [
    "cpu_seconds",
    "free_port",
    "machine",
    "rss_bytes",
    "start_alertmanager",
    "start_blackbox",
    "start_nginx",
    "start_prometheus",
    "stop",
    "wait_http",
]

_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of `pid` (and its reaped children when asked)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = int(fields[11]) + int(fields[12])
    if children:
        total += int(fields[13]) + int(fields[14])
    return total / _TICK


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def machine() -> str:
    """CPU model and core count, for the record."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores"


def _binary(path: str) -> str:
    found = shutil.which(path)
    if found is None:
        raise SystemExit(f"{path} is not installed (make system-deps)")
    return found


def wait_http(url: str, timeout: float = 20.0) -> None:
    """Wait until `url` answers (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def start_nginx(
    tmp: Path, port: int, *, cpus: set[int] | None = None, access_log: Path | None = None
) -> subprocess.Popen[bytes]:
    """nginx with one worker answering 200 "ok" on every path (pinned to `cpus` if given).

    With `access_log`, each request is logged there as one line holding its time in seconds
    since the epoch with millisecond resolution (nginx's `$msec`): runs counted at the target.
    """
    conf = tmp / "nginx.conf"
    logging = (
        f"log_format stamp '$msec';\n  access_log {access_log} stamp buffer=256k flush=100ms;"
        if access_log is not None
        else "access_log off;"
    )
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 8192; }}
http {{
  {logging}
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""
    )
    process = subprocess.Popen(
        [_binary("/usr/sbin/nginx"), "-c", str(conf), "-p", str(tmp), "-e", f"{tmp}/nginx.log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_pin(cpus),
    )
    wait_http(f"http://127.0.0.1:{port}/")
    return process


def start_blackbox(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """blackbox_exporter with an `http_2xx` module."""
    conf = tmp / "blackbox.yml"
    conf.write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
        "    http:\n      preferred_ip_protocol: ip4\n"
    )
    process = subprocess.Popen(
        [
            _binary("prometheus-blackbox-exporter"),
            f"--config.file={conf}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/metrics")
    return process


def start_alertmanager(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """Alertmanager with a single webhook receiver (nothing listens: alerts only queue)."""
    conf = tmp / "alertmanager.yml"
    conf.write_text(
        "route:\n  receiver: hook\n  group_wait: 0s\n  group_interval: 1m\n"
        "receivers:\n  - name: hook\n    webhook_configs:\n"
        "      - url: http://127.0.0.1:9/hook\n"
    )
    process = subprocess.Popen(
        [
            _binary("prometheus-alertmanager"),
            f"--config.file={conf}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/-/ready")
    return process


def start_prometheus(tmp: Path, port: int, config: str) -> subprocess.Popen[bytes]:
    """Prometheus with `config` (YAML text) and a temporary TSDB."""
    conf = tmp / "prometheus.yml"
    conf.write_text(config)
    process = subprocess.Popen(
        [
            _binary("/usr/bin/prometheus"),
            f"--config.file={conf}",
            f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/-/ready")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate and reap."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    pass
