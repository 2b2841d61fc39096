"""Replicas on PostgreSQL against one process on SQLite: the whole job, and the outbox.

1. The whole job (as bench/health_stack.py's "ours": 200 http checks at 1 s on a local nginx, an
   alert rule on health_check_up, a console channel, the API and /metrics listeners), run as
   `python -m supervisor run` from this tree:
   - one process on SQLite (the peer);
   - one replica on PostgreSQL (`[storage] url`, `[cluster]` defaults: heartbeat 2 s);
   - two replicas on the same PostgreSQL database.
   Once every replica answers /api/health/ready and a `WARMUP` has passed, CPU seconds (user +
   system, /proc) of each replica are measured over DURATION seconds and its RSS at the end.
   For the PostgreSQL runs, the CPU of the server's backends that serve the run's database (their
   pids from pg_stat_activity, sampled every second, CPU from /proc) is a separate figure: it is
   part of what an operator pays. The server's shared processes (WAL writer, checkpointer) serve
   every database of the server and are not counted.
2. The outbox: `N` notifications enqueued, then delivered as a delivery actor does, with the
   sending itself left out: read the pending rows (500 at a time), claim each (PostgreSQL only:
   one process on SQLite claims nothing), mark it delivered. Notifications per second (wall),
   and CPU per notification (this process, and the server's backend for PostgreSQL). Also two
   replicas (two stores in this process) draining one PostgreSQL outbox together.

Each PostgreSQL run gets its own database on the local server (127.0.0.1:5432, user postgres),
dropped after. Prints the ratios PostgreSQL replica / SQLite process (CPU, RSS; target: a replica
costs <= 1.2x a SQLite process) and PostgreSQL / SQLite outbox throughput.

    .venv/bin/python bench/replicas.py [--job] [--outbox] [DURATION_SECONDS] [N_NOTIFICATIONS]

Without --job or --outbox both parts run. DURATION defaults to 30 s, N to 2,000.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
import trio

from actors.clock import SystemClock
from actors.models import Alert, AlertStatus, Notification, labels_of
from actors.notify.outbox import Outbox
from actors.store import Database, Store
from actors.store.postgres import PostgresDatabase
from bench.checks_support import cpu_seconds, free_port, machine, rss_bytes, start_nginx, stop

ROOT = Path(__file__).resolve().parent.parent
SERVER = "postgresql://postgres@127.0.0.1:5432"
ADMIN_URL = f"{SERVER}/postgres"
URLS = 200
WARMUP = 5.0
READY_LIMIT = 120.0


# -- the PostgreSQL server ---------------------------------------------------------------------


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str]]:
    """A new empty database: yield (name, URL); dropped (with its connections) after."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield name, f"{SERVER}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


