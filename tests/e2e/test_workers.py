"""`blipee-monitor run --workers N` as real processes on one PostgreSQL database.

The parent starts N workers (replicas `<host>-w<i>`) sharing one API address (SO_REUSEPORT),
each with its own /metrics listener; it starts a worker again when it dies, passes SIGTERM on
and exits 0 once all stopped; without `[storage] url` it refuses with exit status 2.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from supervisor.app.workerplan import WORKER_MODE
from tests.e2e.harness import PYTHON, ROOT, HttpPeer, Monitor, cli, require_binary, wait_until

CONFIG = """\
[server]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:{metrics_port}"

[storage]
url = "{url}"

[cluster]
heartbeat = "300ms"

[supervisor]
shutdown_timeout = "3s"
backoff_initial = "50ms"

[log]
format = "json"

[[checks]]
name = "x"
kind = "http"
url = "{target}/"
interval = "200ms"
timeout = "200ms"
"""

# A worker stops within [supervisor] shutdown_timeout plus the parent's margin (5 s).
GRACE = 3.0 + 5.0


class Workers(Monitor):
    """`run --workers N` (one parent process); its workers' addresses read from the log."""

    count = 2

    def start(self, timeout: float = 30.0) -> Workers:
        """Start the parent; wait until every worker's listeners are bound."""
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "supervisor", "run", "-c", str(self.config), "--workers", "2"],
                cwd=self.config.parent,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # Each worker logs its /metrics listener before its API one: wait for both.
        wait_until(
            lambda: len(self.listeners("metrics")) == len(self.listeners("web")) == self.count,
            "the workers",
            timeout,
        )
        [self.api] = set(self.listeners("web").values())
        return self

    def listeners(self, actor: str) -> dict[int, str]:
        """The URL each worker's `actor` listener ("web", "metrics") last reported, by worker."""
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"the parent exited with {self.proc.returncode}:\n{self.log()}")
        urls: dict[int, str] = {}
        for entry in self.log_entries():
            msg = str(entry.get("msg", ""))
            if entry.get("actor") == actor and msg.startswith("Running on "):
                urls[int(str(entry["worker"]))] = msg.split()[2]
        return urls

    def pids(self) -> dict[int, list[int]]:
        """The pids each worker was started with, in order."""
        started: dict[int, list[int]] = {}
        for entry in self.log_entries():
            if entry.get("actor") == "workers" and str(entry.get("msg", "")).endswith("started"):
                started.setdefault(int(str(entry["worker"])), []).append(int(str(entry["pid"])))
        return started


@pytest.fixture
def config(tmp_path: Path, database: str, target: HttpPeer) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG.format(url=database, target=target.url, metrics_port=0))
    return path


@pytest.fixture
def workers(config: Path) -> Iterator[Workers]:
    parent = Workers(config)
    try:
        yield parent.start()
    finally:
        parent.stop()


def _get(url: str) -> httpx.Response:
    with httpx.Client(timeout=5.0) as client:
        return client.get(url, headers={"Connection": "close"})


def _cluster_names(api: str) -> list[str]:
    document: dict[str, Any] = _get(f"{api}/api/v1/cluster").json()
    return [replica["name"] for replica in document["replicas"]]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # exited, not yet reaped


def test_two_workers_share_the_api_each_serves_its_metrics_and_stop_on_sigterm(
    workers: Workers,
) -> None:
    host = socket.gethostname()
    metrics = workers.listeners("metrics")
    assert sorted(metrics) == [0, 1]
    assert metrics[0] != metrics[1]
    for url in metrics.values():
        response = _get(f"{url}/metrics")
        assert response.status_code == 200
        assert "cluster_replicas_live" in response.text
    assert _get(f"{workers.api}/api/health/live").status_code == 200
    wait_until(lambda: _get(f"{workers.api}/api/health/ready").status_code == 200, "readiness", 20)
    # Whichever worker answers, both replicas are listed.
    wait_until(
        lambda: _cluster_names(workers.api) == [f"{host}-w0", f"{host}-w1"], "both replicas", 20
    )
    pids = [started[-1] for started in workers.pids().values()]
    workers.signal(signal.SIGTERM)
    assert workers.wait(timeout=GRACE + 5) == 0
    assert all(_gone(pid) for pid in pids)
    stopped = [e for e in workers.log_entries() if e.get("msg") == "stopped"]
    assert sorted(str(e.get("worker")) for e in stopped if "worker" in e) == ["0", "1"]
    assert all(e.get("status") == 0 for e in stopped)
    assert "Traceback" not in workers.log()
    # Each replica its own notification spool.
    spools = sorted(path.name for path in (workers.config.parent / "data").glob("spool*.db"))
    assert spools == ["spool-w0.db", "spool-w1.db"]


