"""The status page with 1,000 checks and 30 days of history: render time, payload, disk.

Part 1, disk: `DISK_CHECKS` checks run every 10 s for 30 days (simulated time, 259,200 runs
each, a short outage a day) through the real `HistoryRecorder` into a SQLite file with the
default [history] retention, flushed once a minute of simulated time (the same rows as every
5 s: buckets are upserted). Prints the history's bytes on disk per check (SQLite `dbstat`:
pages of the history tables and their indexes) against the 1 MB target.

Part 2, render: 1,000 checks with 30 days of stored history (the minute buckets of the last
24 h, the hour buckets of 30 days, 100 recent runs, incidents) are written through
`HistoryRepository`, a restarted recorder loads them, and `GET /` is rendered `ROUNDS` times
in-process through the app (Quart's test client: routing, the view, Jinja, the response, no
socket), each time after every check ran once more (a 10 s refresh of 10 s checks: every row
changed), then once more with nothing changed (a second reader). Prints the median and p95
render time and the payload (raw and gzip) against the 100 ms target, and the same app's
`/api/health` document of the same 1,000 checks (the cheapest page of the same process, the peer
of this run).

    .venv/bin/python bench/statuspage.py [--render-only] [CHECKS] [ROUNDS]
"""

from __future__ import annotations

import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.clock import FixedClock
from actors.history import Bucket, HistoryConfig, HistoryRecorder, HistoryRepository
from actors.history.repository import Batch, StoredResult
from actors.history.rollup import HOUR, MINUTE, Incident
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState
from actors.store import Database
from actors.web.app import create_app
from bench.checks_support import machine

NOW = 1_765_000_000.0
DAY = 86_400
DISK_CHECKS = 3
INTERVAL = 10.0
TABLES = ("history_checks", "history_buckets", "history_results", "history_incidents")


async def history_bytes(database: Database) -> int:
    """Bytes of the history's tables and indexes in the file (SQLite's dbstat)."""
    marks = ",".join("?" for _ in TABLES)
    row = await database.fetchone(
        "SELECT SUM(pgsize) FROM dbstat WHERE name IN"
        f" ({marks}) OR name IN (SELECT name FROM sqlite_master WHERE tbl_name IN ({marks})"
        " AND type = 'index')",
        (*TABLES, *TABLES),
    )
    return int(row[0] or 0) if row is not None else 0


async def disk(workdir: Path) -> float:
    """Part 1: bytes per check for 30 days of 10 s runs through the recorder."""
    clock = FixedClock(NOW - 30 * DAY)
    with Database(workdir / "disk.db", synchronous="NORMAL", offload=False) as database:
        repository = HistoryRepository(database)
        repository.migrate()
        config = HistoryConfig()
        recorder = HistoryRecorder(repository=repository, config=config, clock=clock)
        await recorder.load()
        names = [f"check-{i:04d}.example.internal" for i in range(DISK_CHECKS)]
        at = clock.now()
        # One flush a minute of simulated time: the same rows as every 5 s (buckets are upserted),
        # in a twelfth of the wall time.
        every = 60.0
        next_flush = at + every
        started = time.perf_counter()
        while at < NOW:
            outage = (at % DAY) < 120
            for name in names:
                status = CheckStatus.FAIL if outage else CheckStatus.PASS
                message = "connect timeout after 2s" if outage else "HTTP 200 in 41 ms"
                recorder.observe(CheckResult(name, status, message, 0.041, at, status))
            at += INTERVAL
            if at >= next_flush:
                clock.advance(at - clock.now())
                await recorder.flush()
                next_flush = at + every
        await recorder.flush()
        elapsed = time.perf_counter() - started
        runs = recorder.statistics().observed
        size = await history_bytes(database)
        print(
            f"disk: {DISK_CHECKS} checks x 30 days at {INTERVAL:g} s = {runs:,} runs recorded"
            f" in {elapsed:.1f} s ({elapsed / runs * 1e6:.1f} us per run incl. flushes)"
        )
    return size / DISK_CHECKS


