"""Sharded hand-over of a check's history: the replica that takes a check over continues the
shared history (open buckets, strips, open incident) instead of what it held, on SQLite and
PostgreSQL (`HistoryRecorder.take_over` / `release`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest

import actors.history.recorder as recorder_module
from actors.clock import FixedClock
from actors.history import WINDOWS, HistoryConfig, HistoryRecorder, HistoryRepository
from actors.history.repository import Loaded
from actors.history.rollup import HOUR, MINUTE, Window
from actors.models import CheckStatus
from actors.store.errors import QueryError
from tests.conftest import Stores

from .support import run

P, F = CheckStatus.PASS, CheckStatus.FAIL
T0 = 1_752_537_600.0  # 2025-07-15T00:00:00Z, an hour boundary
DAY = WINDOWS["24h"]


class _Failing(HistoryRepository):
    """A repository whose next `failures` reads of taken-over checks fail."""

    failures = 0

    async def load_checks(
        self, checks: Iterable[str], *, since: float, now: float, windows: Iterable[Window]
    ) -> Loaded:
        if self.failures:
            self.failures -= 1
            raise QueryError("SELECT", "connection lost")
        return await super().load_checks(checks, since=since, now=now, windows=windows)


def _recorder(
    stores: Stores, clock: FixedClock, repository: HistoryRepository | None = None
) -> HistoryRecorder:
    repository = repository or HistoryRepository(stores.open(offload=False))
    repository.migrate()
    return HistoryRecorder(repository=repository, config=HistoryConfig(), clock=clock)


async def _stored(stores: Stores, check: str, resolution: int) -> list[tuple[int, int, int]]:
    repository = HistoryRepository(stores.open(offload=False))
    return [
        (b.start - int(T0), b.count, b.failures)
        for b in await repository.buckets(check, resolution, T0)
    ]


async def test_the_new_owner_continues_the_previous_owners_buckets_and_incident(
    stores: Stores,
) -> None:
    clock = FixedClock(T0)
    a = _recorder(stores, clock)
    b = _recorder(stores, clock)
    await a.load()
    await b.load()  # b loaded at its start: nothing of "api" yet
    # a runs "api" for 40 s (5 runs: the last 2 fail, an incident opens) and writes it.
    for i in range(5):
        a.observe(run("api", F if i >= 3 else P, T0 + 10 * i, message="refused"))
    assert await a.flush()
    # At the next beat "api" moves to b (a stops it, b starts it): b's 2 runs pass.
    clock.advance(45)
    a.release(["api"])
    b.take_over(["api"])
    b.observe(run("api", P, T0 + 50))
    assert await a.flush()
    clock.advance(15)
    b.observe(run("api", P, T0 + 60))
    assert await b.flush()  # reloads "api", then folds b's runs
    assert await b.flush()
    assert await _stored(stores, "api", MINUTE) == [(0, 6, 2), (60, 1, 0)]
    assert await _stored(stores, "api", HOUR) == [(0, 7, 2)]
    # b's status page counts a's runs too.
    now = clock.now()
    for window in WINDOWS.values():
        assert b.totals("api", window, now) == (7, 2)
    assert [(bk.start - T0, bk.count) for bk in await b.buckets("api", DAY, now)] == [
        (0, 6),
        (60, 1),
    ]
    # a's incident is carried on by b and closed by b's first pass: none is left open.
    assert b.open_incidents() == {}
    assert [(i.started - T0, i.ended and i.ended - T0) for i in await b.incidents("api", 0)] == [
        (30, 50)
    ]
    fresh = HistoryRepository(stores.open(offload=False))
    assert await fresh.open_incidents(["api"]) == {}
    # a forgot "api" after writing it.
    assert a.totals("api", DAY, now) == (0, 0)


async def test_a_check_taken_back_is_loaded_again(stores: Stores) -> None:
    clock = FixedClock(T0)
    a = _recorder(stores, clock)
    b = _recorder(stores, clock)
    await a.load()
    await b.load()
    a.observe(run("db", P, T0 + 1))
    a.observe(run("db", P, T0 + 11))
    assert await a.flush()
    # "db" moves to b, which runs it and fails: its incident opens.
    a.release(["db"])
    b.take_over(["db"])
    assert await a.flush()
    assert await b.flush()
    b.observe(run("db", F, T0 + 21, message="timeout"))
    b.observe(run("db", F, T0 + 31, message="timeout"))
    assert await b.flush()
    # ...and back to a, which held it until a moment ago: it continues b's history.
    b.release(["db"])
    a.take_over(["db"])
    a.observe(run("db", F, T0 + 41))
    assert await b.flush()
    assert await a.flush()
    a.observe(run("db", P, T0 + 51))
    assert await a.flush()
    assert await _stored(stores, "db", MINUTE) == [(0, 6, 3)]
    assert a.totals("db", DAY, T0 + 59) == (6, 3)
    assert [(i.started - T0, i.ended and i.ended - T0) for i in await a.incidents("db", 0)] == [
        (21, 51)
    ]


async def test_runs_wait_for_a_reload_that_failed(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock(T0)
    a = _recorder(stores, clock)
    failing = _Failing(stores.open(offload=False))
    b = _recorder(stores, clock, failing)
    await a.load()
    await b.load()
    for i in range(3):
        a.observe(run("api", P, T0 + 10 * i))
    assert await a.flush()
    failing.failures = 1
    b.take_over(["api"])
    b.observe(run("api", F, T0 + 30))
    with caplog.at_level(logging.WARNING, logger="history"):
        assert await b.flush()  # the read fails: the run waits
    assert (
        caplog.records[0]
        .getMessage()
        .startswith("history: checks taken over not loaded, tried again at the next flush")
    )
    assert b.totals("api", DAY, T0 + 40) == (0, 0)
    b.observe(run("api", P, T0 + 40))
    assert await b.flush()  # read again: both runs folded after a's
    assert await b.flush()
    assert b.totals("api", DAY, T0 + 50) == (5, 1)
    assert await _stored(stores, "api", MINUTE) == [(0, 5, 1)]


async def test_runs_are_folded_onto_what_is_held_when_reads_keep_failing(
    stores: Stores, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "MAX_PENDING", 3)
    clock = FixedClock(T0)
    failing = _Failing(stores.open(offload=False))
    b = _recorder(stores, clock, failing)
    await b.load()
    failing.failures = 100
    b.take_over(["api"])
    b.observe(run("api", P, T0 + 1))
    b.observe(run("api", P, T0 + 2))
    assert await b.flush()
    assert b.totals("api", DAY, T0 + 5) == (0, 0)
    b.observe(run("api", F, T0 + 3))
    with caplog.at_level(logging.WARNING, logger="history"):
        assert await b.flush()
    assert "3 runs folded onto the history held here" in caplog.records[-1].getMessage()
    assert b.totals("api", DAY, T0 + 5) == (3, 1)
    assert await b.flush()
    assert await _stored(stores, "api", MINUTE) == [(0, 3, 1)]