def test_a_killed_worker_is_started_again(workers: Workers) -> None:
    [first] = workers.pids()[1]
    os.kill(first, signal.SIGKILL)
    restarted = wait_until(lambda: workers.pids()[1][1:], "worker 1 started again", 20)
    assert restarted[0] != first
    # The new process serves again (its /metrics bound anew, the shared API address kept).
    wait_until(
        lambda: len([e for e in workers.log_entries() if _bound(e, "metrics", 1)]) == 2,
        "worker 1's /metrics bound again",
        20,
    )
    assert _get(f"{workers.listeners('metrics')[1]}/metrics").status_code == 200
    assert set(workers.listeners("web").values()) == {workers.api}
    crashed = [e for e in workers.log_entries() if "crashed" in str(e.get("msg"))]
    assert "was killed by SIGKILL" in str(crashed[0]["msg"])
    workers.signal(signal.SIGTERM)
    assert workers.wait(timeout=GRACE + 5) == 0


def _bound(entry: dict[str, object], actor: str, worker: int) -> bool:
    return (
        entry.get("actor") == actor
        and str(entry.get("msg", "")).startswith("Running on ")
        and entry.get("worker") == worker
    )


def test_workers_stop_when_their_parent_is_killed(workers: Workers) -> None:
    pids = [started[-1] for started in workers.pids().values()]
    workers.signal(signal.SIGKILL)
    assert workers.wait(timeout=10) == -signal.SIGKILL
    wait_until(lambda: all(_gone(pid) for pid in pids), "the orphaned workers to stop", GRACE)
    lines = [
        e
        for e in workers.log_entries()
        if "the parent process stops, or is gone" in str(e.get("msg"))
    ]
    assert len(lines) == 2


