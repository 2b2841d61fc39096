"""The local spool of notifications decided while PostgreSQL is unreachable: kept in order on
disk, replayed once PostgreSQL is back (deduplicated across replicas by the shared log), a
failure half-way keeps what was not replayed, a full spool refuses (counted) instead of dropping.
Replays run against both engines."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from actors.clock import FixedClock
from actors.cluster.notifylog import SharedNotifyLog, notification_identity
from actors.cluster.spool import Spool, SpoolFull
from actors.cluster.spooling import SPOOL_FULL, SPOOL_REPLAYED, SpoolingGate
from actors.models import Alert, AlertStatus, Notification
from actors.notify.outbox import Outbox
from actors.routing.grouping import Group, GroupTiming, NotifyLog, add_alert
from actors.store import Connection, Database, QueryError, Row, Store
from actors.store.interface import Dialect, Migrations, Params
from tests.actors.notify.factories import Recorder, make_alert
from tests.conftest import Stores

T = TypeVar("T")
T0 = 1_700_000_000.0
TIMING = GroupTiming(group_wait=0.0, group_interval=1.0, repeat_interval=3600.0)


def _key(name: str) -> str:
    return f'hooks/default:{{alertname="{name}"}}'


class Cut:
    """A store whose line can be cut (`down`), or that fails after `budget` more statements."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False
        self.budget: int | None = None

    @property
    def dialect(self) -> Dialect:
        return self.inner.dialect

    @property
    def location(self) -> str:
        return self.inner.location

    @property
    def now_sql(self) -> str:
        return self.inner.now_sql

    def migrate(self, owner: str, migrations: Migrations) -> int:
        return self.inner.migrate(owner, migrations)

    def _pass(self, sql: str) -> None:
        if self.budget is not None:
            if self.budget <= 0:
                self.down = True
            self.budget -= 1
        if self.down:
            raise QueryError(sql, "connection refused")

    async def execute(self, sql: str, params: Params = ()) -> int:
        self._pass(sql)
        return await self.inner.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        self._pass(sql)
        return await self.inner.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self._pass(sql)
        return await self.inner.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        self._pass(sql)
        return await self.inner.fetchone(sql, params)

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        self._pass("transaction")
        return await self.inner.transaction(work)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> Cut:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Replica:
    """One replica's routing view of the shared store (cut on demand) and its own spool."""

    def __init__(self, stores: Stores, spool: Path, *, limit: int = 100) -> None:
        self.store = Cut(stores.open())
        self.outbox = Outbox(database=self.store, clock=FixedClock(T0), replica="r", poll=1.0)
        self.metrics = Recorder()
        self.spool = Spool(Database(spool, synchronous="NORMAL"), limit=limit)
        self.gate = SpoolingGate(
            shared=SharedNotifyLog(database=self.store, outbox=self.outbox),
            spool=self.spool,
            metrics=self.metrics,
            logger=logging.getLogger("test.spool"),
        )
        self.groups: dict[str, Group] = {}

    def see(self, alert: Alert, now: float) -> None:
        name = dict(alert.labels)["alertname"]
        group = self.groups.get(name) or Group(
            key=_key(name), channel="hooks", labels=(("alertname", name),)
        )
        self.groups[name] = add_alert(group, alert, now, TIMING)

    async def flush(self, name: str, now: float) -> str | None:
        """Flush group `name` at `now`; the status of what was queued or spooled, or None."""
        after, note = await self.gate.flush(self.groups[name], now, TIMING, _unmuted, _none)
        if after is not None:
            self.groups[name] = after
        return None if note is None else note.status.value

    def close(self) -> None:
        self.spool.close()


def _unmuted(alert: Alert) -> bool:
    return False


def _none(alerts: Sequence[Alert]) -> Mapping[str, object]:
    return {}


