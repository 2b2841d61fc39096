"""The history of the checks another sharded replica runs: the repository's reads of several
checks (on SQLite and PostgreSQL), and `RemoteHistory`, whose strips must show what the owner's
own recorder shows, refresh after refresh, reading only a few buckets a check each time."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
import trio
import trio.testing

from actors.clock import FixedClock, VirtualClock
from actors.history import WINDOWS, HistoryConfig, HistoryRecorder, HistoryRepository
from actors.history import remote as remote_module
from actors.history.remote import RemoteHistory
from actors.history.repository import Batch
from actors.history.rollup import HOUR, MINUTE, Bucket, Incident
from actors.models import CheckStatus
from actors.store import Store
from actors.store.errors import QueryError
from tests.conftest import Stores

from .support import open_recorder, run

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
T0 = 1_752_537_600.0  # 2025-07-15T00:00:00Z, a day boundary
CHECKS = ["api", "db", "cache"]


def _opened(stores: Stores) -> Store:
    store = stores.open(offload=False)
    HistoryRepository(store).migrate()
    return store


async def _record(
    owner: HistoryRecorder,
    clock: FixedClock,
    checks: Iterable[str],
    *,
    seconds: float,
    every: float,
    rng: random.Random,
    failing: float = 0.1,
) -> None:
    """`seconds` of runs of `checks`, one each `every` seconds (a share fail, some warn), the
    clock following them; flushed at the end."""
    names = list(checks)
    for _ in range(int(seconds // every)):
        clock.advance(every)
        for i, name in enumerate(names):
            draw = rng.random()
            status = F if draw < failing else W if draw < failing * 1.5 else P
            owner.observe(run(name, status, clock.now() - i, latency=rng.uniform(0.001, 0.2)))
    assert await owner.flush()


# -- the repository's reads of several checks ---------------------------------------------------


async def test_strips_of_the_checks_asked_sum_the_buckets_before_a_time(stores: Stores) -> None:
    store = _opened(stores)
    repository = HistoryRepository(store)
    batch = Batch()
    for name in CHECKS:
        for m in range(3 * 60):  # three hours of minute buckets, one hour bucket each hour
            start = int(T0) + 60 * m
            batch.buckets[(name, MINUTE, start)] = Bucket(start, MINUTE, 6, m % 2, 1, 600, 100, 200)
        for h in range(3):
            start = int(T0) + HOUR * h
            batch.buckets[(name, HOUR, start)] = Bucket(start, HOUR, 360, 30, 1, 36_000, 100, 300)
    await repository.write(batch)
    now = T0 + 3 * HOUR - 1
    everything = await repository.load(now=now, windows=WINDOWS.values())
    asked = ["db", "api", "never-ran"]
    rows = await repository.strips(asked, now=now, windows=WINDOWS.values(), before=now + HOUR)
    assert sorted(rows, key=repr) == sorted(
        (r for r in everything.strips if r.check in asked), key=repr
    )
    # Before 02:30: the minute buckets of 00:00-02:29, the hour buckets of 00:00 and 01:00.
    cut = T0 + 2.5 * HOUR + 7
    rows = await repository.strips(["api"], now=now, windows=WINDOWS.values(), before=cut)
    day = [r for r in rows if r.window == "24h"]
    assert sum(r.count for r in day) == 6 * 150
    assert max(r.start + WINDOWS["24h"].slot for r in day) <= T0 + 2.5 * HOUR + 16 * 60
    assert sum(r.count for r in rows if r.window == "7d") == 2 * 360
    assert await repository.strips([], now=now, windows=WINDOWS.values(), before=cut) == []


async def test_buckets_since_and_open_incidents_of_the_checks_asked(stores: Stores) -> None:
    store = _opened(stores)
    clock = FixedClock(T0)
    owner = open_recorder(store, clock)
    await owner.load()
    for i in range(30):  # 5 minutes of runs every 10 s; "db" fails from 02:00 on
        for name in CHECKS:
            failed = name == "db" and i >= 12
            owner.observe(run(name, F if failed else P, T0 + 10 * i, message=f"{name} {i}"))
    clock.advance(300)
    assert await owner.flush()
    repository = HistoryRepository(stores.open(offload=False))
    since = T0 + 150  # rounded down to 02:00
    tail = await repository.buckets_since(["db", "cache", "never-ran"], MINUTE, since)
    assert sorted(tail) == ["cache", "db"]
    assert [b.start - T0 for b in tail["db"]] == [120, 180, 240]
    assert [(b.count, b.failures) for b in tail["db"]] == [(6, 6)] * 3
    assert tail["db"] == [
        b for b in await repository.buckets("db", MINUTE, since) if b.start >= T0 + 120
    ]
    hours = await repository.buckets_since(CHECKS, HOUR, since)
    assert [(b.start, b.count) for b in hours["api"]] == [(int(T0), 30)]
    assert await repository.buckets_since([], MINUTE, since) == {}
    incidents = await repository.open_incidents(["db", "api"])
    assert list(incidents) == ["db"]
    assert (incidents["db"].started, incidents["db"].ended) == (T0 + 120, None)
    assert incidents["db"].message == "db 12"
    assert await repository.open_incidents([]) == {}


# -- RemoteHistory ----------------------------------------------------------------------------


def _remote(
    store: Store, clock: FixedClock | VirtualClock, checks: list[str], interval: float = 5.0
) -> RemoteHistory:
    return RemoteHistory(
        repository=HistoryRepository(store),
        checks=lambda: list(checks),
        clock=clock,
        interval=interval,
    )


def _assert_same(
    owner: HistoryRecorder, remote: RemoteHistory, names: Iterable[str], now: float
) -> None:
    for name in names:
        for window in WINDOWS.values():
            where = (name, window.name)
            assert remote.columns(name, window, now) == owner.columns(name, window, now), where
            assert remote.totals(name, window, now) == owner.totals(name, window, now), where


async def test_the_strips_of_checks_run_elsewhere_are_the_owners_refresh_after_refresh(
    stores: Stores,
) -> None:
    """The owner records days of runs; another replica's `RemoteHistory` loads them, then
    follows the owner's flushes: after each refresh every bar and uptime figure of every
    window is the owner's own, and a refresh reads a few buckets a check, not the history."""
    rng = random.Random(7)
    clock = FixedClock(T0)
    owner = open_recorder(_opened(stores), clock)
    await owner.load()
    await _record(owner, clock, CHECKS, seconds=3 * 86_400, every=300, rng=rng)
    await _record(owner, clock, CHECKS, seconds=2 * HOUR, every=20, rng=rng)
    elsewhere = ["api", "db"]
    remote = _remote(stores.open(offload=False), clock, elsewhere)
    assert remote.columns("api", WINDOWS["24h"], clock.now()) == ([0] * 90,) * 4
    await remote.refresh()
    _assert_same(owner, remote, elsewhere, clock.now())
    assert not remote.holds("cache")
    assert remote.totals("cache", WINDOWS["24h"], clock.now()) == (0, 0)
    for _ in range(40):  # runs every 10 s, flushes every 5 s, a refresh every 5 s
        await _record(owner, clock, CHECKS, seconds=5, every=2.5, rng=rng, failing=0.3)
        await remote.refresh()
        _assert_same(owner, remote, elsewhere, clock.now())
        assert remote.statistics().buckets_read <= 6 * len(elsewhere)
    # An owner that flushes 50 s late (slow, or its writes failing for a while): refreshes
    # meanwhile find nothing new, and still count those runs once they are written.
    for _ in range(10):
        for i in range(5):
            clock.advance(1)
            owner.observe(run("api", P if i else F, clock.now()))
        await remote.refresh()
    assert await owner.flush()
    await remote.refresh()
    _assert_same(owner, remote, elsewhere, clock.now())
    # Hours later (the bars' slots and the windows move on).
    await _record(owner, clock, CHECKS, seconds=5 * HOUR, every=30, rng=rng)
    for _ in range(3):
        await _record(owner, clock, CHECKS, seconds=5, every=5, rng=rng)
        await remote.refresh()
    _assert_same(owner, remote, elsewhere, clock.now())
    assert remote.statistics().refreshes == 55
    assert remote.statistics().checks == 2


