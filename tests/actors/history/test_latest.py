"""`HistoryRepository.latest`, what sharded replicas read every heartbeat: the newest run of the
checks asked, read through the primary key, so its cost does not grow with the history."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from actors.history import HistoryRepository
from actors.history.repository import Batch, StoredResult
from actors.store import Params, Row, Store
from tests.conftest import Stores

T0 = 1_752_537_600.0
CHECKS = [f"check-{i:02}" for i in range(12)]
ASKED = CHECKS[::2]


class _Recording:
    """The store's reads, noted (statement and parameters), then done by the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads: list[tuple[str, Params]] = []

    @property
    def dialect(self) -> str:
        return self.store.dialect

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self.reads.append((sql, params))
        return await self.store.fetchall(sql, params)


def _recording(store: Store) -> tuple[HistoryRepository, _Recording]:
    recording = _Recording(store)
    return HistoryRepository(recording), recording  # type: ignore[arg-type]


async def _store_runs(store: Store, depth: int, first: int = 0) -> None:
    """Runs `first` .. `depth - 1` of every check, 10 s apart; the last one fails."""
    repository = HistoryRepository(store)
    batch = Batch()
    for n in range(first, depth):
        for i, name in enumerate(CHECKS):
            status = "fail" if n == depth - 1 else "pass"
            batch.results.append(StoredResult(name, T0 + 10 * n + i, status, 1000 + n, f"run {n}"))
    await repository.write(batch)


def _opened(stores: Stores) -> Store:
    store = stores.open(offload=False)
    HistoryRepository(store).migrate()
    return store


async def test_latest_reads_the_newest_run_of_the_checks_asked(stores: Stores) -> None:
    store = _opened(stores)
    await _store_runs(store, 5)
    repository = HistoryRepository(stores.open(offload=False))
    latest = await repository.latest([*ASKED, "never-ran", ASKED[0]])
    assert sorted(latest) == ASKED
    for name, result in latest.items():
        i = CHECKS.index(name)
        assert (result.at, result.status, result.latency_us, result.message) == (
            T0 + 40 + i,
            "fail",
            1004,
            "run 4",
        )
    assert sorted(await repository.latest()) == CHECKS
    assert await repository.latest([]) == {}
    assert await repository.latest(["never-ran"]) == {}


def _sqlite_work(path: str, sql: str, params: Params) -> tuple[list[str], int]:
    """The statement's query plan, and how many virtual machine instructions it runs: rows
    visited cost instructions, a deeper B-tree does not."""
    conn = sqlite3.connect(path)
    try:
        plan = [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0

        conn.set_progress_handler(step, 1)
        conn.execute(sql, params).fetchall()
        return plan, steps
    finally:
        conn.close()


def _pg_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", ()):
        nodes.extend(_pg_nodes(child))
    return nodes


async def _pg_work(store: Store, sql: str, params: Params) -> tuple[list[str], int]:
    """The plan's nodes over history_results, and the rows they read."""
    row = await store.fetchone(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
    assert row is not None
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    nodes = [
        n for n in _pg_nodes(document[0]["Plan"]) if n.get("Relation Name") == "history_results"
    ]
    read = sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"] for n in nodes
    )
    return [str(n["Node Type"]) for n in nodes], read


async def test_latest_reads_the_same_rows_however_deep_the_history(stores: Stores) -> None:
    """Once a scan of the whole history_results per heartbeat and replica; now each check asked
    is one descent of the primary key (check_id, at). Checked on fresh tables, before any
    statistics exist, when a planner is most tempted to scan."""
    store = _opened(stores)
    repository, recording = _recording(store)
    work: Callable[[str, Params], Any]
    if stores.engine == "sqlite":
        assert stores.path is not None
        path = str(stores.path)

        async def work(sql: str, params: Params) -> tuple[list[str], int]:
            return _sqlite_work(path, sql, params)

    else:

        async def work(sql: str, params: Params) -> tuple[list[str], int]:
            return await _pg_work(store, sql, params)

    measured: list[tuple[list[str], int]] = []
    for first, depth in ((0, 4), (4, 400)):
        await _store_runs(store, depth, first)
        latest = await repository.latest(ASKED)
        assert {r.message for r in latest.values()} == {f"run {depth - 1}"}
        sql, params = recording.reads[-1]
        measured.append(await work(sql, params))
    (plan, shallow), (deep_plan, deep) = measured
    assert deep == shallow, (plan, shallow, deep_plan, deep)
    if stores.engine == "sqlite":
        # Only the checks' table and the list of names are ever scanned.
        scanned = [d for d in deep_plan if d.startswith("SCAN")]
        assert all(d == "SCAN c" or d.startswith("SCAN json_each") for d in scanned), deep_plan
    else:
        assert set(deep_plan) <= {"Index Scan", "Index Only Scan"}, deep_plan
        assert deep <= 2 * len(ASKED), deep  # at most the newest row of each, twice


async def test_any_number_of_checks_can_be_asked(stores: Stores) -> None:
    """The names are one parameter, not one placeholder each (SQLite allows 32,766)."""
    store = _opened(stores)
    await _store_runs(store, 2)
    names = [f"elsewhere-{i}" for i in range(40_000)]
    latest = await HistoryRepository(store).latest([*names, CHECKS[3]])
    assert list(latest) == [CHECKS[3]]