def _history(names: list[str]) -> Batch:
    batch = Batch()
    day_start = int(NOW // MINUTE) * MINUTE - DAY
    month_start = int(NOW // HOUR) * HOUR - 30 * DAY
    for n, name in enumerate(names):
        for start in range(day_start + MINUTE, day_start + DAY + MINUTE, MINUTE):
            failed = 1 if (start // MINUTE + n) % 997 == 0 else 0
            batch.buckets[(name, MINUTE, start)] = Bucket(
                start, MINUTE, 6, failed, 30_000, 240_000 + n, 52_000, 61_000
            )
        for start in range(month_start + HOUR, month_start + 30 * DAY + HOUR, HOUR):
            failed = 2 if (start // HOUR + n) % 101 == 0 else 0
            batch.buckets[(name, HOUR, start)] = Bucket(
                start, HOUR, 360, failed, 29_000, 14_400_000 + n, 52_000, 90_000
            )
        for i in range(100):
            at = NOW - 10 * i
            batch.results.append(StoredResult(name, at, "pass", 40_000, "HTTP 200 in 40 ms"))
        for i in range(3):
            started = NOW - (i + 1) * 7 * DAY
            batch.incidents[(name, started)] = Incident(
                name, started, started + 120, "connect timeout after 2s"
            )
    return batch


async def render(workdir: Path, checks: int, rounds: int) -> tuple[float, float, int, int, float]:
    """Part 2: (median ms, p95 ms, bytes, gzip bytes, /api/health median ms) of `/`."""
    names = [f"service-{i:04d}" for i in range(checks)]
    clock = FixedClock(NOW)
    with Database(workdir / "render.db", synchronous="NORMAL", offload=False) as database:
        repository = HistoryRepository(database)
        repository.migrate()
        started = time.perf_counter()
        await repository.write(_history(names))
        print(
            f"render: wrote 30 days of history for {checks:,} checks in"
            f" {time.perf_counter() - started:.1f} s"
        )
        recorder = HistoryRecorder(
            repository=HistoryRepository(database), config=HistoryConfig(), clock=clock
        )
        started = time.perf_counter()
        await recorder.load()
        print(f"render: a restarted recorder loaded it in {time.perf_counter() - started:.2f} s")
        health = HealthState(checks=dict.fromkeys(names, False), clock=clock)
        health.add_result_listener(recorder.observe)
        for i, name in enumerate(names):
            status = CheckStatus.FAIL if i % 97 == 0 else CheckStatus.PASS
            health.publish(CheckResult(name, status, "HTTP 200 in 40 ms", 0.04, NOW, status))
        app = create_app(health=health, clock=clock, history=recorder, version="bench")
        client = app.test_client()
        timings: list[float] = []
        cpu: list[float] = []
        unchanged: list[float] = []
        api: list[float] = []
        body = b""
        for _k in range(rounds):
            # Every check ran since the last page (a 10 s refresh of 10 s checks).
            clock.advance(10)
            for i, name in enumerate(names):
                status = CheckStatus.FAIL if i % 97 == 0 else CheckStatus.PASS
                health.publish(
                    CheckResult(name, status, "HTTP 200 in 41 ms", 0.041, clock.now(), status)
                )
            started, used = time.perf_counter(), time.process_time()
            response = await client.get("/")
            body = await response.get_data(as_text=False)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
            assert response.status_code == 200
            # A second reader of the same page, nothing ran in between.
            started = time.perf_counter()
            await (await client.get("/")).get_data(as_text=False)
            unchanged.append(time.perf_counter() - started)
            started = time.perf_counter()
            await (await client.get("/api/health")).get_data()
            api.append(time.perf_counter() - started)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(0.95 * len(timings)))]
        print(
            f"GET / again with nothing changed: median {statistics.median(unchanged) * 1000:.1f} ms"
        )
        print(
            f"GET / CPU time of this process (not inflated by other load on the machine): median"
            f" {statistics.median(cpu) * 1000:.1f} ms"
        )
        return (
            statistics.median(timings) * 1000,
            p95 * 1000,
            len(body),
            len(gzip.compress(body)),
            statistics.median(api) * 1000,
        )


async def main(checks: int, rounds: int, with_disk: bool) -> None:
    print(f"machine: {machine()}, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if with_disk:
            per_check = await disk(workdir)
            print(
                "history on disk per check for 30 days (default retention):"
                f" {per_check / 1024:.0f} KiB = {per_check / 30 / 1024:.1f} KiB per day;"
                f" target < 1 MB: {per_check / 1_000_000:.2f}x the target"
            )
        median, p95, size, zipped, api = await render(workdir, checks, rounds)
        print(
            f"GET / with {checks:,} checks, every one run since the last page: median"
            f" {median:.1f} ms, p95 {p95:.1f} ms over {rounds} renders; target < 100 ms:"
            f" {median / 100:.2f}x the target"
        )
        print(f"payload: {size / 1024:.0f} KiB ({zipped / 1024:.0f} KiB gzip)")
        print(
            f"peer, same app and checks: /api/health median {api:.1f} ms;"
            f" / costs {median / api:.1f}x /api/health"
        )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--render-only"]
    n = int(args[0]) if args else 1000
    r = int(args[1]) if len(args) > 1 else 20
    trio.run(main, n, r, "--render-only" not in sys.argv)