class BackendCpu:
    """CPU seconds spent by the server's backends serving one database, from `start()` on.

    A sampler thread reads the database's backend pids (pg_stat_activity) and their CPU (/proc)
    every `period` seconds; a backend first seen after the start counts from zero (its whole
    life is in the window). A backend that exits between two samples loses at most one period.
    """

    def __init__(self, dbname: str, period: float = 1.0) -> None:
        self._dbname = dbname
        self._period = period
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, conn: psycopg.Connection[tuple[object, ...]], *, baseline: bool) -> None:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self._dbname,)
        ).fetchall()
        for (pid,) in rows:
            assert isinstance(pid, int)
            try:
                cpu = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            self._first.setdefault(pid, cpu if baseline else 0.0)
            self._last[pid] = cpu

    def start(self) -> None:
        conn = psycopg.connect(ADMIN_URL, autocommit=True)
        self._sample(conn, baseline=True)

        def loop() -> None:
            try:
                while not self._stop.wait(self._period):
                    self._sample(conn, baseline=False)
            finally:
                conn.close()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        """Stop sampling (one last sample first); return the CPU seconds spent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            self._sample(conn, baseline=False)
        return sum(self._last[pid] - self._first[pid] for pid in self._last)


# -- 1. the whole job --------------------------------------------------------------------------


@dataclass
class JobRun:
    """Figures of one configuration of the job."""

    label: str
    cpu: list[float] = field(default_factory=list)  # per process, over the window
    rss: list[int] = field(default_factory=list)  # per process, at the end
    server_cpu: float | None = None
    passing: list[int] = field(default_factory=list)


def _job_config(tmp: Path, name: str, urls: list[str], storage: str) -> Path:
    api, metrics = free_port(), free_port()
    lines = [
        f'[server]\nlisten = "127.0.0.1:{api}"\nmetrics_listen = "127.0.0.1:{metrics}"\n',
        storage,
        '[log]\nlevel = "warning"\n',
    ]
    for i, url in enumerate(urls):
        lines.append(
            f'[[checks]]\nname = "url{i}"\nkind = "http"\nurl = "{url}"\n'
            'interval = "1s"\ntimeout = "1s"\n'
        )
    lines.append(
        '[[rules]]\nid = "url-down"\nname = "URL Down"\nseverity = "critical"\n'
        'channels = ["console"]\n[rules.condition]\nmetric = "health_check_up"\n'
        'aggregate = "last"\nwindow = "1m"\noperator = "=="\nthreshold = 0\n'
        '[channels.console]\nkind = "console"\n'
    )
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path


def _api(config: Path) -> str:
    first = config.read_text().split('listen = "', 1)[1].split('"', 1)[0]
    return f"http://{first}"


def _wait_ready(api: str) -> None:
    deadline = time.monotonic() + READY_LIMIT
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{api}/api/health/ready").status_code == 200:
                    return
            time.sleep(0.2)
    raise SystemExit(f"{api} not ready within {READY_LIMIT:.0f} s")


def _passing(api: str) -> int:
    document = httpx.get(f"{api}/api/health", timeout=10.0).json()
    return sum(1 for c in document["checks"].values() if c["status"] == "pass")


def job(
    tmp: Path, urls: list[str], duration: float, label: str, storages: list[str], dbname: str = ""
) -> JobRun:
    """Start one process per entry of `storages` (its [storage]/[cluster] text), measure."""
    configs = [
        _job_config(tmp, f"{label.split()[0]}-{i}", urls, storage)
        for i, storage in enumerate(storages)
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "-c", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for config in configs
    ]
    run = JobRun(label)
    try:
        for config in configs:
            _wait_ready(_api(config))
        time.sleep(WARMUP)
        server = BackendCpu(dbname) if dbname else None
        if server is not None:
            server.start()
        before = [cpu_seconds(p.pid) for p in processes]
        time.sleep(duration)
        run.cpu = [cpu_seconds(p.pid) - b for p, b in zip(processes, before, strict=True)]
        if server is not None:
            run.server_cpu = server.stop()
        run.rss = [rss_bytes(p.pid) for p in processes]
        run.passing = [_passing(_api(config)) for config in configs]
        return run
    finally:
        for process in processes:
            stop(process)


def _replica_storage(url: str, name: str) -> str:
    return f'[storage]\nurl = "{url}"\n\n[cluster]\nreplica = "{name}"\n'


def whole_job(duration: float) -> None:
    runs: list[JobRun] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        nginx = start_nginx(tmp, port)
        urls = [f"http://127.0.0.1:{port}/u{i}" for i in range(URLS)]
        try:
            sqlite = f'[storage]\npath = "{tmp / "monitor.db"}"\n'
            runs.append(job(tmp, urls, duration, "sqlite 1 process", [sqlite]))
            for count in (1, 2):
                with database() as (name, url):
                    storages = [_replica_storage(url, f"r{i}") for i in range(1, count + 1)]
                    label = f"postgresql {count} replica{'s' if count > 1 else ''}"
                    runs.append(job(tmp, urls, duration, label, storages, dbname=name))
        finally:
            stop(nginx)
    print(f"== the whole job: {URLS} URLs every 1 s, window {duration:.0f} s after ready + warm-up")
    print(
        "run                       per process: CPU (core)   RSS (MB)   passing   server CPU (core)"
    )
    for run in runs:
        for i, (cpu, rss, passing) in enumerate(zip(run.cpu, run.rss, run.passing, strict=True)):
            shown = (
                f"{run.server_cpu / duration:8.3f}" if run.server_cpu is not None and i == 0 else ""
            )
            print(
                f"{run.label if i == 0 else '':24s}  #{i + 1}  {cpu / duration:17.3f}  "
                f"{rss / 1e6:9.1f}   {passing:4d}/{URLS}   {shown}"
            )
    base = runs[0]
    base_cpu, base_rss = base.cpu[0], base.rss[0]
    for run in runs[1:]:
        mean_cpu = sum(run.cpu) / len(run.cpu)
        mean_rss = sum(run.rss) / len(run.rss)
        backends = (run.server_cpu or 0.0) / len(run.cpu)
        print(
            f"  {run.label}: replica/SQLite CPU {mean_cpu / base_cpu:.2f}x,"
            f" RSS {mean_rss / base_rss:.2f}x (target <= 1.2x); with the server's backends"
            f" (per replica) CPU {(mean_cpu + backends) / base_cpu:.2f}x"
        )


# -- 2. the outbox -----------------------------------------------------------------------------


@dataclass
class OutboxRun:
    label: str
    count: int
    enqueue_s: float
    deliver_s: float
    deliver_cpu: float
    server_cpu: float | None = None


def _notifications(count: int) -> list[Notification]:
    now = time.time()
    result: list[Notification] = []
    for i in range(count):
        alert = Alert(
            fingerprint=f"fp{i}",
            labels=labels_of(alertname="URL Down", rule="url-down", severity="critical", i=str(i)),
            annotations=labels_of(summary=f"url{i} is down"),
            status=AlertStatus.FIRING,
            starts_at=now,
            ends_at=None,
            value=0.0,
        )
        result.append(
            Notification(
                key=f"n{i}",
                channel="hooks",
                group_key=f'{{}}:{{i="{i}"}}',
                group_labels=labels_of(i=str(i)),
                status=AlertStatus.FIRING,
                alerts=(alert,),
                created_at=now,
                receiver="hooks",
            )
        )
    return result


async def _drain(outbox: Outbox, delivered: list[int]) -> None:
    """Deliver every pending row as a delivery actor does, minus the send."""
    while True:
        entries = await outbox.pending("hooks")
        todo = [e for e in entries if not e.held_by]
        if not todo:
            if not entries:
                return
            await trio.sleep(0.01)  # the rest is another replica's
            continue
        for entry in todo:
            if await outbox.claim(entry.id) and await outbox.mark_delivered(entry.id, "HTTP 200"):
                delivered[0] += 1


def _outbox_run(
    label: str, stores: Sequence[Callable[[], Store]], count: int, dbname: str = ""
) -> OutboxRun:
    opened = [make() for make in stores]
    replicas = len(opened) > 1 or opened[0].dialect == "postgresql"
    outboxes = [
        Outbox(
            database=store,
            clock=SystemClock(),
            replica=f"r{i}" if replicas else None,
            lease=6.0,
        )
        for i, store in enumerate(opened, start=1)
    ]
    notifications = _notifications(count)
    delivered = [0]

    async def main() -> tuple[float, float, float]:
        start = time.perf_counter()
        for notification in notifications:
            await outboxes[0].enqueue(notification)
        enqueued = time.perf_counter()
        cpu = time.process_time()
        async with trio.open_nursery() as nursery:
            for outbox in outboxes:
                nursery.start_soon(_drain, outbox, delivered)
        return enqueued - start, time.perf_counter() - enqueued, time.process_time() - cpu

    server = BackendCpu(dbname, period=0.2) if dbname else None
    try:
        if server is not None:
            # Backends of the enqueue phase are counted too: report the delivery share below.
            server.start()
        enqueue_s, deliver_s, deliver_cpu = trio.run(main)
    finally:
        server_cpu = server.stop() if server is not None else None
        for store in opened:
            store.close()
    if delivered[0] != count:
        raise SystemExit(f"{label}: {delivered[0]} of {count} delivered")
    return OutboxRun(label, count, enqueue_s, deliver_s, deliver_cpu, server_cpu)


def _postgres(url: str, name: str) -> Store:
    return PostgresDatabase(url, application_name=name)


def outbox(count: int) -> None:
    runs: list[OutboxRun] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        path = Path(tmp_name) / "outbox.db"
        runs.append(_outbox_run("sqlite 1 process", [lambda: Database(path)], count))
    for replicas in (1, 2):
        with database() as (name, url):
            makers = [partial(_postgres, url, f"bench r{i}") for i in range(replicas)]
            label = f"postgresql {replicas} replica{'s' if replicas > 1 else ''}"
            runs.append(_outbox_run(label, makers, count, dbname=name))
    print(f"== the outbox: {count} notifications enqueued, then read, claimed and marked delivered")
    print(
        "run                   enqueue/s   delivered/s   CPU per delivery (ms): ours   "
        "server backends (enqueue + delivery)"
    )
    for run in runs:
        server = (
            f"{run.server_cpu / run.count * 1000:6.2f} ms/notification"
            if run.server_cpu is not None
            else ""
        )
        print(
            f"{run.label:20s}  {run.count / run.enqueue_s:9.0f}   {run.count / run.deliver_s:11.0f}"
            f"   {run.deliver_cpu / run.count * 1000:27.2f}   {server}"
        )
    base = runs[0]
    for run in runs[1:]:
        print(
            f"  {run.label}: delivered/s PostgreSQL/SQLite"
            f" {base.deliver_s / run.deliver_s:.2f}x; CPU per delivery (ours)"
            f" {run.deliver_cpu / base.deliver_cpu:.2f}x"
        )


def main() -> None:
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    duration = float(numbers[0]) if numbers else 30.0
    count = int(numbers[1]) if len(numbers) > 1 else 2000
    both = "--job" not in sys.argv and "--outbox" not in sys.argv
    print(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if both or "--outbox" in sys.argv:
        outbox(count)
    if both or "--job" in sys.argv:
        whole_job(duration)
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
