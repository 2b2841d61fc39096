"""`ShardedHistory`: a sharded replica's status page reads each check from its own recorder
when it runs the check, and from the shared history when another replica does."""

from __future__ import annotations

from pathlib import Path

from actors.clock import FixedClock
from actors.history import WINDOWS, HistoryRepository
from actors.history.remote import RemoteHistory
from actors.history.sharded import ShardedHistory
from actors.models import CheckStatus
from actors.store import Database

from .support import open_recorder, run

P, F = CheckStatus.PASS, CheckStatus.FAIL
T0 = 1_752_537_600.0
DAY = WINDOWS["24h"]


async def test_each_check_is_read_where_it_runs(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    shared = tmp_path / "shared.db"
    owner = open_recorder(Database(shared, offload=False), clock)  # replica a
    here = open_recorder(Database(shared, offload=False), clock)  # replica b
    await owner.load()
    await here.load()
    elsewhere = {"db"}
    remote = RemoteHistory(
        repository=HistoryRepository(Database(shared, offload=False)),
        checks=lambda: sorted(elsewhere),
        clock=clock,
        interval=5.0,
    )
    history = ShardedHistory(local=here, remote=remote, elsewhere=lambda n: n in elsewhere)
    # b ran "db" and saw it fail just before it moved to a (not written yet: b's recorder
    # alone knows that incident); a runs it now and sees it pass.
    here.observe(run("db", F, T0 - 120, message="refused"))
    here.observe(run("api", P, T0))
    for i in range(1, 13):
        clock.advance(10)
        owner.observe(run("db", P, clock.now(), latency=0.004))
        here.observe(run("api", F if i % 3 == 0 else P, clock.now()))
    assert await owner.flush()
    now = clock.now()
    # Until the shared history of "db" is loaded, the page shows what b knows of it.
    assert history.totals("db", DAY, now) == (1, 1)
    assert history.open_incidents()["db"].message == "refused"
    local_shape = history.shape("db", DAY)
    await remote.refresh()
    for window in WINDOWS.values():
        assert history.totals("db", window, now) == owner.totals("db", window, now) == (12, 0)
        assert history.columns("db", window, now) == owner.columns("db", window, now)
        assert history.totals("api", window, now) == here.totals("api", window, now) == (13, 4)
        assert history.columns("api", window, now) == here.columns("api", window, now)
    assert history.shape("db", DAY) != local_shape
    # b's incident of "db" is not where "db" is read from now: not shown; "api"'s is b's.
    assert history.open_incidents() == {"api": here.open_incidents()["api"]}
    assert "db" in here.open_incidents()
    assert await history.results("db", 5) == await owner.results("db", 5)
    assert await history.buckets("db", DAY, now) == await owner.buckets("db", DAY, now)
    assert await history.incidents("db", T0) == []
    assert await history.results("api", 5) == await here.results("api", 5)

    # "db" fails on a: its incident shows on b's page after a's flush and b's refresh.
    clock.advance(10)
    owner.observe(run("db", F, clock.now(), message="timeout"))
    assert await owner.flush()
    await remote.refresh()
    assert history.open_incidents()["db"].message == "timeout"
    assert await history.incidents("db", T0) == await owner.incidents("db", T0)

    # "db" moves to b: read from b's recorder again at once.
    elsewhere.clear()
    assert history.totals("db", DAY, clock.now()) == here.totals("db", DAY, clock.now())
    assert history.shape("db", DAY) == 2 * here.shape("db", DAY)


async def test_before_any_assignment_every_check_is_read_from_the_recorder(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    here = open_recorder(Database(tmp_path / "h.db", offload=False), clock)
    await here.load()
    remote = RemoteHistory(
        repository=HistoryRepository(Database(tmp_path / "h.db", offload=False)),
        checks=list,
        clock=clock,
        interval=5.0,
    )
    history = ShardedHistory(local=here, remote=remote, elsewhere=lambda n: False)
    here.observe(run("api", P, T0))
    await remote.refresh()
    assert history.totals("api", DAY, T0) == (1, 0)
    assert not remote.holds("api")