async def _queued(store: Store) -> list[tuple[str, str]]:
    rows = await store.fetchall("SELECT group_key, status FROM notify_outbox ORDER BY id")
    return [(str(row["group_key"]), str(row["status"])) for row in rows]


def _replayed(replica: Replica) -> dict[str, float]:
    return {
        dict(labels)["result"]: value
        for (name, labels), value in replica.metrics.values.items()
        if name == SPOOL_REPLAYED
    }


async def test_entries_keep_their_order_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(Database(path), limit=10)
    firing = make_alert(starts_at=T0)
    other = make_alert("Disk Full", fingerprint="fp2", starts_at=T0)
    notes = []
    for basis, alert in enumerate((firing, other, firing)):
        note = _note(alert, basis)
        notes.append(note)
        await spool.add(note, basis=basis, decided_at=T0 + basis)
    assert spool.count == 3
    assert spool.holds(_key("Disk Full"))
    spool.close()

    reopened = Spool(Database(path), limit=10)
    assert reopened.count == 0  # not read yet
    assert await reopened.load() == 3
    entries = await reopened.entries()
    assert [(e.notification, e.basis, e.decided_at) for e in entries] == [
        (note, basis, T0 + basis) for basis, note in enumerate(notes)
    ]
    await reopened.remove(entries[1])
    assert not reopened.holds(_key("Disk Full"))
    assert [e.id for e in await reopened.entries()] == [entries[0].id, entries[2].id]
    reopened.close()


async def test_an_undecodable_entry_is_deleted_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(Database(path), limit=10)
    await spool.add(_note(make_alert(), 0), basis=0, decided_at=T0)
    await spool.add(_note(make_alert(), 1), basis=1, decided_at=T0)
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE notify_spool SET payload = '{not json' WHERE basis = 0")
    [entry] = await spool.entries()
    assert entry.basis == 1
    assert spool.corrupt == 1
    assert spool.count == 1
    spool.close()


async def test_two_replicas_that_spooled_the_same_outage_queue_each_notification_once(
    stores: Stores, tmp_path: Path
) -> None:
    a, b = Replica(stores, tmp_path / "a.db"), Replica(stores, tmp_path / "b.db")
    a.store.down = b.store.down = True
    a.see(make_alert(starts_at=T0), T0)
    b.see(make_alert(starts_at=T0 + 0.5), T0 + 0.5)
    assert await a.flush("High API Latency", T0 + 1) == "firing"
    assert await b.flush("High API Latency", T0 + 1.5) == "firing"
    a.see(make_alert(status=AlertStatus.RESOLVED, starts_at=T0, ends_at=T0 + 60), T0 + 60)
    b.see(make_alert(status=AlertStatus.RESOLVED, starts_at=T0 + 0.5, ends_at=T0 + 61), T0 + 61)
    assert await a.flush("High API Latency", T0 + 61) == "resolved"
    assert await b.flush("High API Latency", T0 + 62) == "resolved"
    assert (a.spool.count, b.spool.count) == (2, 2)
    # Each spool holds the same identities: decided on the same log (seq 0, then 1).
    a_keys = [e.notification.key for e in await a.spool.entries()]
    assert a_keys == [e.notification.key for e in await b.spool.entries()]

    a.store.down = b.store.down = False
    # Interleaved: a replays its firing, b replays everything, then a the rest.
    a.store.budget = 3  # the firing's read and transaction, the resolved's read; then cut
    with pytest.raises(QueryError):
        await a.gate.replay()
    assert a.spool.count == 1
    a.store.budget, a.store.down = None, False
    assert await b.gate.replay() == 2
    assert await a.gate.replay() == 1
    group = _key("High API Latency")
    assert await _queued(a.store) == [(group, "firing"), (group, "resolved")]
    assert _replayed(a) == {"queued": 1, "covered": 1}
    assert _replayed(b) == {"queued": 1, "covered": 1}
    logs = await a.gate.load_logs()
    assert logs[group] == NotifyLog(frozenset(), T0 + 62, 2)
    a.close()
    b.close()