async def test_a_load_in_parts_holds_each_check_once_whole(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_module, "LOAD_BATCH", 2)
    monkeypatch.setattr(remote_module, "_ROWS_PER_CHECKPOINT", 7)
    rng = random.Random(13)
    clock = FixedClock(T0)
    owner = open_recorder(_opened(stores), clock)
    await owner.load()
    await _record(owner, clock, CHECKS, seconds=2 * 86_400, every=600, rng=rng)
    remote = _remote(stores.open(offload=False), clock, CHECKS)
    await remote.refresh()
    _assert_same(owner, remote, CHECKS, clock.now())


async def test_a_check_that_runs_here_is_forgotten_and_loaded_anew_when_it_moves_away(
    stores: Stores,
) -> None:
    rng = random.Random(3)
    clock = FixedClock(T0)
    owner = open_recorder(_opened(stores), clock)
    await owner.load()
    await _record(owner, clock, ["api"], seconds=HOUR, every=30, rng=rng)
    elsewhere = ["api"]
    remote = _remote(stores.open(offload=False), clock, elsewhere)
    await remote.refresh()
    day = WINDOWS["24h"]
    shapes = [remote.shape("api", day)]
    elsewhere.clear()  # "api" runs here
    await remote.refresh()
    assert not remote.holds("api")
    assert remote.shape("api", day) == -1
    assert remote.open_incidents() == {}
    await _record(owner, clock, ["api"], seconds=HOUR, every=30, rng=rng)
    elsewhere.append("api")  # and elsewhere again
    await remote.refresh()
    _assert_same(owner, remote, ["api"], clock.now())
    shapes.append(remote.shape("api", day))
    assert shapes[1] > shapes[0], "a page must not reuse a bar drawn before the check moved"


