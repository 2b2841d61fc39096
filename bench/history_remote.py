"""The uptime strips of the checks run elsewhere, kept by sharded replicas (`RemoteHistory`).

A history of `--checks` checks, each with a day of minute buckets and 90 days of hour buckets
(what `[history]` keeps at its defaults), on SQLite and on PostgreSQL (a temporary database on
127.0.0.1:5432, made and dropped), statistics gathered (ANALYZE). A `RemoteHistory` holds half
the checks (the share of the other of two replicas):

- first load: its first refresh (every strip summed by the database, then the tails);
- refresh: every later one, each after the "owner" rewrote every check's open minute and hour
  buckets and 5 s passed (a flush interval): the tails, compared with what was counted;
- peer: `HistoryRepository.latest` of the same checks, which every sharded replica already
  runs every heartbeat (`CheckShare.refresh`, decision 0019), measured in the same run.

Run: .venv/bin/python bench/history_remote.py [--checks 1000] [--repeat 10]
Prints the best and median wall time and the process CPU (this process: the event loop and the
store's threads; the database server's CPU is in the wall time only, same host) of each, the
buckets a refresh reads, and the ratio refresh / peer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.clock import FixedClock
from actors.history import HistoryRepository
from actors.history.remote import RemoteHistory
from actors.history.repository import Batch, StoredResult
from actors.store import Database, Store
from actors.store.postgres import PostgresDatabase
from tests.postgres import temporary_database

NOW = 1_752_537_600.0 + 12 * 3600 + 1234.5  # mid-day, mid-hour
MINUTES = 1440
HOURS = 90 * 24
_BUCKET = (
    "(check_id, res, start, count, failures, lat_min, lat_sum, lat_p95, lat_max)"
    " VALUES (?, ?, ?, 60, ?, 1000, 600000, 20000, 30000)"
)


def _fill_sqlite(path: Path, checks: int) -> None:
    import sqlite3

    minute = int(NOW // 60) * 60
    hour = int(NOW // 3600) * 3600
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO history_checks (id, name) VALUES (?, ?)",
            [(c + 1, f"check-{c}") for c in range(checks)],
        )
        conn.executemany(
            f"INSERT INTO history_buckets {_BUCKET}",
            (
                (c + 1, 60, minute - 60 * m, int(m % 97 == 0))
                for c in range(checks)
                for m in range(MINUTES)
            ),
        )
        conn.executemany(
            f"INSERT INTO history_buckets {_BUCKET}",
            (
                (c + 1, 3600, hour - 3600 * h, int(h % 31 == 0))
                for c in range(checks)
                for h in range(HOURS)
            ),
        )
    conn.execute("ANALYZE")
    conn.close()


def _fill_postgres(url: str, checks: int) -> None:
    import psycopg

    minute = int(NOW // 60) * 60
    hour = int(NOW // 3600) * 3600
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO history_checks (name) SELECT 'check-' || c FROM generate_series(0, %s) c",
            (checks - 1,),
        )
        for res, top, count in ((60, minute, MINUTES), (3600, hour, HOURS)):
            conn.execute(
                "INSERT INTO history_buckets (check_id, res, start, count, failures, lat_min,"
                " lat_sum, lat_p95, lat_max) SELECT h.id, %s, %s - %s * n, 60,"
                " (n %% 31 = 0)::int, 1000, 600000, 20000, 30000"
                " FROM history_checks h, generate_series(0, %s) n",
                (res, top, res, count - 1),
            )
        conn.execute("VACUUM ANALYZE")


async def _owner_flush(store: Store, checks: int, now: float) -> None:
    """The owner's flush: every check's open minute and hour bucket rewritten, one run more;
    and a run stored per check (so `latest` has something to read)."""
    repository = HistoryRepository(store)
    minute = int(now // 60) * 60
    hour = int(now // 3600) * 3600
    await store.execute(
        "UPDATE history_buckets SET count = count + 1, lat_sum = lat_sum + 10000"
        " WHERE (res = 60 AND start = ?) OR (res = 3600 AND start = ?)",
        (minute, hour),
    )
    batch = Batch()
    batch.results.extend(
        StoredResult(f"check-{c}", now, "pass", 10_000, "HTTP 200") for c in range(checks)
    )
    await repository.write(batch)


async def _timed(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _fmt(label: str, runs: list[tuple[float, float]]) -> str:
    walls = [w for w, _ in runs]
    cpus = [c for _, c in runs]
    best, median, cpu = min(walls), statistics.median(walls), statistics.median(cpus)
    return (
        f"  {label:<11} wall best {best * 1e3:8.1f} ms, median {median * 1e3:8.1f} ms;"
        f" CPU median {cpu * 1e3:8.1f} ms"
    )


async def _measure(store: Store, checks: int, repeat: int) -> None:
    clock = FixedClock(NOW)
    asked = [f"check-{c}" for c in range(0, checks, 2)]
    remote = RemoteHistory(
        repository=HistoryRepository(store), checks=lambda: asked, clock=clock, interval=5.0
    )
    first = await _timed(remote.refresh)
    print(_fmt("first load", [first]) + f"  ({len(asked)} checks)")
    refreshes: list[tuple[float, float]] = []
    peers: list[tuple[float, float]] = []
    read: list[int] = []
    repository = HistoryRepository(store)
    for _ in range(repeat):
        clock.advance(5.0)
        await _owner_flush(store, checks, clock.now())
        refreshes.append(await _timed(remote.refresh))
        read.append(remote.statistics().buckets_read)
        peers.append(await _timed(lambda: repository.latest(asked)))
    print(_fmt("refresh", refreshes) + f"  (buckets read: {min(read)}-{max(read)})")
    print(_fmt("peer latest", peers))
    ratio = statistics.median(w for w, _ in refreshes) / statistics.median(w for w, _ in peers)
    print(f"  refresh / latest (median wall): {ratio:.1f}x; load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    rows = args.checks * (MINUTES + HOURS)
    print(f"history: {args.checks} checks x ({MINUTES} minute + {HOURS} hour buckets) = {rows:,}")
    if args.engine in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "history.db"
            with Database(path) as store:
                HistoryRepository(store).migrate()
            started = time.perf_counter()
            _fill_sqlite(path, args.checks)
            print(f"SQLite (filled in {time.perf_counter() - started:.0f} s):")
            with Database(path) as store:
                trio.run(_measure, store, args.checks, args.repeat)
    if args.engine in ("postgresql", "both"):
        with temporary_database() as url, PostgresDatabase(url, pool_size=1) as store:
            HistoryRepository(store).migrate()
            started = time.perf_counter()
            _fill_postgres(url, args.checks)
            print(f"PostgreSQL (filled in {time.perf_counter() - started:.0f} s):")
            trio.run(_measure, store, args.checks, args.repeat)


if __name__ == "__main__":
    main()
