"""Replaying the local notification spool into PostgreSQL, against the live path.

After an outage, a replica replays what it spooled (`SpoolingGate.replay`: per entry, a read of
the group's shared log, one transaction writing the log and the outbox row, then the delete from
the local SQLite spool). The peer is the path the same notifications take when PostgreSQL
answers (`SharedNotifyLog.flush`: the same read and transaction, no spool). Also measured: a
second replica replaying the same entries (each found covered in the shared log: a read, no
write).

Run: .venv/bin/python bench/spool_replay.py [--notifications 1000]
Needs PostgreSQL on 127.0.0.1:5432 (a temporary database is made and dropped). Prints wall time
and this process's CPU time (PostgreSQL's own CPU is not counted), per notification.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.clock import SystemClock
from actors.cluster.notifylog import SharedNotifyLog, notification_identity
from actors.cluster.spool import Spool
from actors.cluster.spooling import SpoolingGate
from actors.models import Alert, AlertStatus, Notification
from actors.notify.outbox import Outbox
from actors.routing.grouping import Group, GroupTiming, add_alert
from actors.store import Database
from actors.store.postgres import PostgresDatabase
from tests.actors.notify.factories import Recorder
from tests.postgres import temporary_database

T0 = 1_700_000_000.0
TIMING = GroupTiming(group_wait=0.0, group_interval=1.0, repeat_interval=3600.0)


def _alert(i: int) -> Alert:
    return Alert(
        fingerprint=f"fp{i}",
        labels=(("alertname", f"A{i}"),),
        annotations=(("summary", "x is down"),),
        status=AlertStatus.FIRING,
        starts_at=T0,
        ends_at=None,
    )


def _group(prefix: str, i: int) -> Group:
    group = Group(key=f"hooks/{prefix}:{i}", channel="hooks", labels=(("alertname", f"A{i}"),))
    return add_alert(group, _alert(i), T0, TIMING)


def _note(i: int) -> Notification:
    alert = _alert(i)
    key = f"hooks/spooled:{i}"
    return Notification(
        key=notification_identity("hooks", key, 0, [alert]),
        channel="hooks",
        group_key=key,
        group_labels=alert.labels,
        status=AlertStatus.FIRING,
        alerts=(alert,),
        created_at=T0,
        receiver="hooks",
    )


def _unmuted(alert: Alert) -> bool:
    return False


def _none(alerts: Sequence[Alert]) -> Mapping[str, object]:
    return {}


async def _timed(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _gate(url: str, spool: Path) -> tuple[SpoolingGate, SharedNotifyLog, Spool]:
    store = PostgresDatabase(url, pool_size=2)
    outbox = Outbox(database=store, clock=SystemClock(), replica="bench", poll=1.0)
    shared = SharedNotifyLog(database=store, outbox=outbox)
    local = Spool(Database(spool), limit=1_000_000)
    logger = logging.getLogger("bench.spool")
    return (
        SpoolingGate(shared=shared, spool=local, metrics=Recorder(), logger=logger),
        shared,
        local,
    )


async def _run(n: int) -> None:
    with temporary_database() as url, tempfile.TemporaryDirectory() as tmp:
        a, shared, spool_a = _gate(url, Path(tmp) / "a.db")
        b, _, spool_b = _gate(url, Path(tmp) / "b.db")
        for i in range(n):
            await spool_a.add(_note(i), basis=0, decided_at=T0 + 1)
            await spool_b.add(_note(i), basis=0, decided_at=T0 + 1)

        async def live() -> None:
            for i in range(n):
                await shared.flush(_group("live", i), T0 + 1, TIMING, _unmuted, _none)

        live_wall, live_cpu = await _timed(live)
        replay_wall, replay_cpu = await _timed(a.replay)
        covered_wall, covered_cpu = await _timed(b.replay)
        assert spool_a.count == spool_b.count == 0
        print(f"notifications: {n} (one group each); load average {os.getloadavg()[0]:.2f}")
        rows = [
            ("live flush (peer)", live_wall, live_cpu),
            ("spool replay, queued", replay_wall, replay_cpu),
            ("spool replay, covered", covered_wall, covered_cpu),
        ]
        for name, wall, cpu in rows:
            print(
                f"{name:24} {n / wall:8.0f}/s  wall {wall / n * 1e3:6.2f} ms"
                f"  cpu {cpu / n * 1e3:6.2f} ms  (x{wall / live_wall:.2f} wall,"
                f" x{cpu / live_cpu:.2f} cpu of the live flush)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=1000)
    trio.run(_run, parser.parse_args().notifications)


if __name__ == "__main__":
    main()