async def test_open_incidents_of_checks_run_elsewhere_follow_the_owner(stores: Stores) -> None:
    clock = FixedClock(T0)
    owner = open_recorder(_opened(stores), clock)
    await owner.load()
    remote = _remote(stores.open(offload=False), clock, ["db"])
    owner.observe(run("db", P, T0))
    clock.advance(10)
    owner.observe(run("db", F, T0 + 10, message="refused"))
    assert await owner.flush()
    await remote.refresh()
    incident = remote.open_incidents()["db"]
    assert (incident.started, incident.ended, incident.message) == (T0 + 10, None, "refused")
    assert await remote.incidents("db", T0) == await owner.incidents("db", T0)
    clock.advance(10)
    owner.observe(run("db", P, T0 + 20))
    assert await owner.flush()
    await remote.refresh()
    assert remote.open_incidents() == {}
    assert await remote.incidents("db", T0) == await owner.incidents("db", T0)
    assert await remote.results("db", 10) == await owner.results("db", 10)
    assert await remote.buckets("db", WINDOWS["24h"], clock.now()) == await owner.buckets(
        "db", WINDOWS["24h"], clock.now()
    )


def _config() -> HistoryConfig:
    return HistoryConfig(flush_interval="5s")


async def test_an_incident_left_open_by_the_previous_owner_ends_with_the_next_owners_runs(
    stores: Stores,
) -> None:
    """b sees "db" fail and hands it over (its incident stays open in the shared history);
    a, which runs it now, sees it pass: a third replica's page shows no incident going on."""
    clock = FixedClock(T0)
    before = open_recorder(_opened(stores), clock)
    after = open_recorder(stores.open(offload=False), clock)
    await before.load()
    await after.load()
    remote = _remote(stores.open(offload=False), clock, ["db"])
    before.observe(run("db", F, T0, message="refused"))
    assert await before.flush()
    await remote.refresh()
    assert remote.open_incidents()["db"].message == "refused"
    clock.advance(60)
    after.observe(run("db", F, T0 + 60, message="still refused"))
    assert await after.flush()
    await remote.refresh()
    assert remote.open_incidents()["db"].started in (T0, T0 + 60)
    clock.advance(10)
    after.observe(run("db", P, T0 + 70))
    assert await after.flush()
    assert [i.ended for i in await HistoryRepository(stores.open()).incidents("db", 0)] == [
        T0 + 70,
        None,
    ]
    await remote.refresh()
    assert remote.open_incidents() == {}


