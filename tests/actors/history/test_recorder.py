"""The recorder over a real SQLite file: batches, buckets, incidents, restarts, retention."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from actors.clock import FixedClock
from actors.history import WINDOWS, HistoryConfig, HistoryRepository
from actors.history.rollup import HOUR, MINUTE, Accumulator, Strip
from actors.models import CheckStatus
from actors.state import HealthState
from actors.store import Database
from tests.conftest import Stores

from .support import open_recorder, run

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
T0 = 1_752_537_600.0  # 2025-07-15T00:00:00Z, a day boundary


async def test_runs_roll_up_into_minute_and_hour_buckets(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    db = Database(tmp_path / "h.db", offload=False)
    recorder = open_recorder(db, clock)
    await recorder.load()
    # Two minutes of a 10 s check: 12 runs, the 3rd and 4th fail.
    for i in range(12):
        status = F if i in (2, 3) else P
        recorder.observe(run("api", status, T0 + 10 * i, latency=0.001 * (i + 1)))
    calls = db.statistics().calls
    assert await recorder.flush()
    assert db.statistics().calls == calls + 1, "one transaction per flush"
    clock.advance(125)
    minutes = await recorder.buckets("api", WINDOWS["24h"], clock.now())
    assert [(b.start - T0, b.count, b.failures) for b in minutes] == [(0, 6, 2), (60, 6, 0)]
    assert (minutes[0].lat_min, minutes[0].lat_max, minutes[0].lat_sum) == (1000, 6000, 21000)
    assert minutes[0].lat_p95 == 6000
    hours = await recorder.buckets("api", WINDOWS["7d"], clock.now())
    assert [(b.start - T0, b.count, b.failures) for b in hours] == [(0, 12, 2)]
    incidents = await recorder.incidents("api", 0)
    assert [(i.started - T0, i.ended and i.ended - T0, i.message) for i in incidents] == [
        (20, 40, "api fail")
    ]
    results = await recorder.results("api", 3)
    assert [(r.at - T0, r.status) for r in results] == [(110, "pass"), (100, "pass"), (90, "pass")]
    assert recorder.uptime("api", WINDOWS["24h"], clock.now()) == 10 / 12
    db.close()


async def test_history_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    clock = FixedClock(T0)
    with Database(path, offload=False) as db:
        recorder = open_recorder(db, clock)
        await recorder.load()
        recorder.observe(run("db", P, T0 + 1, latency=0.002))
        recorder.observe(run("db", F, T0 + 11, message="refused"))
        assert await recorder.flush()
    clock.advance(30)
    with Database(path, offload=False) as db:
        recorder = open_recorder(db, clock)
        await recorder.load()
        # The open incident and the open minute continue.
        assert recorder.open_incidents()["db"].message == "refused"
        recorder.observe(run("db", F, T0 + 21, message="refused again"))
        recorder.observe(run("db", P, T0 + 31))
        assert recorder.open_incidents() == {}
        assert await recorder.flush()
        minutes = await recorder.buckets("db", WINDOWS["24h"], clock.now())
        assert [(b.count, b.failures) for b in minutes] == [(4, 2)]
        slots = recorder.strip("db", WINDOWS["90d"], clock.now())
        assert (slots[-1].count, slots[-1].failures) == (4, 2)
        incidents = await recorder.incidents("db", 0)
        assert [(i.started - T0, i.ended and i.ended - T0) for i in incidents] == [(11, 31)]
    # The strips come back from the database after a restart.
    with Database(path, offload=False) as db:
        recorder = open_recorder(db, clock)
        await recorder.load()
        for window in WINDOWS.values():
            slots = recorder.strip("db", window, clock.now())
            assert sum(s.count for s in slots) == 4, window.name
            assert sum(s.failures for s in slots) == 2, window.name


async def test_retention_prunes_buckets_results_and_incidents(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    config = HistoryConfig(raw_results=5, minute_retention="2h", incident_retention="1d")
    with Database(tmp_path / "h.db", offload=False) as db:
        recorder = open_recorder(db, clock, config)
        await recorder.load()
        recorder.observe(run("x", F, T0))
        recorder.observe(run("x", P, T0 + 1))
        for _minute in range(240):
            clock.advance(60)
            recorder.observe(run("x", P, clock.now()))
        await recorder.flush()
        count = await db.fetchone("SELECT COUNT(*) FROM history_results")
        assert count is not None
        assert count[0] == 5
        minutes = await db.fetchone(
            "SELECT MIN(start), COUNT(*) FROM history_buckets WHERE res = 60"
        )
        assert minutes is not None
        assert minutes[0] >= clock.now() - 2 * 3600
        assert len(await recorder.incidents("x", 0)) == 1
        clock.advance(2 * 86_400)
        recorder.observe(run("x", P, clock.now()))
        await recorder.flush()
        assert await recorder.incidents("x", 0) == []


async def test_health_state_hands_every_run_to_the_recorder_and_run_flushes(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clock = FixedClock(T0)
    with Database(tmp_path / "h.db", offload=False) as db:
        recorder = open_recorder(db, clock, HistoryConfig(flush_interval="5s"))
        health = HealthState(checks={"api": False}, clock=clock)
        health.add_result_listener(recorder.observe)
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run)
            for i in range(3):
                health.publish(run("api", P, T0 + i))  # the same status: no transition
            while recorder.statistics().flushes == 0:
                await trio.sleep(1)
            nursery.cancel_scope.cancel()
        rows = await db.fetchone("SELECT COUNT(*) FROM history_results")
        assert rows is not None
        assert rows[0] == 3
        assert recorder.statistics().observed == 3


async def test_a_run_without_a_usable_time_is_not_recorded(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    with Database(tmp_path / "h.db", offload=False) as db:
        recorder = open_recorder(db, clock)
        await recorder.load()
        recorder.observe(run("x", F, float("nan")))
        recorder.observe(run("x", F, float("inf")))
        assert recorder.statistics().observed == 0
        assert await recorder.flush()


async def test_the_history_on_either_store(stores: Stores) -> None:
    """The same statements on SQLite and PostgreSQL: write, restart, read back."""
    clock = FixedClock(T0)
    store = stores.open(offload=False)
    recorder = open_recorder(store, clock)
    await recorder.load()
    for i in range(6):
        recorder.observe(run("api", F if i == 2 else P, T0 + 10 * i, latency=0.001 * (i + 1)))
    assert await recorder.flush()
    clock.advance(70)
    again = open_recorder(stores.open(offload=False), clock)
    await again.load()
    minutes = await again.buckets("api", WINDOWS["24h"], clock.now())
    assert [(b.count, b.failures, b.lat_min, b.lat_max) for b in minutes] == [(6, 1, 1000, 6000)]
    assert again.totals("api", WINDOWS["90d"], clock.now()) == (6, 1)
    incidents = await again.incidents("api", 0)
    assert [(i.started - T0, i.ended and i.ended - T0) for i in incidents] == [(20, 30)]
    assert [r.status for r in await again.results("api", 2)] == ["pass", "pass"]


async def test_latest_reads_every_check_s_newest_run(stores: Stores) -> None:
    """What sharded replicas show of the checks another replica runs."""
    clock = FixedClock(T0)
    store = stores.open(offload=False)
    recorder = open_recorder(store, clock)
    await recorder.load()
    recorder.observe(run("api", P, T0))
    recorder.observe(run("api", F, T0 + 10, message="HTTP 500"))
    recorder.observe(run("db", P, T0 + 5, latency=0.25))
    assert await recorder.flush()
    latest = await HistoryRepository(stores.open(offload=False)).latest()
    assert {name: (r.at - T0, r.status, r.message) for name, r in latest.items()} == {
        "api": (10, "fail", "HTTP 500"),
        "db": (5, "pass", "db pass"),
    }
    assert latest["db"].latency_us == 250_000


async def test_strips_and_buckets_are_those_of_the_runs_one_by_one(tmp_path: Path) -> None:
    """Runs are queued and folded together at the next read: every strip slot, bucket and
    incident is what adding the runs one at a time gives (`Strip.add` of each run at the start
    of its bucket), across slot boundaries of every window, and seen before any flush."""
    clock = FixedClock(T0 + 31 * 86_400)
    db = Database(tmp_path / "h.db", offload=False)
    recorder = open_recorder(db, clock)
    await recorder.load()
    expected = {name: Strip(window.slot) for name, window in WINDOWS.items()}
    # two checks interleaved, 90 s apart over 30 days of slot boundaries (7 d slots are 112 min:
    # not whole hours), failures in runs of 3 every 17
    statuses: list[CheckStatus] = []
    at = T0
    i = 0
    while at < T0 + 30 * 86_400:
        status = F if i % 17 < 3 else P
        latency = 0.001 * (1 + i % 7)
        recorder.observe(run("a", status, at, latency=latency))
        recorder.observe(run("b", P, at + 1, latency=0.002))
        for name, window in WINDOWS.items():
            start = at - at % window.resolution
            failed = int(status is F)
            expected[name].add(start, 1, failed, round(latency * 1e6), round(latency * 1e6))
        statuses.append(status)
        at += 90.0 * (1 + (i % 3 == 0) * 37)  # some long gaps: the slots are not all full
        i += 1
        if i % 500 == 0:
            assert recorder.totals("a", WINDOWS["90d"], at)[0] == i  # a read folds the queue
    now = at  # every window's bar ends with the last runs
    for name, window in WINDOWS.items():
        assert recorder.columns("a", window, now) == expected[name].columns(now), name
        assert recorder.shape("a", window) >= 0
    assert recorder.totals("b", WINDOWS["90d"], now) == (i, 0)
    assert recorder.statistics().observed == 2 * i
    incidents = await recorder.incidents("a", 0)
    assert len(incidents) == sum(1 for k in range(i) if k % 17 == 0)
    assert all(incident.ended is not None for incident in incidents[1:])
    assert await recorder.flush()
    results = await recorder.results("a", 2)
    assert [r.status for r in results] == [s.value for s in reversed(statuses[-2:])]
    db.close()


async def test_buckets_are_those_of_the_runs_one_by_one(tmp_path: Path) -> None:
    """Many runs a minute, folded a minute's runs at once: every minute and hour bucket (count,
    failures, latency min / sum / p95 / max) is what adding the runs one at a time gives, with
    folds that cut minutes anywhere and a run that comes back to an earlier minute."""
    clock = FixedClock(T0 + 3 * 3600)
    db = Database(tmp_path / "h.db", offload=False)
    recorder = open_recorder(db, clock)
    await recorder.load()
    minutes: dict[int, Accumulator] = {}
    hours: dict[int, Accumulator] = {}
    times = [T0 + 0.7 * i for i in range(12_000)]  # 2 h 20 min, several runs a second
    times.insert(500, times[499] - 61.0)  # late: in a minute already past
    for i, at in enumerate(times):
        failed = i % 13 < 2
        latency = 0.0001 * (1 + (i * 37) % 1000)
        recorder.observe(run("a", F if failed else P, at, latency=latency))
        minute = int(at // MINUTE) * MINUTE
        hour = int(at // HOUR) * HOUR
        if minute > max(minutes, default=-1):
            minutes[minute] = Accumulator(minute, MINUTE)
        if hour > max(hours, default=-1):
            hours[hour] = Accumulator(hour, HOUR)
        latency_us = round(latency * 1e6)
        minutes[max(minutes)].add(failed, latency_us)
        hours[max(hours)].add(failed, latency_us)
        if i % 1777 == 0:
            recorder.totals("a", WINDOWS["24h"], at)  # a read folds what is queued
    now = times[-1]
    got = await recorder.buckets("a", WINDOWS["24h"], now)
    assert got == [acc.bucket() for _, acc in sorted(minutes.items())]
    got = await recorder.buckets("a", WINDOWS["7d"], now)
    assert got == [acc.bucket() for _, acc in sorted(hours.items())]
    db.close()
