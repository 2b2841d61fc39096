"""The newest stored run of the checks run elsewhere, read every heartbeat by sharded replicas.

`HistoryRepository.latest(checks)` (each asked check's newest row by one descent of the primary
key) against the statement it replaced (the newest row of every check by grouping the whole
`history_results` table: `BEFORE` below, as the repository ran it until this change), on one
history of `--checks` checks x `--runs` stored runs each, on SQLite and on PostgreSQL (a
temporary database on 127.0.0.1:5432, made and dropped). Half the checks are asked (a share of
two replicas); "after, all" asks every check (`latest()`). Statistics are gathered first
(ANALYZE), as a long-running database has them.

Run: .venv/bin/python bench/history_latest.py [--checks 10000] [--runs 100] [--repeat 5]
Prints each statement's plan, then the best and median wall time of `--repeat` reads and the
ratio before / after. The database's own CPU is part of the wall time (same host).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.history import HistoryRepository
from actors.history.repository import _LATEST, _LATEST_OF, StoredResult
from actors.store import Database, Store
from actors.store.postgres import PostgresDatabase
from tests.postgres import temporary_database

T0 = 1_700_000_000.0
BEFORE = (
    "SELECT c.name, r.at, r.status, r.latency, r.message FROM history_results r"
    " JOIN history_checks c ON c.id = r.check_id"
    " JOIN (SELECT check_id, MAX(at) AS at FROM history_results GROUP BY check_id) m"
    " ON m.check_id = r.check_id AND m.at = r.at"
)
_STATUS = {0: "pass", 1: "warn", 2: "fail"}


async def _before(store: Store) -> dict[str, StoredResult]:
    """The read as it was: every check's newest run, grouping the whole table."""
    rows = await store.fetchall(BEFORE)
    return {
        str(r[0]): StoredResult(
            str(r[0]), float(r[1]), _STATUS.get(int(r[2]), "fail"), int(r[3]), str(r[4])
        )
        for r in rows
    }


def _fill_sqlite(path: Path, checks: int, runs: int) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO history_checks (id, name) VALUES (?, ?)",
            [(c + 1, f"check-{c}") for c in range(checks)],
        )
        conn.executemany(
            "INSERT INTO history_results (check_id, at, status, latency, message)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                (c + 1, T0 + 10 * n + c / checks, n % 3, 1000 + n, "HTTP 200 in 12 ms")
                for n in range(runs)
                for c in range(checks)
            ),
        )
    conn.execute("ANALYZE")
    conn.close()


def _fill_postgres(url: str, checks: int, runs: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO history_checks (name) SELECT 'check-' || c FROM generate_series(0, %s) c",
            (checks - 1,),
        )
        conn.execute(
            "INSERT INTO history_results (check_id, at, status, latency, message)"
            " SELECT h.id, %s + 10 * n + h.id::float8 / %s, n %% 3, 1000 + n, 'HTTP 200 in 12 ms'"
            " FROM history_checks h, generate_series(0, %s) n",
            (T0, checks, runs - 1),
        )
        conn.execute("VACUUM ANALYZE")


async def _plan(store: Store, sql: str, params: tuple[object, ...]) -> list[str]:
    if store.dialect == "sqlite":
        rows = await store.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
        return [str(r[3]) for r in rows]
    rows = await store.fetchall(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {sql}", params)
    return [str(r[0]) for r in rows]


async def _times(
    read: Callable[[], Awaitable[dict[str, StoredResult]]], repeat: int
) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await read()
        times.append(time.perf_counter() - started)
    return times


def _ms(times: list[float]) -> str:
    return f"best {min(times) * 1e3:8.1f} ms, median {statistics.median(times) * 1e3:8.1f} ms"


async def _measure(store: Store, checks: int, repeat: int) -> None:
    repository = HistoryRepository(store)
    asked = [f"check-{c}" for c in range(0, checks, 2)]
    after_sql = _LATEST[store.dialect] + _LATEST_OF[store.dialect]
    after_params: tuple[object, ...] = (
        (asked,) if store.dialect == "postgresql" else (json.dumps(asked),)
    )
    print("  plan before:")
    for line in await _plan(store, BEFORE, ()):
        print(f"    {line}")
    print(f"  plan after ({len(asked)} checks asked):")
    for line in await _plan(store, after_sql, after_params):
        print(f"    {line[:120]}{'...' if len(line) > 120 else ''}")
    before_rows = await _before(store)
    after_rows = await repository.latest(asked)
    assert after_rows == {name: before_rows[name] for name in asked}, "different results"
    before = await _times(lambda: _before(store), repeat)
    after = await _times(lambda: repository.latest(asked), repeat)
    every = await _times(repository.latest, repeat)
    print(f"  before (every check, whole table): {_ms(before)}")
    print(f"  after  ({len(asked)} checks asked):     {_ms(after)}")
    print(f"  after  (every check):            {_ms(every)}")
    print(
        f"  before / after: {min(before) / min(after):.0f}x (best), "
        f"{statistics.median(before) / statistics.median(after):.0f}x (median); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100, help="stored runs per check")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    rows = args.checks * args.runs
    print(f"history: {args.checks} checks x {args.runs} runs = {rows:,} rows")
    if args.engine in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "history.db"
            with Database(path) as store:
                HistoryRepository(store).migrate()
            started = time.perf_counter()
            _fill_sqlite(path, args.checks, args.runs)
            print(f"SQLite (filled in {time.perf_counter() - started:.0f} s):")
            with Database(path) as store:
                trio.run(_measure, store, args.checks, args.repeat)
    if args.engine in ("postgresql", "both"):
        with temporary_database() as url, PostgresDatabase(url, pool_size=1) as store:
            HistoryRepository(store).migrate()
            started = time.perf_counter()
            _fill_postgres(url, args.checks, args.runs)
            print(f"PostgreSQL (filled in {time.perf_counter() - started:.0f} s):")
            trio.run(_measure, store, args.checks, args.repeat)


if __name__ == "__main__":
    main()