async def test_a_failure_mid_replay_keeps_the_failed_entry_and_every_later_one(
    stores: Stores, tmp_path: Path
) -> None:
    r = Replica(stores, tmp_path / "spool.db")
    r.store.down = True
    names = ["A", "B", "C", "D"]
    for i, name in enumerate(names):
        r.see(make_alert(name, fingerprint=f"fp{i}", starts_at=T0), T0)
        assert await r.flush(name, T0 + 1 + i) == "firing"
    assert r.spool.count == 4
    r.store.down = False
    r.store.budget = 5  # two replays (read + transaction each), the third's read; then cut
    with pytest.raises(QueryError):
        await r.gate.replay()
    assert [g for g, _ in await _queued(r.store.inner)] == [_key("A"), _key("B")]
    left = await r.spool.entries()
    assert [e.notification.group_key for e in left] == [_key("C"), _key("D")]
    r.store.budget, r.store.down = None, False
    assert await r.gate.replay() == 2
    assert [g for g, _ in await _queued(r.store)] == [_key(n) for n in names]
    assert r.spool.count == 0
    r.close()


async def test_a_group_with_spooled_entries_spools_its_next_notification_behind_them(
    stores: Stores, tmp_path: Path
) -> None:
    r = Replica(stores, tmp_path / "spool.db")
    name = "High API Latency"
    r.store.down = True
    r.see(make_alert(starts_at=T0), T0)
    assert await r.flush(name, T0 + 1) == "firing"
    r.store.down = False  # back, but the firing is not replayed yet
    r.see(make_alert(status=AlertStatus.RESOLVED, starts_at=T0, ends_at=T0 + 5), T0 + 5)
    assert await r.flush(name, T0 + 5) == "resolved"
    assert await _queued(r.store) == []  # not sent around the spooled firing
    assert r.spool.count == 2
    assert await r.gate.replay() == 2
    assert await _queued(r.store) == [(_key(name), "firing"), (_key(name), "resolved")]
    # Empty again: the next change goes straight to the shared log.
    r.see(make_alert(starts_at=T0 + 100), T0 + 100)
    assert await r.flush(name, T0 + 100) == "firing"
    assert r.spool.count == 0
    assert len(await _queued(r.store)) == 3
    r.close()


async def test_a_full_spool_refuses_and_counts_and_the_group_stays_for_the_next_tick(
    stores: Stores, tmp_path: Path
) -> None:
    r = Replica(stores, tmp_path / "spool.db", limit=1)
    r.store.down = True
    r.see(make_alert("A", fingerprint="fa", starts_at=T0), T0)
    r.see(make_alert("B", fingerprint="fb", starts_at=T0), T0)
    assert await r.flush("A", T0 + 1) == "firing"
    with pytest.raises(QueryError):  # the shared log's error: the routing actor retries
        await r.flush("B", T0 + 1)
    assert r.metrics.values[(SPOOL_FULL, ())] == 1
    with pytest.raises(SpoolFull):
        await r.spool.add(_note(make_alert(), 9), basis=9, decided_at=T0)
    r.store.down = False
    assert await r.flush("B", T0 + 2) == "firing"  # the next tick, PostgreSQL back
    assert await r.gate.replay() == 1
    assert sorted(await _queued(r.store)) == [(_key("A"), "firing"), (_key("B"), "firing")]
    r.close()


def _note(alert: Alert, seq: int) -> Notification:
    key = notification_identity("hooks", _key(dict(alert.labels)["alertname"]), seq, [alert])
    return Notification(
        key=key,
        channel="hooks",
        group_key=_key(dict(alert.labels)["alertname"]),
        group_labels=(("alertname", dict(alert.labels)["alertname"]),),
        status=alert.status,
        alerts=(alert,),
        created_at=T0,
        receiver="hooks",
    )