class _Failing(HistoryRepository):
    """A repository whose reads of the tails (or, with `incidents_fail`, of the open
    incidents) fail while `failing` is set."""

    failing = False
    incidents_fail = False

    async def buckets_since(
        self, checks: Iterable[str], resolution: int, since: float
    ) -> dict[str, list[Bucket]]:
        if self.failing and not self.incidents_fail:
            raise QueryError("SELECT ...", "connection lost")
        return await super().buckets_since(checks, resolution, since)

    async def open_incidents(self, checks: Iterable[str]) -> dict[str, Incident]:
        if self.failing and self.incidents_fail:
            raise QueryError("SELECT ...", "connection lost")
        return await super().open_incidents(checks)


async def test_a_refresh_that_fails_changes_nothing_and_the_next_catches_up(
    stores: Stores,
) -> None:
    rng = random.Random(5)
    clock = FixedClock(T0)
    owner = open_recorder(_opened(stores), clock)
    await owner.load()
    await _record(owner, clock, CHECKS, seconds=HOUR, every=20, rng=rng)
    repository = _Failing(stores.open(offload=False))
    remote = RemoteHistory(
        repository=repository, checks=lambda: list(CHECKS), clock=clock, interval=5.0
    )
    await remote.refresh()
    before = {name: remote.columns(name, WINDOWS["24h"], clock.now()) for name in CHECKS}
    await _record(owner, clock, CHECKS, seconds=60, every=5, rng=rng)
    repository.failing = True
    with pytest.raises(QueryError):
        await remote.refresh()
    assert {name: remote.columns(name, WINDOWS["24h"], T0 + HOUR) for name in CHECKS} == before
    for _ in range(3):  # the owner goes on; reads fail for a while
        await _record(owner, clock, CHECKS, seconds=60, every=5, rng=rng)
        with pytest.raises(QueryError):
            await remote.refresh()
    repository.failing = False
    await remote.refresh()
    _assert_same(owner, remote, CHECKS, clock.now())


async def test_checks_loaded_by_refreshes_that_failed_are_counted_once(stores: Stores) -> None:
    """Two refreshes fail after loading a check each, at different times (so each check's
    tail begins elsewhere); the next refresh reads both tails from the older start, and each
    check counts only what its load had not."""
    rng = random.Random(11)
    clock = FixedClock(T0)
    owner = open_recorder(_opened(stores), clock)
    await owner.load()
    await _record(owner, clock, CHECKS, seconds=HOUR, every=10, rng=rng)
    repository = _Failing(stores.open(offload=False))
    repository.failing = repository.incidents_fail = True
    elsewhere = ["api"]
    remote = RemoteHistory(
        repository=repository, checks=lambda: list(elsewhere), clock=clock, interval=5.0
    )
    with pytest.raises(QueryError):
        await remote.refresh()
    assert remote.holds("api")
    await _record(owner, clock, CHECKS, seconds=5 * MINUTE, every=10, rng=rng)
    elsewhere.append("db")
    with pytest.raises(QueryError):
        await remote.refresh()
    assert remote.holds("db")
    repository.failing = False
    await _record(owner, clock, CHECKS, seconds=MINUTE, every=10, rng=rng)
    await remote.refresh()
    _assert_same(owner, remote, elsewhere, clock.now())


async def test_the_actor_refreshes_every_interval_and_rides_out_failures(
    stores: Stores, autojump_clock: trio.testing.MockClock
) -> None:
    clock = VirtualClock(T0)
    store = _opened(stores)
    owner = HistoryRecorder(repository=HistoryRepository(store), config=_config(), clock=clock)
    repository = _Failing(stores.open(offload=False))
    remote = RemoteHistory(repository=repository, checks=lambda: ["api"], clock=clock, interval=5)
    day = WINDOWS["24h"]
    async with trio.open_nursery() as nursery:
        await nursery.start(owner.run)
        await nursery.start(remote.run)
        await trio.sleep(0.1)
        start = trio.current_time()
        for i in range(60):  # a run every second for a minute, reads failing for 20 s of it
            repository.failing = 20 <= i < 40
            owner.observe(run("api", F if i % 4 == 0 else P, clock.now()))
            await trio.sleep(1)
        # Within two flush intervals of the last run, the bars are the owner's.
        await trio.sleep(10)
        _assert_same(owner, remote, ["api"], clock.now())
        assert remote.totals("api", day, clock.now()) == (60, 15)
        stats = remote.statistics()
        assert stats.failed == 4
        assert stats.refreshes == int((trio.current_time() - start) // 5) + 1 - 4
        nursery.cancel_scope.cancel()