def test_without_postgresql_run_and_check_config_refuse_with_status_2(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:0"\nmetrics_listen = "127.0.0.1:0"\n')
    for command in ("run", "check-config"):
        result = cli(command, "-c", str(path), "--workers", "2", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "run --workers needs [storage] url" in result.stderr
        assert f"{path}: cannot run 2 workers" in result.stderr
        assert "Traceback" not in result.stderr
    result = cli("run", "-c", str(path), "--workers", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers takes a number of processes from 1 to" in result.stderr


def test_check_config_says_what_workers_would_run(tmp_path: Path, database: str) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(
        CONFIG.format(url=database, target="http://127.0.0.1:9", metrics_port=9464).replace(
            '"127.0.0.1:0"', '"127.0.0.1:3000"'
        )
    )
    result = cli("check-config", "-c", str(path), "--workers", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    host = socket.gethostname()
    assert (
        f"run --workers 3: 3 worker processes, {WORKER_MODE} replicas {host}-w0, {host}-w1,"
        f" {host}-w2; API and probes on 127.0.0.1:3000 (shared, SO_REUSEPORT); /metrics on"
        " 127.0.0.1:9464, 127.0.0.1:9465, 127.0.0.1:9466"
    ) in result.stdout


def _documented_scrape_config() -> dict[str, Any]:
    """The scrape config docs/high-availability.md gives for workers."""
    text = (ROOT / "docs" / "high-availability.md").read_text()
    section = text.split("## Several workers on one host", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    document: dict[str, Any] = yaml.safe_load(block)
    return document


def test_prometheus_scrapes_each_worker_with_the_documented_config(
    workers: Workers, tmp_path: Path
) -> None:
    prometheus = require_binary("prometheus")
    promtool = require_binary("promtool")
    documented = tmp_path / "documented.yml"
    documented.write_text(yaml.safe_dump(_documented_scrape_config()))
    checked = subprocess.run(
        [promtool, "check", "config", str(documented)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The same, with the targets the workers bound (ports chosen by the kernel here).
    config = _documented_scrape_config()
    targets = [url.removeprefix("http://") for url in workers.listeners("metrics").values()]
    [job] = config["scrape_configs"]
    assert len(job["static_configs"][0]["targets"]) == 2
    job["static_configs"][0]["targets"] = targets
    config["global"] = {"scrape_interval": "1s"}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    with socket.socket() as probe:  # Prometheus takes no port 0: find one free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def query(expression: str) -> list[dict[str, Any]] | None:
        try:
            response = _get(f"http://127.0.0.1:{port}/api/v1/query?query={expression}")
            result: list[dict[str, Any]] = response.json()["data"]["result"]
        except (httpx.HTTPError, KeyError, ValueError):
            return None
        return result if len(result) == 2 else None

    try:
        up = wait_until(lambda: query("up==1"), "both workers up in Prometheus", 60)
        assert sorted(series["metric"]["instance"] for series in up) == sorted(targets)
        live = wait_until(lambda: query("cluster_replicas_live"), "each worker's series", 30)
        assert {series["metric"]["job"] for series in live} == {"blipee-monitor"}
    finally:
        process.terminate()
        process.wait(10)


def _health_checks(metrics_url: str) -> set[str]:
    """The checks whose `health_check_up` series a worker's /metrics exports."""
    text = _get(f"{metrics_url}/metrics").text
    found = set()
    for line in text.splitlines():
        if line.startswith("health_check_up{"):
            found.add(line.split('check="', 1)[1].split('"', 1)[0])
    return found


def _eight_checks(tmp_path: Path, database: str, target: HttpPeer) -> tuple[Path, list[str]]:
    names = [f"c{i}" for i in range(8)]
    checks = "".join(
        f'\n[[checks]]\nname = "{name}"\nkind = "http"\nurl = "{target.url}/{name}"\n'
        'interval = "200ms"\ntimeout = "200ms"\n'
        for name in names
    )
    path = tmp_path / "monitor.toml"
    path.write_text(
        CONFIG.format(url=database, target=target.url, metrics_port=0).split("[[checks]]")[0]
        + checks
    )
    return path, names


def _split(parent: Workers, names: list[str]) -> list[set[str]]:
    """Each worker's checks, once both run some and together all, none on both (by /metrics)."""
    metrics = parent.listeners("metrics")

    def split() -> list[set[str]] | None:
        shares = [_health_checks(metrics[i]) for i in (0, 1)]
        covered = shares[0] | shares[1] == set(names)
        return shares if covered and not shares[0] & shares[1] and all(shares) else None

    return wait_until(split, "the checks split over both workers", 30)


def test_each_check_runs_on_exactly_one_worker(
    tmp_path: Path, database: str, target: HttpPeer
) -> None:
    path, names = _eight_checks(tmp_path, database, target)
    parent = Workers(path).start()
    try:
        shares = _split(parent, names)
        # The cluster document (from whichever worker answers) names the same split.
        host = socket.gethostname()

        def listed() -> dict[str, set[str]] | None:
            document: dict[str, Any] = _get(f"{parent.api}/api/v1/cluster").json()
            runs = {r["name"]: set(r.get("checks", ())) for r in document["replicas"]}
            return runs if len(runs) == 2 else None

        runs = wait_until(listed, "both replicas in the cluster document", 20)
        assert runs == {f"{host}-w0": shares[0], f"{host}-w1": shares[1]}
        parent.signal(signal.SIGTERM)
        assert parent.wait(timeout=GRACE + 5) == 0
    finally:
        parent.stop()


def test_workers_started_together_take_their_shares_once_and_hand_nothing_back(
    tmp_path: Path, database: str, target: HttpPeer
) -> None:
    # Without waiting for its sibling, the worker that beats first sees itself alone, starts
    # every check and hands about half back at its next beat: those ran on both workers.
    path, names = _eight_checks(tmp_path, database, target)
    parent = Workers(path).start()
    try:
        shares = _split(parent, names)
        mark = len(target.received())

        def runs_since_split() -> bool:
            paths = [r.path for r in target.received()[mark:]]
            return all(paths.count(f"/{name}") >= 3 for name in names)

        # Several heartbeats (300 ms) after the split: a hand-back would be logged by then.
        wait_until(runs_since_split, "3 more runs of every check", 20)
        taken: dict[int, list[str]] = {0: [], 1: []}
        handed = []
        for entry in parent.log_entries():
            checks = entry.get("checks")
            if entry.get("msg") == "checks taken over" and isinstance(checks, list):
                taken[int(str(entry["worker"]))].extend(map(str, checks))
            elif entry.get("msg") == "checks handed over":
                handed.append(entry)
        assert handed == []
        for index in (0, 1):
            assert sorted(taken[index]) == sorted(shares[index]), index  # each started once
    finally:
        parent.stop()
